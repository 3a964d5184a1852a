import Foundation

// The small ops of a step (see the `Backend` requirements): their definitions, the scalar reference of each,
// and the per-element rules every backend shares so that results are the same bits everywhere.

/// A counter-based dropout mask: element `i` of the stream `key` is kept when the top 24 bits of
/// `h(i) = mix(mix(i·0x9E3779B9 + k0) ^ k1)` (`k0`/`k1` the low/high halves of `key`, `mix` the "lowbias32"
/// integer finalizer) are ≥ `threshold`; kept elements are multiplied by `scale = 1/(1 − p)` (inverted dropout).
///
/// Every element is independent of the others, so a mask can be made in any order and in parallel chunks, and
/// replayed exactly in a backward pass or a resumed run from the same key. The CPU kernel
/// (`Sources/CQLoRAKernels/dropout.c`) and `ReferenceBackend` compute identical bits.
public struct DropoutMask: Sendable, Equatable {
    public let key: UInt64
    /// Elements whose top 24 hash bits fall below this are dropped: P(drop) = threshold / 2²⁴ ≈ p.
    public let threshold: UInt32
    public let scale: Float

    /// The mask of stream `key` dropping with probability `probability` (in `[0, 1)`).
    public init(probability: Float, key: UInt64) {
        precondition(probability >= 0 && probability < 1, "dropout probability \(probability) outside [0, 1)")
        self.key = key
        threshold = UInt32((Double(probability) * 16_777_216).rounded(.up))
        scale = 1 / (1 - probability)
    }

    @inline(__always)
    static func mix32(_ x: UInt32) -> UInt32 {
        var x = x
        x ^= x >> 16
        x &*= 0x7feb_352d
        x ^= x >> 15
        x &*= 0x846c_a68b
        x ^= x >> 16
        return x
    }

    /// Whether element `index` of the stream is kept.
    @inline(__always)
    public func keeps(_ index: Int) -> Bool {
        let k0 = UInt32(truncatingIfNeeded: key), k1 = UInt32(truncatingIfNeeded: key >> 32)
        let h = Self.mix32(Self.mix32(UInt32(truncatingIfNeeded: index) &* 0x9E37_79B9 &+ k0) ^ k1)
        return h >> 8 >= threshold
    }
}

/// The scalar factors of one AdamW update, with PyTorch's arithmetic (`torch.optim.AdamW`, single-tensor path):
/// computed in Double and rounded to Float once, as PyTorch wraps Python floats. `apply` is the per-element rule.
public struct AdamWStep: Sendable, Equatable {
    /// `1 − lr·wd`, or nil without weight decay.
    public let decay: Float?
    /// `1 − β1` (the lerp weight), `β2`, `1 − β2`.
    public let w1: Float, b2: Float, w2: Float
    /// `−lr / (1 − β1^t)`.
    public let stepSize: Float
    /// `sqrt(1 − β2^t)`.
    public let bc2Sqrt: Float
    public let epsilon: Float

    /// The factors of update number `t` (1-based).
    public init(learningRate lr: Double, beta1: Double, beta2: Double, epsilon: Double, weightDecay: Double, t: Int) {
        decay = weightDecay != 0 ? Float(1 - lr * weightDecay) : nil
        w1 = Float(1 - beta1)
        b2 = Float(beta2)
        w2 = Float(1 - beta2)
        stepSize = Float(-(lr / (1 - Foundation.pow(beta1, Double(t)))))
        bc2Sqrt = Float(Foundation.pow(1 - Foundation.pow(beta2, Double(t)), 0.5))
        self.epsilon = Float(epsilon)
    }

    /// One element: `p ← p·(1 − lr·wd)`; `m ← lerp(m, g, 1 − β1)`; `v ← v·β2 + (1 − β2)·g·g`;
    /// `p ← p + (−lr/bc1)·m / (sqrt(v)/sqrt(bc2) + eps)`. Float operations in this order, no fused multiply-add.
    @inline(__always)
    public func apply(_ p: inout Float, _ g: Float, _ m: inout Float, _ v: inout Float) {
        var x = p
        if let decay { x *= decay }
        // torch.lerp: weight < 0.5 → self + w·(end − self), else end − (end − self)·(1 − w)
        m = abs(w1) < 0.5 ? m + w1 * (g - m) : g - (g - m) * (1 - w1)
        v = v * b2 + w2 * g * g
        let denom = v.squareRoot() / bc2Sqrt + epsilon
        x += stepSize * m / denom
        p = x
    }
}

extension ReferenceBackend {
    public func embedding(_ table: UnsafePointer<Float>, ids: UnsafePointer<Int32>, _ out: UnsafeMutablePointer<Float>,
                          rows: Int, dim: Int) {
        for r in 0..<rows {
            for i in 0..<dim { out[r * dim + i] = table[Int(ids[r]) * dim + i] }
        }
    }

    public func embeddingBackward(_ dOut: UnsafePointer<Float>, ids: UnsafePointer<Int32>, dTable: UnsafeMutablePointer<Float>,
                                  rows: Int, dim: Int) {
        for r in 0..<rows {
            for i in 0..<dim { dTable[Int(ids[r]) * dim + i] += dOut[r * dim + i] }
        }
    }

    public func addBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, width: Int) {
        for r in 0..<rows {
            for i in 0..<width { x[r * width + i] += bias[i] }
        }
    }

    public func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count: Int) {
        for i in 0..<count { x[i] *= s }
    }

    public func dropout(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, mask: DropoutMask) {
        for i in 0..<count { dst[i] = mask.keeps(i) ? src[i] * mask.scale : 0 }
    }

    public func adamW(_ p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                      v: UnsafeMutablePointer<Float>, count: Int, step: AdamWStep) {
        for i in 0..<count { step.apply(&p[i], g[i], &m[i], &v[i]) }
    }

    public func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var s = 0.0
        for i in 0..<count { s += Double(x[i]) * Double(x[i]) }
        return s
    }
}
