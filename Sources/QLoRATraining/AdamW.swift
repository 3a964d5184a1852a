import Foundation
import QLoRACore
import QLoRAModel

/// AdamW with 32-bit state, with PyTorch's arithmetic (`torch.optim.AdamW`, single-tensor path; spec
/// paged-optimizers §5): decoupled decay first, then the bias-corrected Adam step.
///
/// The per-element arithmetic is `AdamWStep.apply` (Sources/QLoRACore/ElementwiseOps.swift), run by the backend.
/// Elements are independent, so the update is deterministic however it is split.
public struct AdamW: Sendable {
    public struct Parameters: Sendable, Equatable {
        public var learningRate: Double
        public var beta1: Double
        public var beta2: Double
        public var epsilon: Double
        public var weightDecay: Double

        public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
                    weightDecay: Double = 0) {
            self.learningRate = learningRate
            self.beta1 = beta1
            self.beta2 = beta2
            self.epsilon = epsilon
            self.weightDecay = weightDecay
        }
    }

    /// Where the moments live: ordinary arrays, or a `PagedFloatStore` (tensor `2i` = m of tensor `i`,
    /// `2i + 1` = its v) whose resident part is bounded. The arithmetic is the same either way, so a paged
    /// run matches an unpaged one bit for bit.
    enum Storage: @unchecked Sendable {
        case memory(m: [[Float]], v: [[Float]])
        case paged(PagedFloatStore)
    }

    public var parameters: Parameters
    /// Updates done so far (`t` of the bias corrections is `step + 1` during the next update).
    public private(set) var step: Int = 0
    var storage: Storage

    public init(_ parameters: Parameters, for weights: LoRAWeights) {
        self.parameters = parameters
        let zeros = weights.tensors.map { [Float](repeating: 0, count: $0.count) }
        storage = .memory(m: zeros, v: zeros)
    }

    /// Paged state in a scratch file at `path` with at most `budgetBytes` resident (nil: no limit).
    public init(_ parameters: Parameters, for weights: LoRAWeights, pagedAt path: String, budgetBytes: Int?) throws {
        self.parameters = parameters
        let counts = weights.tensors.flatMap { [$0.count, $0.count] }
        storage = .paged(try PagedFloatStore(path: path, counts: counts, budgetBytes: budgetBytes))
    }

    /// First moments, one array per tensor in `LoRAWeights.tensorNames` order.
    public var m: [[Float]] {
        switch storage {
        case .memory(let m, _): return m
        case .paged(let store): return (0..<(store.counts.count / 2)).map { store.values(2 * $0) }
        }
    }

    /// Second moments, same order.
    public var v: [[Float]] {
        switch storage {
        case .memory(_, let v): return v
        case .paged(let store): return (0..<(store.counts.count / 2)).map { store.values(2 * $0 + 1) }
        }
    }

    /// Restores a saved state (from a checkpoint): the update count and both moments.
    public mutating func restore(step: Int, m: [[Float]], v: [[Float]]) {
        self.step = step
        switch storage {
        case .memory: storage = .memory(m: m, v: v)
        case .paged(let store):
            for i in m.indices {
                store.set(2 * i, m[i])
                store.set(2 * i + 1, v[i])
            }
        }
    }

    /// Evictions the paged store's budget caused so far (0 when unpaged).
    public var pageEvictions: Int {
        if case .paged(let store) = storage { return store.evictions }
        return 0
    }

    /// One update of `weights` with `gradients` (same layout) on `backend` (`Backend.adamW`, the per-element rule
    /// `AdamWStep.apply`). `learningRate` overrides the configured rate for this step (schedules).
    public mutating func update(_ weights: inout LoRAWeights, gradients: LoRAWeights, learningRate: Double? = nil,
                                backend: any Backend) {
        step += 1
        let p = parameters
        let factors = AdamWStep(learningRate: learningRate ?? p.learningRate, beta1: p.beta1, beta2: p.beta2,
                                epsilon: p.epsilon, weightDecay: p.weightDecay, t: step)
        let grads = gradients.tensors
        func apply(_ values: inout [Float], _ g: [Float], _ mb: UnsafeMutableBufferPointer<Float>, _ vb: UnsafeMutableBufferPointer<Float>) {
            values.withUnsafeMutableBufferPointer { pb in
                backend.adamW(pb.baseAddress!, gradient: g, m: mb.baseAddress!, v: vb.baseAddress!, count: pb.count, step: factors)
            }
        }
        var index = 0
        switch storage {
        case .memory(var m, var v):
            storage = .memory(m: [], v: [])  // keep the arrays uniquely referenced while updating in place
            weights.forEachTensor { values in
                precondition(grads[index].count == values.count, "gradient \(index) has the wrong size")
                m[index].withUnsafeMutableBufferPointer { mb in
                    v[index].withUnsafeMutableBufferPointer { vb in apply(&values, grads[index], mb, vb) }
                }
                index += 1
            }
            storage = .memory(m: m, v: v)
        case .paged(let store):
            weights.forEachTensor { values in
                precondition(grads[index].count == values.count, "gradient \(index) has the wrong size")
                store.withTensor(2 * index) { mb in
                    store.withTensor(2 * index + 1) { vb in apply(&values, grads[index], mb, vb) }
                }
                index += 1
            }
        }
    }
}

/// Global-norm clipping as PyTorch's `clip_grad_norm_` (spec paged-optimizers §6): `total = ‖(‖g_i‖₂)_i‖₂`
/// over every tensor, `coef = min(1, maxNorm / (total + 1e-6))`, every gradient scaled by `coef` (also when
/// it is 1). Squares are summed in Double (`Backend.sumOfSquares`), tensors added in `tensorNames` order.
/// Returns the pre-clip total.
@discardableResult
public func clipGradientNorm(_ gradients: inout LoRAWeights, maxNorm: Double, backend: any Backend) -> Double {
    let total = gradientNorm(gradients, backend: backend)
    let coef = Float(min(1, maxNorm / (total + 1e-6)))
    gradients.forEachTensor { values in
        values.withUnsafeMutableBufferPointer { backend.scale($0.baseAddress!, by: coef, count: $0.count) }
    }
    return total
}

/// `‖(‖g_i‖₂)_i‖₂` over every tensor: squares summed in Double per tensor (`Backend.sumOfSquares`), tensors added
/// in `tensorNames` order.
public func gradientNorm(_ gradients: LoRAWeights, backend: any Backend) -> Double {
    var squares = 0.0
    for t in gradients.tensors {
        squares += t.withUnsafeBufferPointer { backend.sumOfSquares($0.baseAddress!, count: $0.count) }
    }
    return squares.squareRoot()
}
