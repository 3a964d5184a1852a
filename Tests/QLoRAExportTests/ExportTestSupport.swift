import Foundation
import QLoRACore
import QLoRACPU
import QLoRAFormats
import QLoRAModel
import QLoRATraining

/// The tiny random models of QLoRAModelTests (HF directories, and gqa_tied as the converter's GGUF).
enum ExportFixtures {
    static let models = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("QLoRAModelTests/Fixtures")

    static func path(_ name: String) -> String { models.appendingPathComponent(name).path }

    /// A fresh temporary directory.
    static func tmp() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// An adapter for `config` with A and B both drawn from U(−0.25, 0.25), so `s·B·A` visibly changes the model.
    static func adapter(for config: LlamaConfig, rank: Int = 4, alpha: Double = 8, useRSLoRA: Bool = false,
                        targets: [Projection] = Projection.allCases, seed: UInt64 = 7) -> PEFTAdapter {
        let lora = LoRAConfig(rank: rank, alpha: alpha, useRSLoRA: useRSLoRA, targets: targets)
        var rng = SeededGenerator(seed: seed)
        var w = LoRAWeights.zeros(config, lora)
        w.forEachTensor { t in t = t.map { _ in Float(Int(rng.next() % 10_001) - 5000) / 20_000 } }
        return PEFTAdapter(lora: lora, weights: w)
    }

    static let ids: [Int] = [5, 17, 99, 3, 64, 120, 33, 7, 81, 42, 11, 100, 58, 9]

    /// Logits `[T, V]` of `ids` through a plain forward.
    static func logits(_ model: LlamaModel, _ ids: [Int]) -> [Float] {
        var cache = KVCache(config: model.config, capacity: ids.count)
        return model.forward(ids, cache: &cache, allLogits: true)
    }

    static func maxAbsDiff(_ a: [Float], _ b: [Float]) -> Float {
        zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }
}
