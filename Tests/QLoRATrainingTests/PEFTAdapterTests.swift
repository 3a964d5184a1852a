import Foundation
import QLoRACore
import QLoRAFormats
import QLoRAModel
import Testing
@testable import QLoRATraining

@Suite("PEFT adapter reader")
struct PEFTAdapterTests {
    static let config = LlamaConfig(hiddenSize: 64, intermediateSize: 96, layers: 2, heads: 4, kvHeads: 2, vocabSize: 128)

    static func adapter(_ lora: LoRAConfig = LoRAConfig(rank: 4, alpha: 8, targets: [.q, .v, .down]), seed: UInt64 = 1) -> PEFTAdapter {
        var rng = SeededGenerator(seed: seed)
        var w = LoRAWeights.peftInit(config, lora, rng: &rng)
        w.forEachTensor { t in
            if t.allSatisfy({ $0 == 0 }) { t = t.map { _ in Float(Int(rng.next() % 2001) - 1000) / 4000 } }
        }
        return PEFTAdapter(lora: lora, weights: w, baseModelNameOrPath: "some/base")
    }

    static func tmp() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("peft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func roundTripsWhatItWrites() throws {
        let dir = try Self.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = Self.adapter(LoRAConfig(rank: 4, alpha: 8, dropout: 0.05, useRSLoRA: true, targets: [.q, .v, .down]))
        try a.write(to: dir)
        let back = try PEFTAdapter.load(directory: dir, model: Self.config)
        #expect(back.lora == a.lora)
        #expect(back.weights == a.weights)
        #expect(back.baseModelNameOrPath == "some/base")
        #expect(back.lora.scaling == 8 / 2)  // rsLoRA: alpha / √r
        // Without a model, the layer count and shapes come from the tensors.
        #expect(try PEFTAdapter.load(directory: dir).weights == a.weights)
    }

    /// The adapter PEFT 0.21.2 itself saved for the LoRA goldens (all seven projections, r 8, alpha 16).
    @Test func readsAnAdapterSavedByPEFT() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("QLoRAGradTests/Fixtures/lora")
        let modelConfig = try LlamaConfig.fromHF(Array(try Data(contentsOf: fixtures.appendingPathComponent("model/config.json"))), file: "config.json")
        let a = try PEFTAdapter.load(directory: fixtures.appendingPathComponent("adapter"), model: modelConfig)
        #expect(a.lora.rank == 8 && a.lora.alpha == 16 && !a.lora.useRSLoRA && a.lora.targets == Projection.allCases)
        #expect(a.weights.layers.count == modelConfig.layers)
        #expect(a.baseModelNameOrPath == nil)
        let file = try SafetensorsFile(path: fixtures.appendingPathComponent("adapter/adapter_model.safetensors").path)
        let down = LoRAWeights.peftKey(layer: 1, projection: .down, isA: false)
        #expect(try file.floats(named: down) == a.weights.layers[1][.down]!.b)
        #expect(a.weights.layers[1][.down]!.outFeatures == 64 && a.weights.layers[1][.down]!.inFeatures == 96)
    }

    @Test func mergeIsWPlusScaledBA() {
        let ad = LoRAPair(rank: 2, inFeatures: 3, outFeatures: 2, a: [1, 2, 3, 4, 5, 6], b: [1, 0, 0.5, -1])
        var w: [Float] = [10, 20, 30, 40, 50, 60]
        ad.merge(scale: 2, into: &w)
        // B·A = [[1, 2, 3], [0.5 - 4, 1 - 5, 1.5 - 6]]
        #expect(w == [12, 24, 36, 33, 42, 51])
    }

    /// Writes `a`, lets `edit` change the directory, and expects a load error containing `fragment`.
    func refuses(_ fragment: String, model: LlamaConfig? = Self.config, config: ((inout String) -> Void)? = nil,
                 tensors: ((inout [SafetensorsWriter.FloatTensor]) -> Void)? = nil) throws {
        let dir = try Self.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = Self.adapter()
        try a.write(to: dir)
        if let config {
            let url = dir.appendingPathComponent(PEFTAdapter.configFileName)
            var text = try String(contentsOf: url, encoding: .utf8)
            config(&text)
            try text.write(to: url, atomically: true, encoding: .utf8)
        }
        if let tensors {
            var list = a.weights.tensorNames.enumerated().map { (name: $1.name, shape: $1.shape, values: a.weights.tensors[$0]) }
            tensors(&list)
            try SafetensorsWriter.write(floats: list, to: dir.appendingPathComponent(PEFTAdapter.weightsFileName))
        }
        #expect {
            _ = try PEFTAdapter.load(directory: dir, model: model)
        } throws: { error in
            let text = "\(error)"
            if !text.contains(fragment) { Issue.record("error `\(text)` lacks `\(fragment)`") }
            return error is PEFTAdapterError
        }
    }

    @Test func refusesMalformedAdapters() throws {
        let q0A = LoRAWeights.peftKey(layer: 0, projection: .q, isA: true)
        let q0B = LoRAWeights.peftKey(layer: 0, projection: .q, isA: false)
        try refuses("`peft_type`: is PREFIX_TUNING") { $0 = $0.replacingOccurrences(of: "\"LORA\"", with: "\"PREFIX_TUNING\"") }
        try refuses("`use_dora`: DoRA") { $0 = $0.replacingOccurrences(of: "\"use_dora\":false", with: "\"use_dora\":true") }
        try refuses("`rank_pattern`: per-module ranks") {
            $0 = $0.replacingOccurrences(of: "\"rank_pattern\":{}", with: "\"rank_pattern\":{\"q_proj\":8}")
        }
        try refuses("`r`: must be a positive integer") { $0 = $0.replacingOccurrences(of: "\"r\":4", with: "\"r\":0") }
        try refuses("shape [4, 64], expected [r = 8, in]") { $0 = $0.replacingOccurrences(of: "\"r\":4", with: "\"r\":8") }
        try refuses("target_modules lists k_proj, but there are no k_proj tensors") {
            $0 = $0.replacingOccurrences(of: "[\"q_proj\",", with: "[\"q_proj\",\"k_proj\",")
        }
        try refuses("`lm_head` is not one of the seven") {
            $0 = $0.replacingOccurrences(of: "[\"q_proj\",", with: "[\"q_proj\",\"lm_head\",")
        }
        try refuses("tensor `\(q0B)`: missing", tensors: { list in list.removeAll { $0.name == q0B } })
        try refuses("tensor `base_model.model.lm_head.weight`: unexpected tensor", tensors: { list in
            list.append((name: "base_model.model.lm_head.weight", shape: [2], values: [1, 2]))
        })
        try refuses("tensor `\(q0A)`: shape [4, 32], expected [4, 64]", tensors: { list in
            let i = list.firstIndex { $0.name == q0A }!
            list[i] = (name: q0A, shape: [4, 32], values: Array(list[i].values.prefix(128)))
        })
        try refuses("holds a non-finite value", tensors: { list in
            let i = list.firstIndex { $0.name == q0B }!
            list[i].values[3] = .nan
        })
        // A 3-layer model does not fit a 2-layer adapter; a 1-layer model lacks layer 1.
        var three = Self.config
        three.layers = 3
        try refuses("missing (every adapted projection", model: three)
        var one = Self.config
        one.layers = 1
        try refuses("layer 1 does not exist", model: one)
        var wide = Self.config
        wide.intermediateSize = 128
        try refuses("down_proj.lora_A.weight`: shape [4, 96], expected [4, 128]", model: wide)
    }

    @Test func namesTheMissingFiles() throws {
        let dir = try Self.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect { _ = try PEFTAdapter.load(directory: dir) } throws: { "\($0)".contains("adapter_config.json: missing") }
        try Self.adapter().write(to: dir)
        try FileManager.default.removeItem(at: dir.appendingPathComponent(PEFTAdapter.weightsFileName))
        #expect { _ = try PEFTAdapter.load(directory: dir) } throws: { "\($0)".contains("adapter_model.safetensors: missing") }
    }
}
