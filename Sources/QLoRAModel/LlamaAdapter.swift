import QLoRACore

/// A low-rank update of one frozen projection, applied at inference: `y += scale · (x·Aᵀ)·Bᵀ`
/// (LoRA, Hu et al. 2021; spec lora-and-peft-format §1). No dropout: dropout is identity at eval.
///
/// Shapes: `A [r, in]`, `B [out, r]` (row-major, PEFT layout), `x [rows, in]`, `y [rows, out]`.
public struct LowRankDelta: Sendable, Equatable {
    public let rank: Int, inFeatures: Int, outFeatures: Int
    /// `[r, in]`
    public let a: [Float]
    /// `[out, r]`
    public let b: [Float]
    /// `lora_alpha / r` (or `/ sqrt(r)` with rsLoRA).
    public let scale: Float

    public init(rank: Int, inFeatures: Int, outFeatures: Int, a: [Float], b: [Float], scale: Float) {
        precondition(rank > 0 && a.count == rank * inFeatures && b.count == outFeatures * rank,
                     "low-rank delta: A has \(a.count) values, B \(b.count), for rank \(rank), \(inFeatures) in, \(outFeatures) out")
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.a = a
        self.b = b
        self.scale = scale
    }

    /// `y[rows, out] += scale · (x[rows, in] · Aᵀ) · Bᵀ`, in the training forward's order (`z = x·Aᵀ`,
    /// `z *= scale`, `y += z·Bᵀ`), so inference reproduces training's values.
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, backend: any Backend) {
        guard rows > 0 else { return }
        var z = [Float](repeating: 0, count: rows * rank)
        z.withUnsafeMutableBufferPointer { zb in
            let zp = zb.baseAddress!
            backend.matmulTransposed(x, a, zp, m: rows, n: rank, k: inFeatures, accumulate: false)
            for i in 0..<(rows * rank) { zp[i] *= scale }
            backend.matmulTransposed(zp, b, y, m: rows, n: outFeatures, k: rank, accumulate: true)
        }
    }

    /// `scale · B·A` `[out, in]`: what merging adds to the frozen weight (spec §9).
    public var denseDelta: [Float] {
        var w = [Float](repeating: 0, count: outFeatures * inFeatures)
        for o in 0..<outFeatures {
            for r in 0..<rank {
                let s = scale * b[o * rank + r]
                if s == 0 { continue }
                for i in 0..<inFeatures { w[o * inFeatures + i] += s * a[r * inFeatures + i] }
            }
        }
        return w
    }
}

/// Low-rank deltas on the projections of a LLaMA model: `layers[i][projection]`, present where adapted.
/// Composed with the frozen weights by `LlamaModel` (it never changes them), so one base serves the plain
/// model and the adapted one side by side.
public struct LlamaAdapter: Sendable, Equatable {
    public var layers: [[Projection: LowRankDelta]]
    /// Where the adapter came from (a directory, or a description), for messages and reports.
    public var source: String

    public init(layers: [[Projection: LowRankDelta]], source: String = "<memory>") {
        self.layers = layers
        self.source = source
    }

    /// Number of adapter parameters (A and B of every delta).
    public var parameterCount: Int {
        layers.reduce(0) { total, layer in total + layer.values.reduce(0) { $0 + $1.a.count + $1.b.count } }
    }

    /// The projections adapted in at least one layer, in `Projection.allCases` order.
    public var targets: [Projection] {
        Projection.allCases.filter { p in layers.contains { $0[p] != nil } }
    }

    /// Checks the layer count and every delta's shape against `config`; errors name the layer and projection.
    public func validate(for config: LlamaConfig) throws {
        guard layers.count == config.layers else {
            throw ModelError(file: source, "the adapter has \(layers.count) layers, the model \(config.layers)")
        }
        for (i, layer) in layers.enumerated() {
            for p in Projection.allCases {
                guard let d = layer[p] else { continue }
                let s = p.shape(config)
                guard d.inFeatures == s.in, d.outFeatures == s.out else {
                    throw ModelError(file: source, "layer \(i) \(p.rawValue): the adapter maps \(d.inFeatures) → \(d.outFeatures) features, the model's projection \(s.in) → \(s.out)")
                }
            }
        }
    }
}
