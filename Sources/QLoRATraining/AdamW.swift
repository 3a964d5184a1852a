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

    /// Where the moments live: tensors on the backend, or a `PagedFloatStore` (tensor `2i` = m of tensor `i`,
    /// `2i + 1` = its v) whose resident part is bounded, brought to the backend tensor by tensor for its update. The
    /// arithmetic is the same either way, so a paged run matches an unpaged one bit for bit. A backend that pages
    /// moments itself (`MomentPaging`: the CUDA backend, pinned host memory and a copy stream) holds them instead.
    enum Storage: @unchecked Sendable {
        case resident(m: AdapterTensors, v: AdapterTensors)
        case paged(PagedFloatStore, scratchM: Tensor, scratchV: Tensor)
        case device(any MomentPager)
    }

    public var parameters: Parameters
    /// Updates done so far (`t` of the bias corrections is `step + 1` during the next update).
    public private(set) var step: Int = 0
    let backend: any Backend
    var storage: Storage

    /// Moments (zeros) on the parameters' backend.
    public init(_ parameters: Parameters, for weights: AdapterTensors) {
        self.parameters = parameters
        backend = weights.backend
        storage = .resident(m: AdapterTensors(zerosLike: weights), v: AdapterTensors(zerosLike: weights))
    }

    /// Paged state with at most `budgetBytes` resident (nil: no limit): the backend's own paging when it has it (the
    /// budget is then device memory and `path` is unused), else a scratch file at `path` (the budget is host memory).
    public init(_ parameters: Parameters, for weights: AdapterTensors, pagedAt path: String, budgetBytes: Int?) throws {
        self.parameters = parameters
        backend = weights.backend
        let counts = weights.tensors.map(\.count)
        if let paging = backend as? any MomentPaging {
            storage = .device(paging.makeMomentPager(counts: counts, budgetBytes: budgetBytes))
            return
        }
        let largest = counts.max() ?? 1
        storage = .paged(try PagedFloatStore(path: path, counts: counts.flatMap { [$0, $0] }, budgetBytes: budgetBytes),
                         scratchM: backend.allocate([largest], .f32), scratchV: backend.allocate([largest], .f32))
    }

    /// First moments, one array per tensor in `LoRAWeights.tensorNames` order.
    public var m: [[Float]] {
        switch storage {
        case .resident(let m, _): return m.download().tensors
        case .paged(let store, _, _): return (0..<(store.counts.count / 2)).map { store.values(2 * $0) }
        case .device(let pager): return pager.counts.indices.map { pager.moments($0).m }
        }
    }

    /// Second moments, same order.
    public var v: [[Float]] {
        switch storage {
        case .resident(_, let v): return v.download().tensors
        case .paged(let store, _, _): return (0..<(store.counts.count / 2)).map { store.values(2 * $0 + 1) }
        case .device(let pager): return pager.counts.indices.map { pager.moments($0).v }
        }
    }

    /// Restores a saved state (from a checkpoint): the update count and both moments.
    public mutating func restore(step: Int, m: [[Float]], v: [[Float]]) {
        self.step = step
        switch storage {
        case .resident(let mt, let vt):
            for (t, values) in zip(mt.tensors, m) { values.withUnsafeBufferPointer { backend.write($0, into: t) } }
            for (t, values) in zip(vt.tensors, v) { values.withUnsafeBufferPointer { backend.write($0, into: t) } }
        case .paged(let store, _, _):
            for i in m.indices {
                store.set(2 * i, m[i])
                store.set(2 * i + 1, v[i])
            }
        case .device(let pager):
            for i in m.indices { pager.setMoments(i, m: m[i], v: v[i]) }
        }
    }

    /// Evictions the paged store's budget caused so far (0 when unpaged).
    public var pageEvictions: Int {
        switch storage {
        case .resident: return 0
        case .paged(let store, _, _): return store.evictions
        case .device(let pager): return pager.evictions
        }
    }

    /// One update of `weights` with `gradients` (same layout) on their backend (`Backend.adamW`, the per-element rule
    /// `AdamWStep.apply`). `learningRate` overrides the configured rate for this step (schedules).
    public mutating func update(_ weights: AdapterTensors, gradients: AdapterTensors, learningRate: Double? = nil) {
        step += 1
        let p = parameters, b = backend
        let factors = AdamWStep(learningRate: learningRate ?? p.learningRate, beta1: p.beta1, beta2: p.beta2,
                                epsilon: p.epsilon, weightDecay: p.weightDecay, t: step)
        let params = weights.tensors, grads = gradients.tensors
        precondition(params.count == grads.count, "\(grads.count) gradients for \(params.count) tensors")
        switch storage {
        case .resident(let m, let v):
            for (i, (mt, vt)) in zip(m.tensors, v.tensors).enumerated() {
                precondition(grads[i].count == params[i].count, "gradient \(i) has the wrong size")
                b.adamW(params[i], gradient: grads[i], m: mt, v: vt, count: params[i].count, step: factors)
            }
        case .paged(let store, let scratchM, let scratchV):
            for i in params.indices {
                precondition(grads[i].count == params[i].count, "gradient \(i) has the wrong size")
                let n = params[i].count
                let mt = scratchM.rows(0..<n), vt = scratchV.rows(0..<n)
                store.withTensor(2 * i) { mb in
                    store.withTensor(2 * i + 1) { vb in
                        b.write(UnsafeBufferPointer(mb), into: mt)
                        b.write(UnsafeBufferPointer(vb), into: vt)
                        b.adamW(params[i], gradient: grads[i], m: mt, v: vt, count: n, step: factors)
                        b.read(mt, into: mb)
                        b.read(vt, into: vb)
                    }
                }
            }
        case .device(let pager):
            pager.update(params, gradients: grads, step: factors)   // checks the sizes
        }
    }
}

/// Global-norm clipping as PyTorch's `clip_grad_norm_` (spec paged-optimizers §6): `total = ‖(‖g_i‖₂)_i‖₂`
/// over every tensor, `coef = min(1, maxNorm / (total + 1e-6))`, every gradient scaled by `coef` (also when
/// it is 1). Squares are summed in Double (`Backend.sumOfSquares`), tensors added in `tensorNames` order.
/// Returns the pre-clip total.
@discardableResult
public func clipGradientNorm(_ gradients: AdapterTensors, maxNorm: Double) -> Double {
    let total = gradientNorm(gradients)
    let coef = Float(min(1, maxNorm / (total + 1e-6)))
    for t in gradients.tensors { gradients.backend.scale(t, by: coef, count: t.count) }
    return total
}

/// `‖(‖g_i‖₂)_i‖₂` over every tensor: squares summed in Double per tensor (`Backend.sumOfSquares`), tensors added
/// in `tensorNames` order.
public func gradientNorm(_ gradients: AdapterTensors) -> Double {
    var squares = 0.0
    for t in gradients.tensors { squares += gradients.backend.sumOfSquares(t, count: t.count) }
    return squares.squareRoot()
}
