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
    /// Names and shapes, in `tensors` order.
    public let tensorNames: [(name: String, layer: Int, projection: Projection, isA: Bool, shape: [Int])]

    /// `weights` uploaded to `backend`.
    public init(_ weights: LoRAWeights, backend: any Backend) {
        self.backend = backend
        tensorNames = weights.tensorNames
        layers = weights.layers.map { layer in
            layer.mapValues { p in
                Pair(a: backend.upload(p.a, shape: [p.rank, p.inFeatures]), b: backend.upload(p.b, shape: [p.outFeatures, p.rank]))
            }
        }
    }

    /// Zero tensors shaped like `other` (gradient accumulators, moments).
    public init(zerosLike other: AdapterTensors) {
        backend = other.backend
        tensorNames = other.tensorNames
        layers = other.layers.map { layer in
            layer.mapValues { Pair(a: other.backend.allocate($0.a.shape, .f32), b: other.backend.allocate($0.b.shape, .f32)) }
        }
    }

    /// Every tensor in `LoRAWeights.tensorNames` order (layer, projection, A before B).
    public var tensors: [Tensor] {
        layers.flatMap { layer in Projection.allCases.compactMap { layer[$0] }.flatMap { [$0.a, $0.b] } }
    }

    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.count } }

    /// The values as host arrays.
    public func download() -> LoRAWeights {
        LoRAWeights(layers: layers.map { layer in
            layer.mapValues { p in
                LoRAPair(rank: p.rank, inFeatures: p.a.shape[1], outFeatures: p.b.shape[0], a: backend.download(p.a),
                         b: backend.download(p.b))
            }
        })
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
