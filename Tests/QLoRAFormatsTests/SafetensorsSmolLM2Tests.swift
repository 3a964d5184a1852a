import Foundation
import QLoRAFormats
import Testing

/// The real SmolLM2-135M-Instruct HF checkpoint (models/SmolLM2-135M-Instruct/model.safetensors, 538 MB, F32),
/// checked when present. `QLORA_SMOLLM2_SAFETENSORS` overrides the location.
enum SmolLM2SafetensorsFile {
    static let path: String = {
        if let override = ProcessInfo.processInfo.environment["QLORA_SMOLLM2_SAFETENSORS"] { return override }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent("models/SmolLM2-135M-Instruct/model.safetensors").path
    }()

    static var isPresent: Bool { FileManager.default.fileExists(atPath: path) }
}

@Suite("Safetensors SmolLM2-135M-Instruct",
       .enabled(if: SmolLM2SafetensorsFile.isPresent, "models/SmolLM2-135M-Instruct/model.safetensors is absent"))
struct SafetensorsSmolLM2Tests {
    @Test func headerHasTheLlamaTensorsAndShapes() throws {
        let clock = ContinuousClock()
        var file: SafetensorsFile?
        let elapsed = try clock.measure { file = try SafetensorsFile(path: SmolLM2SafetensorsFile.path) }
        let model = try #require(file)
        print("SafetensorsSmolLM2Tests: opened \(model.fileSize) bytes, \(model.tensors.count) tensors in \(elapsed)")
        #expect(model.tensors.count == 30 * 9 + 2)
        let embed = try #require(model.tensor(named: "model.embed_tokens.weight"))
        #expect(embed.dtype == .f32)
        #expect(embed.shape == [49_152, 576])
        #expect(model.tensor(named: "lm_head.weight") == nil)          // tied embeddings
        let perLayer = ["input_layernorm", "post_attention_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                        "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
        for layer in 0..<30 {
            for suffix in perLayer {
                #expect(model.tensor(named: "model.layers.\(layer).\(suffix).weight") != nil, "layer \(layer) \(suffix)")
            }
        }
        #expect(model.tensor(named: "model.layers.0.self_attn.k_proj.weight")?.shape == [192, 576])
        #expect(model.tensor(named: "model.layers.0.mlp.gate_proj.weight")?.shape == [1536, 576])
        let norm = try #require(try model.floats(named: "model.norm.weight"))
        #expect(norm.count == 576)
        #expect(norm.allSatisfy { $0.isFinite })
    }

    @Test func checkpointOpensTheModelDirectory() throws {
        let dir = URL(fileURLWithPath: SmolLM2SafetensorsFile.path).deletingLastPathComponent().path
        let checkpoint = try SafetensorsCheckpoint(path: dir)
        #expect(checkpoint.count == 272)
        #expect(checkpoint.tensor(named: "model.embed_tokens.weight")?.info.shape == [49_152, 576])
    }
}
