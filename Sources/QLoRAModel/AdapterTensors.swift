import QLoRACore

/// A model's LoRA pairs held by its backend: the trainable parameters, or their gradients (same shapes), or the
/// moments of an optimizer. `LoRAWeights` is the same thing in host arrays (for files: PEFT adapters, checkpoints);
/// `download` and `write` move between the two.
///
/// A class: the model's `Linear`s and the optimizer share one set of parameter tensors, updated in place.
public final class AdapterTensors: @unchecked Sendable {
    public struct Pair: @unchecked Sendable {
        /// `[r, in]`, `[out, r]`.
        public let a: Tensor, b: Tensor
        public var rank: Int { a.shape[0] }
    }

    public let backend: any Backend
    /// `layers[i][projection]`, present for the adapted projections.
    public let layers: [[Projection: Pair]]
    /// The shapes as host weights (all zeros), for names and sizes.
    private let layout: LoRAWeights

    /// `weights` uploaded to `backend`.
    public init(_ weights: LoRAWeights, backend: any Backend) {
        self.backend = backend
        layout = LoRAWeights(layers: weights.layers.map { $0.mapValues { .zeros(rank: $0.rank, inFeatures: $0.inFeatures, outFeatures: $0.outFeatures) } })
        layers = weights.layers.map { layer in
            layer.mapValues { p in
                Pair(a: backend.upload(p.a, shape: [p.rank, p.inFeatures]), b: backend.upload(p.b, shape: [p.outFeatures, p.rank]))
            }
        }
    }

    /// Zero tensors shaped like `other` (gradient accumulators, moments).
    public convenience init(zerosLike other: AdapterTensors) {
        self.init(other.layout, backend: other.backend)
    }

    /// Every tensor in `LoRAWeights.tensorNames` order (layer, projection, A before B).
    public var tensors: [Tensor] {
        layers.flatMap { layer in Projection.allCases.compactMap { layer[$0] }.flatMap { [$0.a, $0.b] } }
    }

    /// Names and shapes, in `tensors` order.
    public var tensorNames: [(name: String, layer: Int, projection: Projection, isA: Bool, shape: [Int])] { layout.tensorNames }

    public var parameterCount: Int { layout.parameterCount }

    /// The values as host arrays.
    public func download() -> LoRAWeights {
        var w = layout
        var i = 0
        let ts = tensors
        w.forEachTensor { values in
            values = backend.download(ts[i])
            i += 1
        }
        return w
    }

    /// Overwrites every tensor with `weights` (same shapes).
    public func write(_ weights: LoRAWeights) {
        let ts = tensors, values = weights.tensors
        precondition(ts.count == values.count, "\(values.count) tensors for \(ts.count)")
        for (t, v) in zip(ts, values) { v.withUnsafeBufferPointer { backend.write($0, into: t) } }
    }

    /// Sets every tensor to zero.
    public func zero() { for t in tensors { backend.zero(t) } }
}
