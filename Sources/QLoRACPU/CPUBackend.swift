import COpenBLAS
import Foundation
import QLoRACore

/// The fast CPU backend: GEMMs through OpenBLAS sgemm (threaded by OpenBLAS), the other ops as
/// vectorizable loops, attention parallelized over heads.
public struct CPUBackend: Backend {
    public let threads: Int

    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.threads = max(1, threads)
        openblas_set_num_threads(Int32(self.threads))
    }

    public func matmulTransposed(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                 m: Int, n: Int, k: Int, accumulate: Bool) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if !accumulate { c.update(repeating: 0, count: m * n) }
            return
        }
        if m == 1 {
            // One row (decoding): sgemv reads the weight once, where sgemm would first pack (copy) all of it.
            cblas_sgemv(Int32(QLoRACBLASRowMajor.rawValue), Int32(QLoRACBLASNoTrans.rawValue), Int32(n), Int32(k), 1, b, Int32(k),
                        a, 1, accumulate ? 1 : 0, c, 1)
            return
        }
        cblas_sgemm(Int32(QLoRACBLASRowMajor.rawValue), Int32(QLoRACBLASNoTrans.rawValue), Int32(QLoRACBLASTrans.rawValue),
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(k), accumulate ? 1 : 0, c, Int32(n))
    }

    public func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                        rows: Int, dim: Int, eps: Float) {
        for r in 0..<rows {
            let row = x + r * dim, o = out + r * dim
            var ss: Float = 0
            for i in 0..<dim { ss += row[i] * row[i] }
            let inv = 1 / (ss / Float(dim) + eps).squareRoot()
            for i in 0..<dim { o[i] = weight[i] * (row[i] * inv) }
        }
    }

    public func rope(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int,
                     cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = headDim / 2
        for t in 0..<rows {
            let c = cos + t * half, s = sin + t * half
            for h in 0..<heads {
                let a = x + (t * heads + h) * headDim, b = a + half
                for i in 0..<half {
                    let x0 = a[i], x1 = b[i]
                    a[i] = x0 * c[i] - x1 * s[i]
                    b[i] = x1 * c[i] + x0 * s[i]
                }
            }
        }
    }

    public func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                          rows: Int, start: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float) {
        let group = heads / kvHeads
        let qStride = heads * headDim, kvStride = kvHeads * headDim
        let total = start + rows
        let work = UnsafeSendable((q, k, v, out))
        // One task per (head, block of query rows).
        let rowBlock = max(1, min(rows, 64))
        let rowBlocks = (rows + rowBlock - 1) / rowBlock
        DispatchQueue.concurrentPerform(iterations: heads * rowBlocks) { task in
            let (q, k, v, out) = work.value
            let h = task % heads, rb = task / heads
            let kvh = h / group
            var scores = [Float](repeating: 0, count: total)
            var acc = [Float](repeating: 0, count: headDim)
            for t in (rb * rowBlock)..<min(rows, (rb + 1) * rowBlock) {
                let visible = start + t + 1
                let qRow = q + t * qStride + h * headDim
                var maxScore = -Float.infinity
                for s in 0..<visible {
                    let kRow = k + s * kvStride + kvh * headDim
                    var dot: Float = 0
                    for d in 0..<headDim { dot += qRow[d] * kRow[d] }
                    let sc = dot * scale
                    scores[s] = sc
                    if sc > maxScore { maxScore = sc }
                }
                var sum: Float = 0
                for s in 0..<visible {
                    let e = Foundation.exp(scores[s] - maxScore)
                    scores[s] = e
                    sum += e
                }
                for d in 0..<headDim { acc[d] = 0 }
                for s in 0..<visible {
                    let p = scores[s]
                    let vRow = v + s * kvStride + kvh * headDim
                    for d in 0..<headDim { acc[d] += p * vRow[d] }
                }
                let o = out + t * qStride + h * headDim
                let inv = 1 / sum
                for d in 0..<headDim { o[d] = acc[d] * inv }
            }
        }
    }

    public func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i]
            out[i] = g / (1 + Foundation.exp(-g)) * up[i]
        }
    }

    public func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += y[i] }
    }
}

/// Carries raw pointers into a concurrent loop whose iterations write disjoint memory.
struct UnsafeSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
