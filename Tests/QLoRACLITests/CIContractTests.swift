import Foundation
import Testing
@testable import QLoRAFormats

/// The CI contract of `qlora run` (Sources/QLoRAPipeline/Runner/RunOutcome.swift): exit statuses a job runner can act
/// on, `summary.json` always written (also for an invalid spec) with the outcome and the artifacts, GitHub Actions
/// annotations and job summary, and a stop signal outside training ending the run after the current stage, resumable.
@Suite(.serialized) struct CIContractTests {
    private func summary(_ runDir: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: runDir.appendingPathComponent("summary.json"))) as! [String: Any]
    }

    @Test func anInvalidSpecExits2WithASummary() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "name: broken\ndataset:\n  files: [{path: missing.jsonl, format: alpaca}]\n".write(
            to: dir.appendingPathComponent("spec.yaml"), atomically: true, encoding: .utf8)
        let stepSummary = dir.appendingPathComponent("step-summary.md")
        let out = try CLI.run(["run", "spec.yaml", "--ci"], in: dir,
                              environment: ["GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": stepSummary.path])
        #expect(out.status == 2, "\(out.all)")
        let s = try summary(dir.appendingPathComponent("runs/broken"))
        #expect(s["status"] as? String == "invalid")
        #expect(s["exit_code"] as? Int == 2)
        #expect(s["resumable"] as? Bool == false)
        #expect((s["failure"] as? String)?.contains("missing.jsonl") == true)
        #expect(out.stdout.contains("::error title=qlora run spec.yaml::"), "\(out.stdout)")
    }

    @Test func aSucceededRunListsItsArtifactsAndWritesTheJobSummary() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let rows = (0..<30).map { #"{"instruction": "say \#($0)", "output": "\#($0)"}"# }.joined(separator: "\n")
        try rows.write(to: dir.appendingPathComponent("d.jsonl"), atomically: true, encoding: .utf8)
        try "name: ok\ndataset:\n  files: [{path: d.jsonl, format: alpaca}]\n  eval_fraction: 0.1\n".write(
            to: dir.appendingPathComponent("spec.yaml"), atomically: true, encoding: .utf8)
        let stepSummary = dir.appendingPathComponent("step-summary.md")
        try Data().write(to: stepSummary)
        let out = try CLI.run(["run", "spec.yaml", "--run-dir", "r"], in: dir,
                              environment: ["GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": stepSummary.path])
        #expect(out.status == 0, "\(out.all)")
        let s = try summary(dir.appendingPathComponent("r"))
        #expect(s["status"] as? String == "succeeded" && s["exit_code"] as? Int == 0)
        let artifacts = try #require(s["artifacts"] as? [[String: Any]])
        let paths = artifacts.compactMap { $0["path"] as? String }
        #expect(paths.contains("ingest/train.jsonl") && paths.contains("ingest/eval.jsonl"), "\(paths)")
        #expect(artifacts.allSatisfy { ($0["sha256"] as? String)?.count == 64 })
        #expect(try String(contentsOf: stepSummary, encoding: .utf8).contains("# qlora run `ok`: succeeded"))
        #expect(!out.stdout.contains("::error"))
    }

    /// SIGTERM while a stage that does not poll (ingest of a large file) runs: the stage completes, the run stops
    /// before the next one with exit 75 and an "interrupted", resumable summary; the next run skips ingest.
    @Test func aStopSignalEndsTheRunAfterTheCurrentStageResumably() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let big = dir.appendingPathComponent("big.jsonl")
        let gen = try CLI.run(["bench", "ingest", "--generate-only", "--size-mb", "120", "--file", big.path])
        #expect(gen.status == 0, "\(gen.all)")
        let tokenizer = CLI.root.appendingPathComponent("Tests/QLoRATokenizerTests/Fixtures/smollm2").path
        try "name: stop\ndataset:\n  files: [{path: big.jsonl, format: alpaca}]\n  eval_fraction: 0.05\ntokenizer:\n  path: \(tokenizer)\n  max_seq_len: 2048\n".write(
            to: dir.appendingPathComponent("spec.yaml"), atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["run", "spec.yaml", "--run-dir", "r", "--ci"]
        process.currentDirectoryURL = dir
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        // Signal while ingest reads the 120 MB (about 1.7 s on 2 cores).
        Thread.sleep(forTimeInterval: 0.5)
        process.terminate()   // SIGTERM
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 75, "\(text)")
        let s = try summary(dir.appendingPathComponent("r"))
        #expect(s["status"] as? String == "interrupted" && s["resumable"] as? Bool == true && s["exit_code"] as? Int == 75)
        let stages = try #require(s["stages"] as? [[String: Any]])
        #expect(stages.first { $0["stage"] as? String == "ingest" }?["state"] as? String == "ran")
        #expect(stages.first { $0["stage"] as? String == "tokenize" }?["state"] as? String == "not run")
        let again = try CLI.run(["run", "spec.yaml", "--run-dir", "r", "--ci", "--only", "ingest"], in: dir)
        #expect(again.status == 0 && again.stdout.contains("ingest    skipped: up to date"), "\(again.all)")
    }

    @Test func runToStopsAfterAStageAndValidateStrictRefusesMissingOrMistypedInputs() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let rows = (0..<30).map { #"{"instruction": "say \#($0)", "output": "\#($0)"}"# }.joined(separator: "\n")
        try rows.write(to: dir.appendingPathComponent("d.jsonl"), atomically: true, encoding: .utf8)
        let tokenizer = CLI.root.appendingPathComponent("Tests/QLoRATokenizerTests/Fixtures/smollm2").path
        try "name: to\ndataset:\n  files: [{path: d.jsonl, format: alpaca}]\ntokenizer:\n  path: \(tokenizer)\n".write(
            to: dir.appendingPathComponent("spec.yaml"), atomically: true, encoding: .utf8)
        let first = try CLI.run(["run", "spec.yaml", "--run-dir", "r", "--to", "ingest", "--ci"], in: dir)
        #expect(first.status == 0, "\(first.all)")
        #expect(first.stdout.contains("ingest    running") && !first.stdout.contains("tokenize"), "\(first.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("r/tokenize").path))
        let rest = try CLI.run(["run", "spec.yaml", "--run-dir", "r", "--ci"], in: dir)
        #expect(rest.stdout.contains("ingest    skipped: up to date") && rest.stdout.contains("tokenize  running"), "\(rest.stdout)")

        // validate: a missing model is a warning, with --strict an error; so is a model file that is not a GGUF.
        try "name: v\nmodel:\n  path: nowhere.gguf\n".write(to: dir.appendingPathComponent("v.yaml"), atomically: true, encoding: .utf8)
        let lenient = try CLI.run(["validate", "v.yaml"], in: dir)
        #expect(lenient.status == 0 && lenient.stderr.contains("warning"), "\(lenient.all)")
        let strict = try CLI.run(["validate", "--strict", "v.yaml"], in: dir)
        #expect(strict.status == 2 && strict.stderr.contains("model.path") && strict.stderr.contains("nowhere.gguf"), "\(strict.all)")
        try "not a model".write(to: dir.appendingPathComponent("fake.gguf"), atomically: true, encoding: .utf8)
        try "name: v\nmodel:\n  path: fake.gguf\n".write(to: dir.appendingPathComponent("v.yaml"), atomically: true, encoding: .utf8)
        let fake = try CLI.run(["validate", "--strict", "v.yaml"], in: dir)
        #expect(fake.status == 2 && fake.stderr.contains("not a GGUF model"), "\(fake.all)")
        let real = try CLI.run(["validate", "--strict", CLI.root.appendingPathComponent("pipelines/tiny.yaml").path])
        if FileManager.default.fileExists(atPath: CLI.root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path) {
            #expect(real.status == 0, "\(real.all)")
        }
    }

    @Test func planPredictsAndRunRefusesATrainingStepThatCannotFit() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try "{\"prompt\": \"a\", \"completion\": \" b\"}\n".write(to: dir.appendingPathComponent("d.jsonl"), atomically: true, encoding: .utf8)
        let model = CLI.root.appendingPathComponent("Tests/QLoRAModelTests/Fixtures/gqa_tied").path
        let tokenizer = CLI.root.appendingPathComponent("Tests/QLoRATokenizerTests/Fixtures/spbpe/tokenizer.json").path
        // 2048 sequences of 32768 tokens per step: terabytes of logits.
        try """
            name: huge
            dataset:
              files: [{path: d.jsonl, format: completion}]
              eval_fraction: 0
            tokenizer: {path: \(tokenizer), max_seq_len: 32768}
            model: {path: \(model)}
            quantization: {blocksize: 64}
            lora: {lora_rank: 4}
            training: {max_steps: 1, batch_size: 2048}
            """.write(to: dir.appendingPathComponent("spec.yaml"), atomically: true, encoding: .utf8)
        let plan = try CLI.run(["plan", "spec.yaml", "--json"], in: dir)
        #expect(plan.status == 1, "\(plan.all)")
        let json = try JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as! [String: Any]
        #expect(json["fits"] as? Bool == false && (json["verdict"] as? String)?.contains("does not fit") == true)
        let run = try CLI.run(["run", "spec.yaml", "--run-dir", "r", "--ci"], in: dir)
        #expect(run.status == 2 && run.stderr.contains("predicted not to fit"), "\(run.all)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("r/ingest").path), "nothing ran")
        let small = try CLI.run(["plan", "spec.yaml", "--memory", "nonsense"], in: dir)
        #expect(small.status == 2 && small.stderr.contains("--memory nonsense"))
    }

    /// A random 1-layer LLaMA over the spbpe tokenizer's 3003 tokens, written here (HF form).
    private func writeTinyModel(to dir: URL) throws {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let h = 16, f = 32, v = 3003, p = "model.layers.0."
        let tensors: [(String, [Int])] = [
            ("model.embed_tokens.weight", [v, h]), (p + "input_layernorm.weight", [h]), (p + "self_attn.q_proj.weight", [h, h]),
            (p + "self_attn.k_proj.weight", [h, h]), (p + "self_attn.v_proj.weight", [h, h]), (p + "self_attn.o_proj.weight", [h, h]),
            (p + "post_attention_layernorm.weight", [h]), (p + "mlp.gate_proj.weight", [f, h]), (p + "mlp.up_proj.weight", [f, h]),
            (p + "mlp.down_proj.weight", [h, f]), ("model.norm.weight", [h]),
        ]
        let writer = try SafetensorsStreamWriter(url: dir.appendingPathComponent("model.safetensors"), fixed: tensors.map { ($0.0, .f32, $0.1) })
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for (name, shape) in tensors {
            try writer.write(name, floats: (0..<shape.reduce(1, *)).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return shape.count == 1 ? 1 : (Float(state >> 40) / Float(1 << 24) - 0.5) * 0.6
            })
        }
        try writer.finish(trailing: [:])
        try """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": \(h), "intermediate_size": \(f),
             "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2, "head_dim": 8, "vocab_size": \(v),
             "max_position_embeddings": 256, "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": true,
             "bos_token_id": 1, "eos_token_id": 2}
            """.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    }

    @Test func aFailedQualityGateExits3WithEveryArtifactWritten() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeTinyModel(to: dir.appendingPathComponent("model"))
        let rows = (0..<24).map { #"{"prompt": "question \#($0) about things", "completion": " answer \#($0 * 7) here"}"# }
        try (rows.joined(separator: "\n") + "\n").write(to: dir.appendingPathComponent("d.jsonl"), atomically: true, encoding: .utf8)
        let tokenizer = CLI.root.appendingPathComponent("Tests/QLoRATokenizerTests/Fixtures/spbpe/tokenizer.json").path
        let spec = """
            name: gated
            dataset: {files: [{path: d.jsonl, format: completion}], eval_fraction: 0.25}
            tokenizer: {path: \(tokenizer)}
            model: {path: model}
            quantization: {blocksize: 64}
            lora: {lora_rank: 4}
            training: {max_steps: 2, batch_size: 2}
            evaluation:
              max_eval_sequences: 4
              gates:
                - {metric: eval_loss, max: 1000}
                - {metric: perplexity, max_vs_base: -1000000000}
            package: {archive: tar.gz}
            """
        try spec.write(to: dir.appendingPathComponent("spec.yaml"), atomically: true, encoding: .utf8)
        let out = try CLI.run(["run", "spec.yaml", "--run-dir", "r", "--ci"], in: dir)
        #expect(out.status == 3, "\(out.all)")
        #expect(out.stdout.contains("gate passed: eval_loss") && out.stdout.contains("gate FAILED: perplexity"), "\(out.stdout)")
        #expect(out.stderr.contains("1 quality gate(s) failed"), "\(out.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("r/summary.json"))) as! [String: Any]
        #expect(summary["status"] as? String == "gate_failed" && summary["exit_code"] as? Int == 3 && summary["resumable"] as? Bool == false)
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("r/package/gated.tar.gz").path), "artifacts are written")
        let artifacts = (summary["artifacts"] as? [[String: Any]])?.compactMap { $0["path"] as? String } ?? []
        #expect(artifacts.contains("package/gated.tar.gz") && artifacts.contains("train/adapter_model.safetensors"), "\(artifacts)")
    }
}
