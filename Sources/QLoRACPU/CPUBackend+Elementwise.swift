import CQLoRAKernels
import QLoRACore

// The small ops (definitions in Sources/QLoRACore/ElementwiseOps.swift). Elementwise ones are threaded over
// disjoint ranges, which changes no bit; the one reduction (`sumOfSquares`) runs in index order.
extension CPUBackend {
    /// Splits below this many elements are not worth a thread.
    private func parts(_ count: Int) -> Int { count >= 1 << 16 ? threads : 1 }

    public func embedding(_ table: UnsafePointer<Float>, ids: UnsafePointer<Int32>, _ out: UnsafeMutablePointer<Float>,
                          rows: Int, dim: Int) {
        for r in 0..<rows { (out + r * dim).update(from: table + Int(ids[r]) * dim, count: dim) }
    }

    public func embeddingBackward(_ dOut: UnsafePointer<Float>, ids: UnsafePointer<Int32>, dTable: UnsafeMutablePointer<Float>,
                                  rows: Int, dim: Int) {
        for r in 0..<rows {
            let src = dOut + r * dim, dst = dTable + Int(ids[r]) * dim
            for i in 0..<dim { dst[i] += src[i] }
        }
    }

    public func addBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, width: Int) {
        for r in 0..<rows {
            let row = x + r * width
            for i in 0..<width { row[i] += bias[i] }
        }
    }

    public func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count: Int) {
        Parallel.forEachRange(count, parts: parts(count)) { r in qlk_scale(x + r.lowerBound, Int64(r.count), s, kernels.code) }
    }

    /// `qlk_dropout` (AVX2 or portable, identical bits) over chunks of the stream on every thread.
    public func dropout(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, mask: DropoutMask) {
        Parallel.forEachRange(count, parts: parts(count)) { r in
            qlk_dropout(src + r.lowerBound, dst + r.lowerBound, Int64(r.count), UInt64(r.lowerBound), mask.key, mask.threshold,
                        mask.scale, kernels.code)
        }
    }

    public func adamW(_ p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                      v: UnsafeMutablePointer<Float>, count: Int, step: AdamWStep) {
        Parallel.forEachRange(count, parts: parts(count)) { r in
            for i in r { step.apply(&p[i], g[i], &m[i], &v[i]) }
        }
    }

    public func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double {
        var s = 0.0
        for i in 0..<count { s += Double(x[i]) * Double(x[i]) }
        return s
    }
}
