import QLoRACore

/// One decoder block (spec in docs/ARCHITECTURE.md): the forward every use of the model runs, and its backward.
extension LlamaModel {
    /// A block's tensors after its forward (R rows): everything its backward needs. `z[p]` is `s·(x·Aᵀ)` `[R, r]` of
    /// each adapted projection. Inference drops them as soon as the next block starts.
    struct BlockActivations {
        var input: Tensor             // [R, H] the block input (residual)
        var xn1: Tensor               // [R, H] attention-norm output: input of q/k/v
        var q: Tensor, k: Tensor      // [R, nH·D], [R, nKV·D] after RoPE
        var v: Tensor                 // [R, nKV·D]
        var attn: Tensor              // [R, nH·D] attention output: input of o
        var lse: Tensor?              // [R, nH] softmax logsumexp per row and head (training attention only)
        var h1: Tensor                // [R, H] after the attention residual
        var xn2: Tensor               // [R, H] MLP-norm output: input of gate/up
        var gate: Tensor, up: Tensor  // [R, F] pre-activation
        var act: Tensor               // [R, F] silu(gate)·up: input of down
        var z: [Projection: Tensor]
        var output: Tensor            // [R, H] the block output
    }

    /// How a block turns its RoPE'd `q`, `k`, `v` into `attn` (the one part that differs between generation with a
    /// KV cache, batched scoring and training): `(layer, q, k, v, out) -> logsumexp` (training's, else nil).
    typealias Attend = (_ layer: Int, _ q: Tensor, _ k: Tensor, _ v: Tensor, _ out: Tensor) -> Tensor?

    /// The LoRA dropout mask of projection `p` in layer `l` under `seed` (nil: no dropout, evaluation).
    func dropoutMask(_ p: Projection, _ l: Int, _ seed: UInt64?) -> DropoutMask? {
        guard let seed, let lora, lora.dropout > 0, blocks[l].linears[p.index].lora != nil else { return nil }
        return LoRADropout.mask(probability: lora.dropout, stepSeed: seed, layer: l, projection: p)
    }

    /// Block `l` over `input[rows, H]`.
    func forwardBlock(_ l: Int, _ input: Tensor, rows: Int, rope: RopeTables, dropoutSeed: UInt64?, attend: Attend) -> BlockActivations {
        let c = config, b = backend, block = blocks[l]
        let h = c.hiddenSize, f = c.intermediateSize, qWidth = c.heads * c.headDim, kvWidth = c.kvHeads * c.headDim
        var z: [Projection: Tensor] = [:]
        func masks(_ ps: [Projection]) -> [DropoutMask?] { ps.map { dropoutMask($0, l, dropoutSeed) } }
        func keep(_ ps: [Projection], _ zs: [Tensor?]) { for (p, t) in zip(ps, zs) where t != nil { z[p] = t } }

        let xn1 = b.allocate([rows, h], .f32)
        timed(profile, .elementwiseForward) { b.rmsNorm(input, weight: block.attnNorm, xn1, rows: rows, dim: h, eps: c.rmsNormEps) }
        let q = b.allocate([rows, qWidth], .f32), k = b.allocate([rows, kvWidth], .f32), v = b.allocate([rows, kvWidth], .f32)
        let qkv: [Projection] = [.q, .k, .v]
        keep(qkv, Linear.forward(group: qkv.map { block.linears[$0.index] }, xn1, into: [q, k, v], rows: rows, masks: masks(qkv),
                                 backend: b, profile: profile))
        if let bq = block.bq, let bk = block.bk, let bv = block.bv {
            timed(profile, .elementwiseForward) {
                b.addBias(q, bq, rows: rows, width: qWidth)
                b.addBias(k, bk, rows: rows, width: kvWidth)
                b.addBias(v, bv, rows: rows, width: kvWidth)
            }
        }
        timed(profile, .elementwiseForward) {
            b.rope(q, rows: rows, heads: c.heads, headDim: c.headDim, cos: rope.cos, sin: rope.sin)
            b.rope(k, rows: rows, heads: c.kvHeads, headDim: c.headDim, cos: rope.cos, sin: rope.sin)
        }
        let attn = b.allocate([rows, qWidth], .f32)
        let lse = timed(profile, .attentionForward) { attend(l, q, k, v, attn) }
        let h1 = b.allocate([rows, h], .f32)
        b.copy(input, to: h1)
        z[.o] = block.linears[Projection.o.index].forward(attn, into: h1, rows: rows, accumulate: true, mask: dropoutMask(.o, l, dropoutSeed),
                                                          backend: b, profile: profile)

        let xn2 = b.allocate([rows, h], .f32)
        timed(profile, .elementwiseForward) { b.rmsNorm(h1, weight: block.ffnNorm, xn2, rows: rows, dim: h, eps: c.rmsNormEps) }
        let gate = b.allocate([rows, f], .f32), up = b.allocate([rows, f], .f32), act = b.allocate([rows, f], .f32)
        let gu: [Projection] = [.gate, .up]
        keep(gu, Linear.forward(group: gu.map { block.linears[$0.index] }, xn2, into: [gate, up], rows: rows, masks: masks(gu),
                                backend: b, profile: profile))
        timed(profile, .elementwiseForward) { b.swiglu(gate: gate, up: up, act, count: rows * f) }
        let output = b.allocate([rows, h], .f32)
        b.copy(h1, to: output)
        z[.down] = block.linears[Projection.down.index].forward(act, into: output, rows: rows, accumulate: true,
                                                                mask: dropoutMask(.down, l, dropoutSeed), backend: b, profile: profile)
        return BlockActivations(input: input, xn1: xn1, q: q, k: k, v: v, attn: attn, lse: lse, h1: h1, xn2: xn2, gate: gate, up: up,
                                act: act, z: z, output: output)
    }

    /// Backward of block `l` (its forward ran with training attention, so `a.lse` is set): returns `d input` given
    /// `d output`, and adds the adapters' gradients into `gradients`.
    func backwardBlock(_ l: Int, _ dOutput: Tensor, _ a: BlockActivations, rows: Int, rope: RopeTables, documents: Tensor,
                       dropoutSeed: UInt64?, gradients: AdapterTensors) -> Tensor {
        let c = config, b = backend, block = blocks[l]
        let h = c.hiddenSize, f = c.intermediateSize, qWidth = c.heads * c.headDim, kvWidth = c.kvHeads * c.headDim
        func back(_ p: Projection, x: Tensor, dy: Tensor, into dx: Tensor, accumulate: Bool) {
            block.linears[p.index].backward(dy, x: x, z: a.z[p], into: dx, rows: rows, accumulate: accumulate,
                                            mask: dropoutMask(p, l, dropoutSeed), gradients: gradients.layers[l][p], backend: b,
                                            profile: profile)
        }

        // MLP: output = h1 + down(silu(gate(xn2)) · up(xn2)), xn2 = norm(h1)
        let dAct = b.allocate([rows, f], .f32)
        back(.down, x: a.act, dy: dOutput, into: dAct, accumulate: false)
        let dUp = b.allocate([rows, f], .f32)
        timed(profile, .elementwiseBackward) { b.swigluBackward(dAct, gate: a.gate, up: a.up, dGate: dAct, dUp: dUp, count: rows * f) }
        let dXn2 = b.allocate([rows, h], .f32)
        back(.gate, x: a.xn2, dy: dAct, into: dXn2, accumulate: false)
        back(.up, x: a.xn2, dy: dUp, into: dXn2, accumulate: true)
        let dH1 = b.allocate([rows, h], .f32)
        b.copy(dOutput, to: dH1)
        timed(profile, .elementwiseBackward) {
            b.rmsNormBackward(dXn2, x: a.h1, weight: block.ffnNorm, dx: dH1, dWeight: nil, rows: rows, dim: h, eps: c.rmsNormEps,
                              accumulate: true)
        }

        // Attention: h1 = input + o(attention(rope(q(xn1)), rope(k(xn1)), v(xn1))), xn1 = norm(input)
        let dAttn = b.allocate([rows, qWidth], .f32)
        back(.o, x: a.attn, dy: dH1, into: dAttn, accumulate: false)
        let dq = b.allocate([rows, qWidth], .f32), dk = b.allocate([rows, kvWidth], .f32), dv = b.allocate([rows, kvWidth], .f32)
        guard let lse = a.lse else { preconditionFailure("backward of a block run without training attention") }
        timed(profile, .attentionBackward) {
            b.attentionBackward(dOut: dAttn, q: a.q, k: a.k, v: a.v, out: a.attn, logsumexp: lse, dq: dq, dk: dk, dv: dv,
                                documents: documents, rows: rows, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim,
                                scale: attentionScale)
        }
        timed(profile, .elementwiseBackward) {
            b.ropeBackward(dq, rows: rows, heads: c.heads, headDim: c.headDim, cos: rope.cos, sin: rope.sin)
            b.ropeBackward(dk, rows: rows, heads: c.kvHeads, headDim: c.headDim, cos: rope.cos, sin: rope.sin)
        }
        let dXn1 = b.allocate([rows, h], .f32)
        back(.q, x: a.xn1, dy: dq, into: dXn1, accumulate: false)
        back(.k, x: a.xn1, dy: dk, into: dXn1, accumulate: true)
        back(.v, x: a.xn1, dy: dv, into: dXn1, accumulate: true)
        let dInput = b.allocate([rows, h], .f32)
        b.copy(dH1, to: dInput)
        timed(profile, .elementwiseBackward) {
            b.rmsNormBackward(dXn1, x: a.input, weight: block.attnNorm, dx: dInput, dWeight: nil, rows: rows, dim: h,
                              eps: c.rmsNormEps, accumulate: true)
        }
        return dInput
    }
}
