import Foundation
import QLoRACore

/// AdamW with 32-bit state, with PyTorch's arithmetic (`torch.optim.AdamW`, single-tensor path; spec
/// paged-optimizers §5): decoupled decay first, then the bias-corrected Adam step.
///
/// Per element, in Float with the scalar factors computed in Double and rounded once (as PyTorch wraps
/// Python floats): `p ← p·(1 − lr·wd)`; `m ← lerp(m, g, 1 − β1)`; `v ← v·β2 + (1 − β2)·g·g`;
/// `p ← p + (−lr/bc1)·m / (sqrt(v)/sqrt(bc2) + eps)` with `bc_i = 1 − β_i^t`. Elements are independent,
/// so the update is deterministic however it is split.
public struct AdamW: Sendable, Equatable {
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

    public var parameters: Parameters
    /// Updates done so far (`t` of the bias corrections is `step + 1` during the next update).
    public private(set) var step: Int = 0
    /// First and second moments, one array per tensor in `LoRAWeights.tensorNames` order.
    public private(set) var m: [[Float]]
    public private(set) var v: [[Float]]

    public init(_ parameters: Parameters, for weights: LoRAWeights) {
        self.parameters = parameters
        m = weights.tensors.map { [Float](repeating: 0, count: $0.count) }
        v = m
    }

    /// One update of `weights` with `gradients` (same layout). `learningRate` overrides the configured
    /// rate for this step (schedules).
    public mutating func update(_ weights: inout LoRAWeights, gradients: LoRAWeights, learningRate: Double? = nil) {
        step += 1
        let p = parameters, lr = learningRate ?? p.learningRate
        let t = Double(step)
        let decay = Float(1 - lr * p.weightDecay)
        let w1 = Float(1 - p.beta1), b2 = Float(p.beta2), w2 = Float(1 - p.beta2)
        let stepSize = Float(-(lr / (1 - Foundation.pow(p.beta1, t))))
        let bc2Sqrt = Float(Foundation.pow(1 - Foundation.pow(p.beta2, t), 0.5))
        let eps = Float(p.epsilon)
        let grads = gradients.tensors
        var index = 0
        weights.forEachTensor { values in
            precondition(grads[index].count == values.count, "gradient \(index) has the wrong size")
            let g = grads[index]
            m[index].withUnsafeMutableBufferPointer { mb in
                v[index].withUnsafeMutableBufferPointer { vb in
                    for i in values.indices {
                        var x = values[i]
                        if p.weightDecay != 0 { x *= decay }
                        // torch.lerp: weight < 0.5 → self + w·(end − self), else end − (end − self)·(1 − w)
                        mb[i] = abs(w1) < 0.5 ? mb[i] + w1 * (g[i] - mb[i]) : g[i] - (g[i] - mb[i]) * (1 - w1)
                        vb[i] = vb[i] * b2 + w2 * g[i] * g[i]
                        let denom = vb[i].squareRoot() / bc2Sqrt + eps
                        x += stepSize * mb[i] / denom
                        values[i] = x
                    }
                }
            }
            index += 1
        }
    }
}

/// Global-norm clipping as PyTorch's `clip_grad_norm_` (spec paged-optimizers §6): `total = ‖(‖g_i‖₂)_i‖₂`
/// over every tensor, `coef = min(1, maxNorm / (total + 1e-6))`, every gradient scaled by `coef` (also when
/// it is 1). Norms are summed in Double in `tensorNames` order. Returns the pre-clip total.
@discardableResult
public func clipGradientNorm(_ gradients: inout LoRAWeights, maxNorm: Double) -> Double {
    var squares = 0.0
    for t in gradients.tensors {
        var s = 0.0
        for x in t { s += Double(x) * Double(x) }
        squares += s
    }
    let total = squares.squareRoot()
    let coef = Float(min(1, maxNorm / (total + 1e-6)))
    gradients.forEachTensor { values in
        for i in values.indices { values[i] *= coef }
    }
    return total
}
