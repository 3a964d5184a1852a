import QLoRACore
import QLoRAModel

/// One decoder block: forward with saved activations, and its backward (spec llama-architecture §2, §4).
extension LoRALlama {
    /// What a block's backward needs (R rows). `z[p]` is `s·(x·Aᵀ)` `[R, r]` of each adapted projection.
    struct BlockActivations {
        var input: [Float]            // [R, H] the block input (residual)
        var xn1: [Float]              // [R, H] attention-norm output: input of q/k/v
        var q: [Float], k: [Float]    // [R, nH·D], [R, nKV·D] after RoPE
        var v: [Float]                // [R, nKV·D]
        var attn: [Float]             // [R, nH·D] attention output: input of o
        var lse: [Float]              // [R, nH] softmax logsumexp per row and head
        var h1: [Float]               // [R, H] after the attention residual
        var xn2: [Float]              // [R, H] MLP-norm output: input of gate/up
        var gate: [Float], up: [Float] // [R, F] pre-activation
        var act: [Float]              // [R, F] silu(gate)·up: input of down
        var z: [Projection: [Float]]
        var output: [Float]           // [R, H] the block output (only kept until the next block starts)

        func dropOutput() -> BlockActivations {
            var copy = self
            copy.output = []
            return copy
        }
    }

    func forwardBlock(_ l: Int, _ input: [Float], context: StepContext, documents: [Int32]) -> BlockActivations {
        let c = config, b = backend, block = blocks[l]
        let rows = input.count / c.hiddenSize, h = c.hiddenSize, f = c.intermediateSize
        let qWidth = c.heads * c.headDim, kvWidth = c.kvHeads * c.headDim
        var z: [Projection: [Float]] = [:]

        var xn1 = [Float](repeating: 0, count: rows * h)
        timed(.elementwiseForward) {
            b.rmsNorm(input, weight: block.attnNorm, &xn1, rows: rows, dim: h, eps: c.rmsNormEps)
        }
        var q = [Float](repeating: 0, count: rows * qWidth)
        var k = [Float](repeating: 0, count: rows * kvWidth), v = k
        linear(.q, l, xn1, context, rows: rows, into: &q, accumulate: false, z: &z)
        linear(.k, l, xn1, context, rows: rows, into: &k, accumulate: false, z: &z)
        linear(.v, l, xn1, context, rows: rows, into: &v, accumulate: false, z: &z)
        if let bq = block.bq, let bk = block.bk, let bv = block.bv {
            timed(.elementwiseForward) {
                b.addBias(&q, bq, rows: rows, width: qWidth)
                b.addBias(&k, bk, rows: rows, width: kvWidth)
                b.addBias(&v, bv, rows: rows, width: kvWidth)
            }
        }
        timed(.elementwiseForward) {
            b.rope(&q, rows: rows, heads: c.heads, headDim: c.headDim, cos: context.cos, sin: context.sin)
            b.rope(&k, rows: rows, heads: c.kvHeads, headDim: c.headDim, cos: context.cos, sin: context.sin)
        }
        var attn = [Float](repeating: 0, count: rows * qWidth)
        var lse = [Float](repeating: 0, count: rows * c.heads)
        timed(.attentionForward) {
            b.attentionTraining(q: q, k: k, v: v, out: &attn, logsumexp: &lse, documents: documents, rows: rows, heads: c.heads,
                                kvHeads: c.kvHeads, headDim: c.headDim, scale: attentionScale)
        }
        var h1 = input
        linear(.o, l, attn, context, rows: rows, into: &h1, accumulate: true, z: &z)

        var xn2 = [Float](repeating: 0, count: rows * h)
        timed(.elementwiseForward) {
            b.rmsNorm(h1, weight: block.ffnNorm, &xn2, rows: rows, dim: h, eps: c.rmsNormEps)
        }
        var gate = [Float](repeating: 0, count: rows * f), up = gate, act = gate
        linear(.gate, l, xn2, context, rows: rows, into: &gate, accumulate: false, z: &z)
        linear(.up, l, xn2, context, rows: rows, into: &up, accumulate: false, z: &z)
        timed(.elementwiseForward) {
            b.swiglu(gate: gate, up: up, &act, count: rows * f)
        }
        var output = h1
        linear(.down, l, act, context, rows: rows, into: &output, accumulate: true, z: &z)
        return BlockActivations(input: input, xn1: xn1, q: q, k: k, v: v, attn: attn, lse: lse, h1: h1, xn2: xn2,
                                gate: gate, up: up, act: act, z: z, output: output)
    }

    /// Returns `d input` given `d output`; adds the adapters' gradients into `gradients`.
    func backwardBlock(_ l: Int, _ dOutput: [Float], _ a: BlockActivations, context: StepContext, documents: [Int32],
                       gradients: inout LoRAWeights) -> [Float] {
        let c = config, b = backend, block = blocks[l]
        let rows = dOutput.count / c.hiddenSize, h = c.hiddenSize, f = c.intermediateSize
        let qWidth = c.heads * c.headDim, kvWidth = c.kvHeads * c.headDim

        // MLP: output = h1 + down(silu(gate(xn2)) · up(xn2)), xn2 = norm(h1)
        var dAct = [Float](repeating: 0, count: rows * f)
        linearBackward(.down, l, context, x: a.act, dy: dOutput, rows: rows, dx: &dAct, accumulate: false, z: a.z, gradients: &gradients)
        var dUp = [Float](repeating: 0, count: rows * f)
        timed(.elementwiseBackward) {
            dAct.withUnsafeMutableBufferPointer { d in
                b.swigluBackward(d.baseAddress!, gate: a.gate, up: a.up, dGate: d.baseAddress!, dUp: &dUp, count: rows * f)
            }
        }
        var dXn2 = [Float](repeating: 0, count: rows * h)
        linearBackward(.gate, l, context, x: a.xn2, dy: dAct, rows: rows, dx: &dXn2, accumulate: false, z: a.z, gradients: &gradients)
        linearBackward(.up, l, context, x: a.xn2, dy: dUp, rows: rows, dx: &dXn2, accumulate: true, z: a.z, gradients: &gradients)
        var dH1 = dOutput
        timed(.elementwiseBackward) {
            b.rmsNormBackward(dXn2, x: a.h1, weight: block.ffnNorm, dx: &dH1, dWeight: nil, rows: rows, dim: h, eps: c.rmsNormEps,
                              accumulate: true)
        }

        // Attention: h1 = input + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1))), xn1 = norm(input)
        var dAttn = [Float](repeating: 0, count: rows * qWidth)
        linearBackward(.o, l, context, x: a.attn, dy: dH1, rows: rows, dx: &dAttn, accumulate: false, z: a.z, gradients: &gradients)
        var dq = [Float](repeating: 0, count: rows * qWidth)
        var dk = [Float](repeating: 0, count: rows * kvWidth), dv = dk
        timed(.attentionBackward) {
            b.attentionBackward(dOut: dAttn, q: a.q, k: a.k, v: a.v, out: a.attn, logsumexp: a.lse, dq: &dq, dk: &dk, dv: &dv,
                                documents: documents, rows: rows, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim,
                                scale: attentionScale)
        }
        timed(.elementwiseBackward) {
            b.ropeBackward(&dq, rows: rows, heads: c.heads, headDim: c.headDim, cos: context.cos, sin: context.sin)
            b.ropeBackward(&dk, rows: rows, heads: c.kvHeads, headDim: c.headDim, cos: context.cos, sin: context.sin)
        }
        var dXn1 = [Float](repeating: 0, count: rows * h)
        linearBackward(.q, l, context, x: a.xn1, dy: dq, rows: rows, dx: &dXn1, accumulate: false, z: a.z, gradients: &gradients)
        linearBackward(.k, l, context, x: a.xn1, dy: dk, rows: rows, dx: &dXn1, accumulate: true, z: a.z, gradients: &gradients)
        linearBackward(.v, l, context, x: a.xn1, dy: dv, rows: rows, dx: &dXn1, accumulate: true, z: a.z, gradients: &gradients)
        var dInput = dH1
        timed(.elementwiseBackward) {
            b.rmsNormBackward(dXn1, x: a.input, weight: block.attnNorm, dx: &dInput, dWeight: nil, rows: rows, dim: h,
                              eps: c.rmsNormEps, accumulate: true)
        }
        return dInput
    }

    var attentionScale: Float { 1 / Float(config.headDim).squareRoot() }

    // MARK: LoRA linear

    private func dropoutMask(_ p: Projection, _ l: Int, _ context: StepContext) -> DropoutMask? {
        context.dropoutSeed.map { LoRADropout.mask(probability: lora.dropout, stepSeed: $0, layer: l, projection: p) }
    }

    /// `dropout(x)` as a new array.
    private func dropped(_ x: [Float], _ mask: DropoutMask) -> [Float] {
        [Float](unsafeUninitializedCapacity: x.count) { out, initialized in
            x.withUnsafeBufferPointer { backend.dropout($0.baseAddress!, out.baseAddress!, count: $0.count, mask: mask) }
            initialized = x.count
        }
    }

    /// `y (+)= x·Wᵀ + (s·xd·Aᵀ)·Bᵀ` with `xd = dropout(x)`; keeps `s·xd·Aᵀ` in `z[p]` for the backward.
    private func linear(_ p: Projection, _ l: Int, _ x: [Float], _ context: StepContext, rows: Int, into y: inout [Float],
                        accumulate: Bool, z: inout [Projection: [Float]]) {
        let (out, inFeatures) = p.shape(config)
        timed(.baseForward) {
            blocks[l].linears[p.index].forward(x, rows: rows, out: out, in: inFeatures, into: &y, accumulate: accumulate, backend: backend)
        }
        guard let ad = adapters.layers[l][p] else { return }
        var za = [Float](repeating: 0, count: rows * ad.rank)
        if let mask = dropoutMask(p, l, context) {
            let xd = timed(.dropout) { dropped(x, mask) }
            timed(.loraForward) { backend.matmulTransposed(xd, ad.a, &za, m: rows, n: ad.rank, k: inFeatures, accumulate: false) }
        } else {
            timed(.loraForward) { backend.matmulTransposed(x, ad.a, &za, m: rows, n: ad.rank, k: inFeatures, accumulate: false) }
        }
        timed(.loraForward) {
            backend.scale(&za, by: lora.scaling, count: za.count)
            backend.matmulTransposed(za, ad.b, &y, m: rows, n: out, k: ad.rank, accumulate: true)
        }
        z[p] = za
    }

    /// `dx (+)= dy·W + dropout'(s·(dy·B)·A)`; adds `dB += dyᵀ·z`, `dA += (s·dy·B)ᵀ·xd` into `gradients`, with the
    /// forward's dropout mask replayed from the seed.
    private func linearBackward(_ p: Projection, _ l: Int, _ context: StepContext, x: [Float], dy: [Float], rows: Int,
                                dx: inout [Float], accumulate: Bool, z: [Projection: [Float]], gradients: inout LoRAWeights) {
        let (out, inFeatures) = p.shape(config)
        timed(.baseBackward) {
            blocks[l].linears[p.index].backwardInput(dy, rows: rows, out: out, in: inFeatures, into: &dx, accumulate: accumulate,
                                                     backend: backend)
        }
        guard let ad = adapters.layers[l][p], let za = z[p] else { return }
        let r = ad.rank
        precondition(gradients.layers[l][p] != nil, "no gradient slot for layer \(l) \(p.rawValue)")
        var dz = [Float](repeating: 0, count: rows * r)
        timed(.loraBackward) {
            backend.matmulTransposedA(dy, za, &gradients.layers[l][p]!.b, m: out, n: r, k: rows, accumulate: true)
            backend.matmul(dy, ad.b, &dz, m: rows, n: r, k: out, accumulate: false)
            backend.scale(&dz, by: lora.scaling, count: dz.count)
        }
        guard let mask = dropoutMask(p, l, context) else {
            timed(.loraBackward) {
                backend.matmulTransposedA(dz, x, &gradients.layers[l][p]!.a, m: r, n: inFeatures, k: rows, accumulate: true)
                backend.matmul(dz, ad.a, &dx, m: rows, n: inFeatures, k: r, accumulate: true)
            }
            return
        }
        let xd = timed(.dropout) { dropped(x, mask) }
        var dxd = [Float](repeating: 0, count: rows * inFeatures)
        timed(.loraBackward) {
            backend.matmulTransposedA(dz, xd, &gradients.layers[l][p]!.a, m: r, n: inFeatures, k: rows, accumulate: true)
            backend.matmul(dz, ad.a, &dxd, m: rows, n: inFeatures, k: r, accumulate: false)
        }
        timed(.dropout) {
            dxd.withUnsafeMutableBufferPointer { backend.dropout($0.baseAddress!, $0.baseAddress!, count: $0.count, mask: mask) }
        }
        timed(.loraBackward) { backend.add(&dx, dxd, count: dxd.count) }
    }
}
