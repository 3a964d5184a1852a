import Foundation
import Testing
@testable import QLoRAFormats
@testable import QLoRAPipeline
import QLoRACore
import Synchronization

/// The train stage on a tiny model (1 layer, hidden 16, the 3003-token spbpe tokenizer's vocabulary, written here).
@Suite struct TrainStageTests {
    static let spbpe = repositoryRoot.appendingPathComponent("Tests/QLoRATokenizerTests/Fixtures/spbpe/tokenizer.json").path

    /// A random LLaMA in HF form: 1 layer, hidden 16, 2 heads of 8, MLP 32, tied embeddings, vocabulary 3003.
    static func writeTinyModel(to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let h = 16, f = 32, v = 3003
        let p = "model.layers.0."
        let tensors: [(String, [Int])] = [
            ("model.embed_tokens.weight", [v, h]), (p + "input_layernorm.weight", [h]), (p + "self_attn.q_proj.weight", [h, h]),
            (p + "self_attn.k_proj.weight", [h, h]), (p + "self_attn.v_proj.weight", [h, h]), (p + "self_attn.o_proj.weight", [h, h]),
            (p + "post_attention_layernorm.weight", [h]), (p + "mlp.gate_proj.weight", [f, h]), (p + "mlp.up_proj.weight", [f, h]),
            (p + "mlp.down_proj.weight", [h, f]), ("model.norm.weight", [h]),
        ]
        let writer = try SafetensorsStreamWriter(url: dir.appendingPathComponent("model.safetensors"), fixed: tensors.map { ($0.0, .f32, $0.1) })
        var rng = SeededGenerator(seed: 11)
        for (name, shape) in tensors {
            let n = shape.reduce(1, *)
            try writer.write(name, floats: (0..<n).map { _ in
                shape.count == 1 ? 1 : (Float(Int64(rng.next() >> 40) - (1 << 23)) / Float(1 << 23)) * 0.3
            })
        }
        try writer.finish(trailing: [:])
        try write("""
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(h), "intermediate_size": \(f),
             "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 8, "vocab_size": \(v),
             "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
             "bos_token_id": 1, "eos_token_id": 2}
            """, to: dir.appendingPathComponent("config.json"))
    }

    static func spec(in dir: URL, evalFraction: Double = 0) throws -> JobSpec {
        try writeTinyModel(to: dir.appendingPathComponent("model"))
        let rows = (0..<24).map { #"{"prompt": "question \#($0) about things", "completion": " answer \#($0 * 7) here"}"# }
        try write(rows.joined(separator: "\n") + "\n", to: dir.appendingPathComponent("d.jsonl"))
        return try loadSpec("""
            name: t
            run_dir: run
            dataset:
              files: [{path: d.jsonl, format: completion}]
              eval_fraction: \(evalFraction)
            tokenizer:
              path: \(spbpe)
            model:
              path: model
            quantization:
              blocksize: 64
            lora:
              lora_rank: 4
            training:
              max_steps: 3
              batch_size: 2
              save_every: 1
            """, in: dir)
    }

    /// A kill between the end of training and the commit must not lose the training: the checkpoints are still there
    /// when the stage's outputs are committed, and removed only after (and by the next run if a kill came between).
    @Test func checkpointsOutliveTheCommitAndGoAfterIt() throws {
        try withTemporaryDirectory { dir in
            let spec = try Self.spec(in: dir)
            let checkpoints = dir.appendingPathComponent("run/train.checkpoints")
            let atCommit = Mutex<Bool?>(nil)
            let result = try Pipeline.run(spec: spec) { event in
                if case .finished(.train, _) = event {
                    let present = FileManager.default.fileExists(atPath: checkpoints.path)
                    atCommit.withLock { $0 = present }
                }
            }
            #expect(result.succeeded, "\(result.failure ?? "")")
            #expect(atCommit.withLock { $0 } == true, "the checkpoints were removed before the train stage was committed")
            #expect(!FileManager.default.fileExists(atPath: checkpoints.path))
            // Leftovers of a kill after the commit: the next run, finding the stage up to date, removes them.
            try FileManager.default.createDirectory(at: checkpoints.appendingPathComponent("step-00000003"), withIntermediateDirectories: true)
            let again = try Pipeline.run(spec: spec)
            #expect(again.stages.first { $0.stage == .train }?.state == .skipped)
            #expect(!FileManager.default.fileExists(atPath: checkpoints.path))
        }
    }
}
