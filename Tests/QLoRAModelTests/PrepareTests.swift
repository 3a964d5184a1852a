import Foundation
import Testing
import QLoRACore
import QLoRACPU
import QLoRAFormats
@testable import QLoRAModel

/// The prepare path: a base model → a bitsandbytes 4-bit checkpoint directory → loaded back with the same
/// 4-bit weights the in-memory quantizer makes.
@Suite struct PrepareTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    private func tmp() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("prepare-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: ["gqa_tied", "mha_untied"])
    func preparedModelLoadsWithTheSameFourBitWeights(fixture: String) throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = Self.fixtures.appendingPathComponent(fixture).path
        let out = dir.appendingPathComponent("model")
        let report = try ModelPreparer.prepare(source: source, into: out, options: PrepareOptions())
        let backend = CPUBackend(threads: 2)
        let base = try ModelLoader.loadModel(path: source, backend: backend)
        let prepared = try ModelLoader.loadModel(path: out.path, backend: backend)
        let expected = base.weights.quantized(FourBitOptions())
        #expect(prepared.config.tieWordEmbeddings == base.config.tieWordEmbeddings)
        for (p, e) in zip(prepared.weights.layers, expected.layers) {
            for (a, b) in zip(p.projections, e.projections) {
                #expect(a.weight.isQuantized)
                #expect(a.weight == b.weight, "\(a.name)")
            }
            #expect(p.attnNorm == e.attnNorm && p.ffnNorm == e.ffnNorm)
        }
        #expect(prepared.weights.embedding == expected.embedding)
        #expect(prepared.weights.lmHead == expected.lmHead)
        // The 4-bit forward runs and equals the in-memory quantized model's.
        let tokens = [1, 5, 9, 17, 33, 65, 100]
        var c1 = KVCache(config: prepared.config, capacity: 16), c2 = c1
        let quantizedBase = LlamaModel(config: base.config, weights: expected, backend: backend)
        #expect(prepared.forward(tokens, cache: &c1, allLogits: true) == quantizedBase.forward(tokens, cache: &c2, allLogits: true))
        // bitsandbytes' layout and the memory report.
        let checkpoint = try SafetensorsCheckpoint(path: out.path)
        let stateName = "model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4"
        let (stateFile, stateInfo) = try #require(checkpoint.tensor(named: stateName))
        let state = try JSONParser.parse(stateFile.bytes(stateInfo))
        #expect(state.objectValue?["quant_type"] == "nf4" && state.objectValue?["blocksize"] == 64)
        #expect(state.objectValue?["nested_offset"]?.numberValue != nil)
        let config = try JSONParser.parse(Array(try Data(contentsOf: out.appendingPathComponent("config.json"))))
        let qc = config.objectValue?["quantization_config"]?.objectValue
        #expect(qc?["quant_method"] == "bitsandbytes" && qc?["bnb_4bit_use_double_quant"] == .bool(true))
        #expect(report.bitsPerQuantizedParameter > 4.12 && report.bitsPerQuantizedParameter < 4.15)
        #expect(report.quantizedParameters == base.weights.layers.reduce(0) { $0 + $1.projections.reduce(0) { $0 + $1.weight.count } })
    }

    @Test func ggufAndSafetensorsSourcesPrepareTheSameCheckpoint() throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let fixture = Self.fixtures.appendingPathComponent("gqa_tied")
        _ = try ModelPreparer.prepare(source: fixture.path, into: dir.appendingPathComponent("a"), options: PrepareOptions())
        _ = try ModelPreparer.prepare(source: fixture.appendingPathComponent("model.gguf").path, into: dir.appendingPathComponent("b"),
                                      options: PrepareOptions())
        let a = try Data(contentsOf: dir.appendingPathComponent("a/model.safetensors"))
        let b = try Data(contentsOf: dir.appendingPathComponent("b/model.safetensors"))
        #expect(a == b)
        // A prepared model is not a valid source.
        #expect(throws: ModelError.self) {
            _ = try ModelPreparer.prepare(source: dir.appendingPathComponent("a").path, into: dir.appendingPathComponent("c"),
                                          options: PrepareOptions())
        }
    }

    @Test func bf16KeptTensorsAndPlainScales() throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let options = PrepareOptions(quant: FourBitOptions(type: .fp4, blocksize: 128, doubleQuant: false), keptDType: .bfloat16,
                                     computeDType: .bfloat16)
        let report = try ModelPreparer.prepare(source: Self.fixtures.appendingPathComponent("mha_untied").path,
                                               into: dir, options: options)
        #expect(abs(report.bitsPerQuantizedParameter - 4.25) < 1e-9)  // 4 + 32/128
        let checkpoint = try SafetensorsCheckpoint(path: dir.path)
        #expect(checkpoint.tensor(named: "model.embed_tokens.weight")?.info.dtype == .bf16)
        #expect(checkpoint.tensor(named: "model.layers.1.mlp.up_proj.weight.absmax")?.info.dtype == .f32)
        let model = try ModelLoader.loadModel(path: dir.path, backend: CPUBackend(threads: 1))
        guard case .fourBit(let t) = model.weights.layers[0].wUp else { Issue.record("not 4-bit"); return }
        #expect(t.type == .fp4 && t.blocksize == 128 && t.dtype == .bfloat16 && !t.isDoubleQuantized)
    }
}
