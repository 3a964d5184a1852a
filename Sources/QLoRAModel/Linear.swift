import QLoRACore

/// One linear projection of the model: a frozen base weight `W [out, in]` (f32 or 4-bit, on the backend) plus an
/// optional LoRA pair `A [r, in]`, `B [out, r]` with its scale `s`: `y = x·Wᵀ + s·(dropout(x)·Aᵀ)·Bᵀ` (spec in
/// docs/ARCHITECTURE.md; PEFT's `lora.Linear`). Forward, backward and merge sit side by side here; the ops are the
/// backend's. The frozen `W` passes gradients to `x` only.
public struct Linear: Sendable {
    /// `[out, in]`, frozen.
    public let base: Tensor
    public let outFeatures: Int, inFeatures: Int
    /// The LoRA pair and its scale (tensors shared with the model's `AdapterTensors`, so optimizer updates show).
    public var lora: (pair: AdapterTensors.Pair, scale: Float)?

    init(base: Tensor) {
        self.base = base
        outFeatures = base.shape[0]
        inFeatures = base.shape[1]
    }

    /// `y (+)= x·Wᵀ` then, with LoRA, `y += z·Bᵀ` with `z = s·(xd·Aᵀ)`, `xd = dropout(x)` under `mask`. Returns `z`
    /// `[rows, r]` (what the backward needs), or nil without LoRA. `baseDone` skips the base product (a group's bases
    /// ran together, see `forward(group:)`).
    func forward(_ x: Tensor, into y: Tensor, rows: Int, accumulate: Bool, mask: DropoutMask?, backend b: any Backend,
                 profile: StepProfile?, baseDone: Bool = false) -> Tensor? {
        if !baseDone { timed(profile, .baseForward) { b.linear(x, base, y, rows: rows, accumulate: accumulate) } }
        guard let (pair, s) = lora else { return nil }
        let r = pair.rank
        let xd = mask.map { m in timed(profile, .dropout) { Self.dropped(x, rows: rows, width: inFeatures, mask: m, backend: b) } } ?? x
        return timed(profile, .loraForward) {
            let z = b.allocate([rows, r], .f32)
            b.matmulTransposed(xd, pair.a, z, m: rows, n: r, k: inFeatures, accumulate: false)
            b.scale(z, by: s, count: rows * r)
            b.matmulTransposed(z, pair.b, y, m: rows, n: outFeatures, k: r, accumulate: true)
            return z
        }
    }

    /// `forward` for projections of one input (q/k/v, gate/up), overwriting each `ys[i]`: the bases go to the backend
    /// together (`Backend.linear` over several weights, the values of one `linear` each), then each LoRA branch.
    static func forward(group: [Linear], _ x: Tensor, into ys: [Tensor], rows: Int, masks: [DropoutMask?], backend b: any Backend,
                        profile: StepProfile?) -> [Tensor?] {
        timed(profile, .baseForward) { b.linear(x, group.map(\.base), ys, rows: rows) }
        return group.indices.map {
            group[$0].forward(x, into: ys[$0], rows: rows, accumulate: false, mask: masks[$0], backend: b, profile: profile, baseDone: true)
        }
    }

    /// `dx (+)= dy·W + dropout'(s·(dy·B)·A)`; adds `dB += dyᵀ·z` and `dA += (s·dy·B)ᵀ·xd` into `gradients` (the
    /// forward's `z` and dropout mask, replayed from its seed).
    func backward(_ dy: Tensor, x: Tensor, z: Tensor?, into dx: Tensor, rows: Int, accumulate: Bool, mask: DropoutMask?,
                  gradients: AdapterTensors.Pair?, backend b: any Backend, profile: StepProfile?) {
        timed(profile, .baseBackward) { b.linearBackwardInput(dy, base, dx, rows: rows, accumulate: accumulate) }
        guard let (pair, s) = lora, let z else { return }
        guard let g = gradients else { preconditionFailure("no gradient slot for an adapted projection") }
        let r = pair.rank, out = outFeatures, n = inFeatures
        let dz = b.allocate([rows, r], .f32)
        timed(profile, .loraBackward) {
            b.matmulTransposedA(dy, z, g.b, m: out, n: r, k: rows, accumulate: true)
            b.matmul(dy, pair.b, dz, m: rows, n: r, k: out, accumulate: false)
            b.scale(dz, by: s, count: rows * r)
        }
        guard let mask else {
            timed(profile, .loraBackward) {
                b.matmulTransposedA(dz, x, g.a, m: r, n: n, k: rows, accumulate: true)
                b.matmul(dz, pair.a, dx, m: rows, n: n, k: r, accumulate: true)
            }
            return
        }
        let xd = timed(profile, .dropout) { Self.dropped(x, rows: rows, width: n, mask: mask, backend: b) }
        let dxd = b.allocate([rows, n], .f32)
        timed(profile, .loraBackward) {
            b.matmulTransposedA(dz, xd, g.a, m: r, n: n, k: rows, accumulate: true)
            b.matmul(dz, pair.a, dxd, m: rows, n: n, k: r, accumulate: false)
        }
        timed(profile, .dropout) { b.dropout(dxd, dxd, count: rows * n, mask: mask) }
        timed(profile, .loraBackward) { b.add(dx, dxd, count: rows * n) }
    }

    /// `W + s·B·A` as fp32 `[out, in]` (PEFT's merge: `B·A` in fp32, scaled, added; `LoRAPair.merge`), or `W` alone.
    public func merged(backend b: any Backend) -> [Float] {
        var w = b.download(base)
        if let (pair, s) = lora {
            let host = LoRAPair(rank: pair.rank, inFeatures: inFeatures, outFeatures: outFeatures, a: b.download(pair.a),
                                b: b.download(pair.b))
            host.merge(scale: s, into: &w)
        }
        return w
    }

    static func dropped(_ x: Tensor, rows: Int, width: Int, mask: DropoutMask, backend b: any Backend) -> Tensor {
        let out = b.allocate([rows, width], .f32)
        b.dropout(x, out, count: rows * width, mask: mask)
        return out
    }
}

/// `body()`, its wall time added to `part` of `profile` when there is one.
@inline(__always)
func timed<T>(_ profile: StepProfile?, _ part: StepProfile.Part, _ body: () throws -> T) rethrows -> T {
    guard let profile else { return try body() }
    return try profile.measure(part, body)
}
