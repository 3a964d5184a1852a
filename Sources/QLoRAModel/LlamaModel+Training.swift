import QLoRACore

/// Loss and gradients: the one loss computation (training, evaluation, `meanNLL`) and the backward through every
/// block to the LoRA pairs.
///
/// Shapes: R rows (all sequences of a batch end to end, see `TrainingBatch`), H hidden, V vocabulary. The backend's
/// fixed reduction orders make a step bit-reproducible.
extension LlamaModel {
    /// Rows per pass through the head: logits exist for this many rows at a time (`headRows × V` floats, 50 MB for
    /// a 49152 vocabulary), never for the whole batch.
    public static let headRows = 256

    /// What one training or evaluation forward shares: the batch on the backend, its RoPE tables and the dropout seed.
    struct BatchContext {
        let rows: Int
        let rope: RopeTables
        let documents: Tensor
        let targets: Tensor
        let dropoutSeed: UInt64?
    }

    private func context(_ batch: TrainingBatch, dropoutSeed: UInt64?) -> BatchContext {
        BatchContext(rows: batch.rows, rope: ropeTables(batch.positions), documents: backend.upload(batch.documents, shape: [batch.rows]),
                     targets: backend.upload(batch.targets, shape: [batch.rows]),
                     dropoutSeed: (lora?.dropout ?? 0) > 0 ? dropoutSeed : nil)
    }

    /// Training attention over the batch's documents, keeping the logsumexp for the backward.
    private func trainingAttention(_ ctx: BatchContext) -> Attend {
        let c = config, b = backend
        return { _, q, k, v, out in
            let lse = b.allocate([ctx.rows, c.heads], .f32)
            b.attentionTraining(q: q, k: k, v: v, out: out, logsumexp: lse, documents: ctx.documents, rows: ctx.rows, heads: c.heads,
                                kvHeads: c.kvHeads, headDim: c.headDim, scale: self.attentionScale)
            return lse
        }
    }

    /// Forward and backward of one micro-batch: returns the summed token losses and the number of counted targets,
    /// and ADDS `gradScale · d(Σ losses)/d(A, B)` into `gradients` (pass `gradScale = 1/N` with N the counted targets
    /// of the whole accumulated batch, so the result is the gradient of the mean). `dropoutSeed` seeds this
    /// micro-batch's LoRA dropout masks (see `LoRADropout`; unused when the dropout is 0): the same seed gives the
    /// same masks, so a resumed run must replay it.
    public func lossAndGradients(_ batch: TrainingBatch, gradScale: Float, dropoutSeed: UInt64 = 0,
                                 into gradients: AdapterTensors) -> (sum: Double, count: Int) {
        precondition(parameters != nil, "training needs an adapter (withAdapter)")
        let c = config, b = backend, rows = batch.rows, h = c.hiddenSize
        guard rows > 0 else { return (0, 0) }
        let ctx = context(batch, dropoutSeed: dropoutSeed)
        let attend = trainingAttention(ctx)
        var x = embed(batch.tokens).x
        var inputs: [Tensor] = [], saved: [BlockActivations] = []
        for l in 0..<c.layers {
            let acts = forwardBlock(l, x, rows: rows, rope: ctx.rope, dropoutSeed: ctx.dropoutSeed, attend: attend)
            if gradientCheckpointing { inputs.append(x) } else { saved.append(acts) }
            x = acts.output
        }
        let dNormed = b.allocate([rows, h], .f32)
        let loss = timed(profile, .head) { self.head(x, rows: rows, targets: ctx.targets, gradScale: gradScale, dNormed: dNormed) }
        var dx = b.allocate([rows, h], .f32)
        timed(profile, .head) {
            b.rmsNormBackward(dNormed, x: x, weight: finalNorm, dx: dx, dWeight: nil, rows: rows, dim: h, eps: c.rmsNormEps,
                              accumulate: false)
        }
        for l in stride(from: c.layers - 1, through: 0, by: -1) {
            let acts = gradientCheckpointing
                ? forwardBlock(l, inputs[l], rows: rows, rope: ctx.rope, dropoutSeed: ctx.dropoutSeed, attend: attend)
                : saved.removeLast()
            dx = backwardBlock(l, dx, acts, rows: rows, rope: ctx.rope, documents: ctx.documents, dropoutSeed: ctx.dropoutSeed,
                               gradients: gradients)
        }
        return loss
    }

    /// `lossAndGradients` with the gradients in host arrays (tests and small tools): `gradients` is uploaded, added
    /// to, and read back.
    public func lossAndGradients(_ batch: TrainingBatch, gradScale: Float, dropoutSeed: UInt64 = 0,
                                 into gradients: inout LoRAWeights) -> (sum: Double, count: Int) {
        let g = AdapterTensors(gradients, backend: backend)
        let loss = lossAndGradients(batch, gradScale: gradScale, dropoutSeed: dropoutSeed, into: g)
        gradients = g.download()
        return loss
    }

    /// Forward only: summed token losses and counted targets. Evaluation (no dropout) unless a `dropoutSeed` is given,
    /// which reproduces the training forward of `lossAndGradients` with that seed.
    public func loss(_ batch: TrainingBatch, dropoutSeed: UInt64? = nil) -> (sum: Double, count: Int) {
        guard batch.rows > 0 else { return (0, 0) }
        let ctx = context(batch, dropoutSeed: dropoutSeed)
        let attend = trainingAttention(ctx)
        var x = embed(batch.tokens).x
        for l in 0..<config.layers {
            x = forwardBlock(l, x, rows: batch.rows, rope: ctx.rope, dropoutSeed: ctx.dropoutSeed, attend: attend).output
        }
        return head(x, rows: batch.rows, targets: ctx.targets, gradScale: 0, dNormed: nil)
    }

    /// Logits `[T, V]` of one sequence at positions `0..<T`, without dropout: the model exactly as training evaluates
    /// it. Used to check merged exports against.
    public func logits(_ tokens: [Int32]) -> [Float] {
        tokens.isEmpty ? [] : logits(TrainingBatch(sequences: [tokens], labels: [tokens]))
    }

    /// Eval-mode logits `[R, V]` of a batch (no dropout). Materializes every row's logits: for tests and small batches
    /// (`loss` is the memory-frugal path).
    public func logits(_ batch: TrainingBatch) -> [Float] {
        let c = config, b = backend, rows = batch.rows, h = c.hiddenSize
        let ctx = context(batch, dropoutSeed: nil)
        let attend = trainingAttention(ctx)
        var x = embed(batch.tokens).x
        for l in 0..<c.layers { x = forwardBlock(l, x, rows: rows, rope: ctx.rope, dropoutSeed: nil, attend: attend).output }
        let normed = b.allocate([rows, h], .f32), logits = b.allocate([rows, c.vocabSize], .f32)
        b.rmsNorm(x, weight: finalNorm, normed, rows: rows, dim: h, eps: c.rmsNormEps)
        b.matmulTransposed(normed, head, logits, m: rows, n: c.vocabSize, k: h, accumulate: false)
        return b.download(logits)
    }

    /// Final norm, lm_head and cross-entropy over `x[R, H]`, `headRows` rows at a time: returns the summed token
    /// losses (chunks added in order, so the sum depends on nothing but R) and, when `dNormed[R, H]` is given,
    /// writes `d loss / d norm(x)` into it (`gradScale` as in `crossEntropy`).
    func head(_ x: Tensor, rows: Int, targets: Tensor, gradScale: Float, dNormed: Tensor?) -> (sum: Double, count: Int) {
        let c = config, b = backend, h = c.hiddenSize, vocab = c.vocabSize
        let chunk = min(rows, Self.headRows)
        let normed = b.allocate([chunk, h], .f32), logits = b.allocate([chunk, vocab], .f32)
        var total = 0.0, count = 0
        for r0 in stride(from: 0, to: rows, by: chunk) {
            let n = min(chunk, rows - r0)
            let z = logits.rows(0..<n), xn = normed.rows(0..<n)
            b.rmsNorm(x.rows(r0..<(r0 + n)), weight: finalNorm, xn, rows: n, dim: h, eps: c.rmsNormEps)
            b.matmulTransposed(xn, head, z, m: n, n: vocab, k: h, accumulate: false)
            let part = b.crossEntropy(logits: z, targets: targets.rows(r0..<(r0 + n)), dLogits: dNormed == nil ? nil : z, rows: n,
                                      vocab: vocab, gradScale: gradScale)
            total += part.sum
            count += part.count
            // logits now hold dLogits: d normed = dLogits · lm_head
            if let dNormed { b.matmul(z, head, dNormed.rows(r0..<(r0 + n)), m: n, n: h, k: vocab, accumulate: false) }
        }
        return (total, count)
    }
}
