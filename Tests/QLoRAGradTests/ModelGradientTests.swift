import Foundation
import Testing
import QLoRACore
import QLoRACPU
import QLoRAModel
@testable import QLoRATraining

/// Finite differences through a whole tiny model (attention biases, GQA, two packed documents with
/// restarting positions, masked labels): for every adapter tensor, the coordinate with the largest
/// analytic gradient and one random coordinate.
///
/// The loss is the summed token loss (Double sum of Float activations). Central differences with
/// `h = 1e-2` on parameters of size ~0.1: the Float noise of the loss (~1e-6 relative) gives ~1e-4 absolute
/// error after dividing by 2h, truncation ~1e-5; tolerance `2e-3·max|g| + 1e-2·|g|` per checked coordinate,
/// where `max|g|` is the tensor's largest gradient.
@Suite struct ModelGradientTests {
    static let config = LlamaConfig(hiddenSize: 32, intermediateSize: 40, layers: 2, heads: 4, kvHeads: 2, vocabSize: 50,
                                    maxPositions: 64, rmsNormEps: 1e-5, ropeTheta: 10000, attentionBias: true)

    static func randomWeights(_ c: LlamaConfig, rng: inout SeededGenerator) -> LlamaWeights {
        func r(_ n: Int, _ scale: Float, offset: Float = 0) -> [Float] { random(n, &rng, scale: scale, offset: offset) }
        let h = c.hiddenSize, q = c.heads * c.headDim, kv = c.kvHeads * c.headDim, f = c.intermediateSize
        let layers = (0..<c.layers).map { _ in
            LlamaWeights.Layer(attnNorm: r(h, 0.1, offset: 1), wq: r(q * h, 0.3), wk: r(kv * h, 0.3), wv: r(kv * h, 0.3),
                               wo: r(h * q, 0.3), bq: r(q, 0.3), bk: r(kv, 0.3), bv: r(kv, 0.3), ffnNorm: r(h, 0.1, offset: 1),
                               wGate: r(f * h, 0.3), wUp: r(f * h, 0.3), wDown: r(h * f, 0.3))
        }
        return LlamaWeights(embedding: r(c.vocabSize * h, 1), layers: layers, finalNorm: r(h, 0.1, offset: 1), lmHead: nil)
    }

    /// A random model with random adapters and a two-document batch.
    static func setup(_ lora: LoRAConfig, checkpointing: Bool = true) -> (LlamaModel, TrainingBatch, LoRAWeights, SeededGenerator) {
        var rng = SeededGenerator(seed: 41)
        let c = config
        var adapters = LoRAWeights.zeros(c, lora)
        adapters.forEachTensor { values in values = random(values.count, &rng, scale: 0.2) }
        let model = adaptedModel(config: c, weights: randomWeights(c, rng: &rng), lora: lora, adapters: adapters,
                              backend: CPUBackend(threads: 2), gradientCheckpointing: checkpointing)
        let tokens: [Int32] = (0..<14).map { _ in Int32(rng.next() % 50) }
        var targets = Array(tokens.dropFirst()) + [CrossEntropy.ignoreIndex]
        targets[2] = CrossEntropy.ignoreIndex
        targets[7] = CrossEntropy.ignoreIndex  // the last row of document 0 predicts nothing
        let batch = TrainingBatch(tokens: tokens, targets: targets, positions: (0..<8).map(Int32.init) + (0..<6).map(Int32.init),
                                  documents: [Int32](repeating: 3, count: 8) + [Int32](repeating: 4, count: 6))
        return (model, batch, adapters, rng)
    }

    @Test(arguments: [0.0, 0.3])
    func adapterGradientsMatchFiniteDifferencesThroughTheWholeModel(dropout: Double) {
        let lora = LoRAConfig(rank: 4, alpha: 8, dropout: dropout)
        var (model, batch, adapters, rng) = Self.setup(lora)
        let c = Self.config, seed: UInt64 = 1234
        var grads = LoRAWeights.zeros(c, lora)
        _ = model.lossAndGradients(batch, gradScale: 1, dropoutSeed: seed, into: &grads)

        let h: Float = 1e-2
        let names = grads.tensorNames, analytic = grads.tensors
        for (t, g) in analytic.enumerated() {
            let largest = g.indices.max { abs(g[$0]) < abs(g[$1]) }!
            let scale = abs(g[largest])
            for i in [largest, Int(rng.next() % UInt64(g.count))] {
                func loss(_ delta: Float) -> Double {
                    var w = adapters
                    var index = 0
                    w.forEachTensor { values in
                        if index == t { values[i] += delta }
                        index += 1
                    }
                    model.adapters = w
                    return model.loss(batch, dropoutSeed: seed).sum
                }
                let fd = Float((loss(h) - loss(-h)) / Double(2 * h))
                #expect(abs(fd - g[i]) <= 2e-3 * scale + 1e-2 * abs(g[i]), "\(names[t].name)[\(i)]: fd \(fd), analytic \(g[i])")
            }
            #expect(scale > 0, "\(names[t].name) has an all-zero gradient")
        }
        model.adapters = adapters
    }

    @Test func aFourBitBaseTrainsLikeItsDequantizedWeights() {
        // The NF4 (double-quantized) base and an fp32 copy of its dequantized values are the same function;
        // the 4-bit kernels only sum in another order. Tolerance 1e-4 relative (per tensor for gradients).
        let lora = LoRAConfig(rank: 4, alpha: 8)
        var rng = SeededGenerator(seed: 42)
        let c = Self.config
        let fourBit = Self.randomWeights(c, rng: &rng).quantized(FourBitOptions())
        var dense = fourBit
        for i in dense.layers.indices {
            let l = dense.layers[i]
            #expect(l.wq.isQuantized && l.wDown.isQuantized)
            dense.layers[i].wq = .dense(l.wq.floats)
            dense.layers[i].wk = .dense(l.wk.floats)
            dense.layers[i].wv = .dense(l.wv.floats)
            dense.layers[i].wo = .dense(l.wo.floats)
            dense.layers[i].wGate = .dense(l.wGate.floats)
            dense.layers[i].wUp = .dense(l.wUp.floats)
            dense.layers[i].wDown = .dense(l.wDown.floats)
        }
        var adapters = LoRAWeights.zeros(c, lora)
        adapters.forEachTensor { values in values = random(values.count, &rng, scale: 0.2) }
        let (_, batch, _, _) = Self.setup(lora)
        var results: [(Double, [[Float]])] = []
        for weights in [fourBit, dense] {
            let model = adaptedModel(config: c, weights: weights, lora: lora, adapters: adapters, backend: CPUBackend(threads: 2))
            var grads = LoRAWeights.zeros(c, lora)
            let loss = model.lossAndGradients(batch, gradScale: 1, into: &grads)
            results.append((loss.sum, grads.tensors))
        }
        #expect(abs(results[0].0 - results[1].0) <= 1e-5 * abs(results[1].0))
        for (a, b) in zip(results[0].1, results[1].1) {
            let scale = b.map(abs).max()!
            #expect(zip(a, b).allSatisfy { abs($0 - $1) <= 1e-4 * scale })
        }
    }

    @Test func dropoutMasksReplayFromTheSeedWithOrWithoutCheckpointing() {
        let lora = LoRAConfig(rank: 4, alpha: 8, dropout: 0.25)
        func run(_ seed: UInt64, checkpointing: Bool) -> (Double, LoRAWeights) {
            let (model, batch, _, _) = Self.setup(lora, checkpointing: checkpointing)
            var grads = LoRAWeights.zeros(Self.config, lora)
            let loss = model.lossAndGradients(batch, gradScale: 1, dropoutSeed: seed, into: &grads)
            #expect(model.loss(batch, dropoutSeed: seed).sum == loss.sum)
            return (loss.sum, grads)
        }
        let a = run(7, checkpointing: true), b = run(7, checkpointing: false), other = run(8, checkpointing: true)
        #expect(a.0 == b.0 && a.1 == b.1)
        #expect(a.0 != other.0 && a.1 != other.1)
        // Evaluation (no seed) uses no dropout and differs from the training forward.
        let (model, batch, _, _) = Self.setup(lora)
        #expect(model.loss(batch).sum != a.0)
    }

    /// `values` through `backend.dropout` with `mask` (into a copy, or in place).
    private func dropped(_ values: [Float], _ mask: DropoutMask, _ backend: any HostBackend, inPlace: Bool = false) -> [Float] {
        var out = values
        if inPlace {
            out.withUnsafeMutableBufferPointer { backend.dropout($0.baseAddress!, $0.baseAddress!, count: $0.count, mask: mask) }
        } else {
            values.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { backend.dropout(src.baseAddress!, $0.baseAddress!, count: src.count, mask: mask) }
            }
        }
        return out
    }

    @Test func dropoutKeepsAboutOneMinusPAndScalesKeptValues() {
        let mask = LoRADropout.mask(probability: 0.3, stepSeed: 5, layer: 1, projection: .up)
        let values = dropped([Float](repeating: 2, count: 100_000), mask, CPUBackend(), inPlace: true)
        let kept = values.filter { $0 != 0 }
        #expect(kept.allSatisfy { abs($0 - 2 / 0.7) <= 1e-6 })
        #expect(abs(Double(kept.count) / 100_000 - 0.7) <= 0.006)  // 4 standard deviations
        #expect(dropped([Float](repeating: 2, count: 100_000), mask, CPUBackend(), inPlace: true) == values)
        let otherModule = LoRADropout.mask(probability: 0.3, stepSeed: 5, layer: 1, projection: .down)
        #expect(dropped([Float](repeating: 2, count: 100_000), otherModule, CPUBackend()) != values)
    }

    @Test func dropoutMasksAreTheSameOnEveryBackendAndKernelPathAndUncorrelated() {
        let mask = LoRADropout.mask(probability: 0.05, stepSeed: 11, layer: 3, projection: .q)
        let source = (0..<200_003).map { Float($0 % 97) + 1 }
        let scalar = dropped(source, mask, CPUBackend(kernels: .scalar))
        let fast = dropped(source, mask, CPUBackend())
        #expect(scalar == fast)  // AVX2 (when present) and portable paths, and any chunking, give the same mask
        #expect(dropped(source, mask, ReferenceBackend()) == fast)
        #expect(dropped(source, mask, CPUBackend(), inPlace: true) == fast)
        let dropped = fast.map { $0 == 0 }
        let rate = Double(dropped.filter { $0 }.count) / Double(dropped.count)
        #expect(abs(rate - 0.05) < 0.002)
        // Neighbouring elements are independent: P(both dropped) ≈ p².
        let pairs = zip(dropped, dropped.dropFirst()).filter { $0 && $1 }.count
        #expect(abs(Double(pairs) / Double(dropped.count - 1) - 0.0025) < 0.0006)
    }

    @Test func adamWMatchesTheSpecWorkedExample() {
        // paged-optimizers §5: p = 1, lr = 0.1, wd = 0.01; g = 0.5 then −0.25 → 0.89900005 then 0.87146735.
        let c = LlamaConfig(hiddenSize: 1, intermediateSize: 1, layers: 1, heads: 1, kvHeads: 1, headDim: 2, vocabSize: 2)
        let lora = LoRAConfig(rank: 1, alpha: 1, targets: [.q])
        var w = LoRAWeights.zeros(c, lora)
        w.layers[0][.q]!.a = [1]
        var g = LoRAWeights.zeros(c, lora)
        let weights = AdapterTensors(w, backend: ReferenceBackend()), gradients = AdapterTensors(g, backend: ReferenceBackend())
        var opt = AdamW(.init(learningRate: 0.1, weightDecay: 0.01), for: weights)
        g.layers[0][.q]!.a = [0.5]
        gradients.write(g)
        opt.update(weights, gradients: gradients)
        #expect(weights.download().layers[0][.q]!.a == [0.89900005])
        g.layers[0][.q]!.a = [-0.25]
        gradients.write(g)
        opt.update(weights, gradients: gradients)
        #expect(abs(weights.download().layers[0][.q]!.a[0] - 0.87146735) <= 1e-7)
    }

    @Test func clippingScalesByMaxNormOverTheGlobalNorm() {
        let c = LlamaConfig(hiddenSize: 2, intermediateSize: 2, layers: 1, heads: 1, kvHeads: 1, headDim: 2, vocabSize: 2)
        var g = LoRAWeights.zeros(c, LoRAConfig(rank: 1, alpha: 1, targets: [.q, .v]))
        g.layers[0][.q]!.a = [3, 0]
        g.layers[0][.v]!.b = [0, 4]
        let tensors = AdapterTensors(g, backend: ReferenceBackend())
        let total = clipGradientNorm(tensors, maxNorm: 1)
        #expect(total == 5)
        g = tensors.download()
        #expect(abs(g.layers[0][.q]!.a[0] - 0.6) <= 1e-6 && abs(g.layers[0][.v]!.b[1] - 0.8) <= 1e-6)
        let again = clipGradientNorm(tensors, maxNorm: 10)  // below the limit: unchanged
        g = tensors.download()
        #expect(abs(again - 1) <= 1e-6 && abs(g.layers[0][.q]!.a[0] - 0.6) <= 1e-6)
    }
}
