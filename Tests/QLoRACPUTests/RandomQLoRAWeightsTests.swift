import Foundation
import Testing
import QLoRACore
import QLoRACPU
import QLoRAModel
import QLoRAPipeline
@testable import QLoRABench

/// `bench train --model-shape`'s random NF4 models (Sources/QLoRABench/RandomQLoRAWeights.swift): valid for the
/// model, reproducible, with a freshly initialized model's statistics (losses near ln(vocab)).
@Suite struct RandomQLoRAWeightsTests {
    let shape = ModelShape(name: "test", hidden: 64, intermediate: 160, layers: 3, heads: 4, kvHeads: 2, vocab: 300,
                           tiedEmbeddings: false)

    @Test func sameSeedSameWeightsOtherSeedOthers() {
        let config = RandomQLoRAWeights.config(shape, layers: 2)
        #expect(config.layers == 2 && config.hiddenSize == 64 && config.kvHeads == 2 && !config.tieWordEmbeddings)
        let a = RandomQLoRAWeights.make(config, seed: 7), b = RandomQLoRAWeights.make(config, seed: 7)
        let c = RandomQLoRAWeights.make(config, seed: 8)
        #expect(a.embedding == b.embedding && a.lmHead == b.lmHead && a.layers[1].wDown == b.layers[1].wDown)
        #expect(a.embedding != c.embedding && a.layers[0].wq != c.layers[0].wq)
        // Every tensor has its own stream: no two projections are the same.
        #expect(a.layers[0].wGate != a.layers[0].wUp && a.layers[0].wq != a.layers[1].wq)
        #expect(a.layers.count == 2 && a.lmHead?.count == 300 * 64)
        #expect(RandomQLoRAWeights.make(RandomQLoRAWeights.config(tied), seed: 1).lmHead == nil)
    }

    var tied: ModelShape {
        var s = shape
        s.tiedEmbeddings = true
        return s
    }

    @Test func projectionsHaveTheStatisticsOfNormalWeightsInNF4() throws {
        let t = RandomQLoRAWeights.fourBit(rows: 512, columns: 256, seed: 3)
        #expect(t.shape == [512, 256] && t.blocksize == 64 && t.type == .nf4 && t.isDoubleQuantized)
        #expect(t.packed.count == 512 * 256 / 2)
        var histogram = [Int](repeating: 0, count: 16)
        for byte in t.packed { histogram[Int(byte >> 4)] += 1; histogram[Int(byte & 15)] += 1 }
        let expected = Double(t.count) / 16
        for n in histogram { #expect(abs(Double(n) - expected) < 0.05 * expected, "codes not uniform: \(histogram)") }
        let values = FourBitQuantizer.dequantizeReference(t)
        let mean = values.reduce(0.0) { $0 + Double($1) } / Double(values.count)
        let std = (values.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / Double(values.count)).squareRoot()
        // Uniform codes over NF4's 16 levels (rms 0.517, mean 0.024: 8 positive, 7 negative) at absmax 0.048: σ 0.025,
        // mean 0.0011 (measured 0.0249 and 0.0012), a freshly initialized model's magnitude.
        #expect(abs(mean) < 2e-3 && std > 0.02 && std < 0.03, "mean \(mean), std \(std)")
        let embedding = RandomQLoRAWeights.uniform(count: 100_000, std: 0.02, seed: 5)
        let e = (embedding.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(embedding.count)).squareRoot()
        #expect(abs(e - 0.02) < 0.001 && embedding.allSatisfy { Double(abs($0)) <= 0.02 * 3.0.squareRoot() + 1e-9 })
    }

    @Test func aModelOfRandomWeightsTrainsWithLossesNearLogVocabulary() throws {
        let config = RandomQLoRAWeights.config(shape)
        let backend = CPUBackend(threads: 2)
        let model = LlamaModel(config: config, weights: RandomQLoRAWeights.make(config, seed: 7), backend: backend)
        var rng = SeededGenerator(seed: 1)
        let tokens = (0..<2).map { _ in (0..<24).map { _ in Int32(rng.next() % 300) } }
        let loss = model.loss(TrainingBatch(sequences: tokens, labels: tokens))
        let mean = loss.sum / Double(loss.count)
        #expect(loss.count == 2 * 23 && mean.isFinite && abs(mean - log(300.0)) < 0.5, "loss \(mean), ln 300 = \(log(300.0))")
    }
}
