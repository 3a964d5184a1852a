import Foundation
import QLoRACore
import QLoRAModel

/// A LLaMA-family model with a frozen base and LoRA adapters on its linear projections, with an explicit
/// training forward (saving what backward needs) and backward producing `dA`, `dB` of every adapter.
///
/// Shapes: R rows (all sequences of a batch end to end, see `TrainingBatch`), H hidden, F intermediate,
/// nH/nKV heads of width D, r the LoRA rank, V the vocabulary. Every adapted projection computes
/// `y = x·Wᵀ + (s·x·Aᵀ)·Bᵀ` (spec lora-and-peft-format §1); the frozen `W` passes gradients to `x` only.
/// The ops come from a `Backend`, whose fixed reduction orders make a step bit-reproducible. Frozen projections are
/// `LinearWeight`s: with a 4-bit base (`LlamaWeights.quantized`), forward and `dx` go through the backend's
/// 4-bit kernels, which dequantize slab by slab and never hold the whole fp32 matrix.
public final class LoRALlama: @unchecked Sendable {
    public let config: LlamaConfig
    public let lora: LoRAConfig
    public let backend: any Backend
    /// The trainable parameters.
    public var adapters: LoRAWeights
    /// Keep only each block's input during the forward and recompute the block in backward (QLoRA's
    /// default): activation memory O(layers·R·H) instead of O(layers·R·(H+F+attention)).
    public var gradientCheckpointing: Bool
    /// When set, every op's wall time is added to its part (see `StepProfile`).
    public var profile: StepProfile?

    let embedding: [Float]
    let lmHead: [Float]
    let finalNorm: [Float]
    let blocks: [FrozenBlock]
    let inverseFrequencies: [Float]

    struct FrozenBlock: Sendable {
        var attnNorm: [Float], ffnNorm: [Float]
        /// The frozen base projections (fp32 or 4-bit), indexed in `Projection.allCases` order.
        var linears: [LinearWeight]
        var bq: [Float]?, bk: [Float]?, bv: [Float]?
    }

    public init(config: LlamaConfig, weights: LlamaWeights, lora: LoRAConfig, adapters: LoRAWeights, backend: any Backend,
                gradientCheckpointing: Bool = true) {
        precondition(adapters.layers.count == config.layers, "adapters for \(adapters.layers.count) layers, model has \(config.layers)")
        self.config = config
        self.lora = lora
        self.backend = backend
        self.adapters = adapters
        self.gradientCheckpointing = gradientCheckpointing
        embedding = weights.embedding
        lmHead = weights.lmHead ?? weights.embedding
        finalNorm = weights.finalNorm
        blocks = weights.layers.map { l in
            FrozenBlock(attnNorm: l.attnNorm, ffnNorm: l.ffnNorm,
                        linears: [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown],
                        bq: l.bq, bk: l.bk, bv: l.bv)
        }
        inverseFrequencies = config.inverseFrequencies.map { Float($0) }
    }

    // MARK: Whole model

    @inline(__always)
    func timed<T>(_ part: StepProfile.Part, _ body: () throws -> T) rethrows -> T {
        guard let profile else { return try body() }
        return try profile.measure(part, body)
    }

    /// Forward and backward of one micro-batch: returns the summed token losses and the number of counted
    /// targets, and ADDS `gradScale · d(Σ losses)/d(A, B)` into `gradients` (pass `gradScale = 1/N` with N
    /// the counted targets of the whole accumulated batch, so the result is the gradient of the mean).
    /// `dropoutSeed` seeds this micro-batch's LoRA dropout masks (see `LoRADropout`; unused when
    /// `lora.dropout` is 0): the same seed gives the same masks, so a resumed run must replay it.
    public func lossAndGradients(_ batch: TrainingBatch, gradScale: Float, dropoutSeed: UInt64 = 0,
                                 into gradients: inout LoRAWeights) -> (sum: Double, count: Int) {
        let c = config, rows = batch.rows, h = c.hiddenSize
        let context = stepContext(batch.positions, dropoutSeed: lora.dropout > 0 ? dropoutSeed : nil)
        var x = timed(.embedding) { embed(batch.tokens) }
        var inputs: [[Float]] = [], saved: [BlockActivations] = []
        for l in 0..<c.layers {
            let acts = forwardBlock(l, x, context: context, documents: batch.documents)
            if gradientCheckpointing { inputs.append(x) } else { saved.append(acts.dropOutput()) }
            x = acts.output
        }
        var dNormed = [Float](repeating: 0, count: rows * h)
        let loss = timed(.head) { head(x, targets: batch.targets, gradScale: gradScale, dNormed: &dNormed) }
        var dx = [Float](repeating: 0, count: rows * h)
        timed(.head) {
            backend.rmsNormBackward(dNormed, x: x, weight: finalNorm, dx: &dx, dWeight: nil, rows: rows, dim: h, eps: c.rmsNormEps,
                                    accumulate: false)
        }
        for l in stride(from: c.layers - 1, through: 0, by: -1) {
            let acts = gradientCheckpointing ? forwardBlock(l, inputs[l], context: context, documents: batch.documents) : saved[l]
            dx = backwardBlock(l, dx, acts, context: context, documents: batch.documents, gradients: &gradients)
            if !gradientCheckpointing { saved.removeLast() }
        }
        return loss
    }

    /// Forward only: summed token losses and counted targets. Evaluation (no dropout) unless a
    /// `dropoutSeed` is given, which reproduces the training forward of `lossAndGradients` with that seed.
    public func loss(_ batch: TrainingBatch, dropoutSeed: UInt64? = nil) -> (sum: Double, count: Int) {
        let c = config
        let context = stepContext(batch.positions, dropoutSeed: lora.dropout > 0 ? dropoutSeed : nil)
        var x = embed(batch.tokens)
        for l in 0..<c.layers { x = forwardBlock(l, x, context: context, documents: batch.documents).output }
        return head(x, targets: batch.targets, gradScale: 0, dNormed: nil)
    }

    /// Logits `[T, V]` of one sequence at positions `0..<T`, without dropout: the adapted model exactly as
    /// training evaluates it, every adapted projection computing `x·Wᵀ + s·(x·Aᵀ)·Bᵀ` with `W` as stored
    /// (a 4-bit base through the backend's dequantizing kernels). Used to check merged exports against.
    public func logits(_ tokens: [Int32]) -> [Float] {
        tokens.isEmpty ? [] : logits(TrainingBatch(sequences: [tokens], labels: [tokens]))
    }

    /// Eval-mode logits `[R, V]` of a batch (no dropout). Materializes every row's logits: for tests and
    /// small batches (`loss` is the memory-frugal path).
    public func logits(_ batch: TrainingBatch) -> [Float] {
        let c = config, rows = batch.rows, h = c.hiddenSize
        let context = stepContext(batch.positions, dropoutSeed: nil)
        var x = embed(batch.tokens)
        for l in 0..<c.layers { x = forwardBlock(l, x, context: context, documents: batch.documents).output }
        var normed = [Float](repeating: 0, count: rows * h), logits = [Float](repeating: 0, count: rows * c.vocabSize)
        backend.rmsNorm(x, weight: finalNorm, &normed, rows: rows, dim: h, eps: c.rmsNormEps)
        backend.matmulTransposed(normed, lmHead, &logits, m: rows, n: c.vocabSize, k: h, accumulate: false)
        return logits
    }

    /// Rows per pass through the head: logits exist for this many rows at a time (`headRows × V` floats,
    /// 50 MB for a 49152 vocabulary), never for the whole batch.
    static let headRows = 256

    /// Final norm, lm_head and cross-entropy over `x[R, H]`, `headRows` rows at a time: returns the summed
    /// token losses (chunks added in order, so the sum does not depend on anything but R) and, when
    /// `dNormed[R, H]` is given, writes `d loss / d norm(x)` into it (`gradScale` as in `crossEntropy`).
    private func head(_ x: [Float], targets: [Int32], gradScale: Float, dNormed: UnsafeMutablePointer<Float>?) -> (sum: Double, count: Int) {
        let c = config, h = c.hiddenSize, vocab = c.vocabSize, rows = x.count / h
        guard rows > 0 else { return (0, 0) }
        let chunk = min(rows, Self.headRows)
        var normed = [Float](repeating: 0, count: chunk * h), logits = [Float](repeating: 0, count: chunk * vocab)
        var total = 0.0, count = 0
        for r0 in stride(from: 0, to: rows, by: chunk) {
            let n = min(chunk, rows - r0)
            x.withUnsafeBufferPointer { xb in
                backend.rmsNorm(xb.baseAddress! + r0 * h, weight: finalNorm, &normed, rows: n, dim: h, eps: c.rmsNormEps)
            }
            backend.matmulTransposed(normed, lmHead, &logits, m: n, n: vocab, k: h, accumulate: false)
            let part = logits.withUnsafeMutableBufferPointer { z in
                targets.withUnsafeBufferPointer { t in
                    backend.crossEntropy(logits: z.baseAddress!, targets: t.baseAddress! + r0, dLogits: dNormed == nil ? nil : z.baseAddress!,
                                         rows: n, vocab: vocab, gradScale: gradScale)
                }
            }
            total += part.sum
            count += part.count
            // logits now hold dLogits: d normed = dLogits · lm_head
            if let dNormed { backend.matmul(logits, lmHead, dNormed + r0 * h, m: n, n: h, k: vocab, accumulate: false) }
        }
        return (total, count)
    }

    private func embed(_ tokens: [Int32]) -> [Float] {
        let h = config.hiddenSize
        precondition(tokens.allSatisfy { $0 >= 0 && Int($0) < config.vocabSize }, "token id out of range")
        var x = [Float](repeating: 0, count: tokens.count * h)
        tokens.withUnsafeBufferPointer { ids in
            backend.embedding(embedding, ids: ids.baseAddress!, &x, rows: tokens.count, dim: h)
        }
        return x
    }

    /// What every block of one forward shares: RoPE cos/sin `[R, D/2]` and the dropout seed (nil: no LoRA
    /// dropout).
    struct StepContext {
        var cos: [Float], sin: [Float]
        var dropoutSeed: UInt64? = nil
    }

    /// cos/sin of `position · inv_freq` in fp32, as HF computes them.
    private func stepContext(_ positions: [Int32], dropoutSeed: UInt64?) -> StepContext {
        let half = config.headDim / 2
        var t = StepContext(cos: [Float](repeating: 0, count: positions.count * half), sin: [], dropoutSeed: dropoutSeed)
        t.sin = t.cos
        for (r, p) in positions.enumerated() {
            for i in 0..<half {
                let angle = Float(p) * inverseFrequencies[i]
                t.cos[r * half + i] = Foundation.cos(angle)
                t.sin[r * half + i] = Foundation.sin(angle)
            }
        }
        return t
    }
}
