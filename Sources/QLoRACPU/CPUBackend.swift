import COpenBLAS
import CQLoRAKernels
import Foundation
import QLoRACore
import Synchronization

/// The fast CPU backend: GEMMs through OpenBLAS sgemm/sgemv (threaded by OpenBLAS), attention as two
/// GEMMs per head, the other ops as vectorizable loops. OpenBLAS is loaded at the first call, with its kernels
/// chosen from cpuid (`GEMMKernel` describes them; `GEMMKernel.configure` changes the choice).
public struct CPUBackend: HostBackend {
    public let threads: Int
    /// The SIMD path of this backend's own kernels (the same bits on every path; tests and benchmarks compare them).
    public let kernels: KernelPath
    /// Worker threads for the short regions of decoding (WorkerPool.swift); nil with one thread.
    let pool: WorkerPool?

    /// OpenBLAS's thread count is one process-wide setting: the first backend created sets it, later ones
    /// leave it alone. Changing it while another thread is inside sgemm (two backends in one process, e.g.
    /// concurrent tests) changed results in the last bits, which breaks bit-exact resume. `threads` still
    /// sets this backend's own parallel splits. `kernels` defaults to the best path this CPU has (a path it lacks
    /// runs as that one).
    public init(threads: Int = ProcessInfo.processInfo.activeProcessorCount, kernels: KernelPath? = nil) {
        self.threads = max(1, threads)
        let best = KernelPath.detected
        self.kernels = kernels.map { $0 == .avx2 ? best : $0 } ?? best
        pool = self.threads > 1 ? WorkerPool(threads: self.threads) : nil
        if CPUBackend.openBLASConfigured.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            openblas_set_num_threads(Int32(self.threads))
        }
    }

    private static let openBLASConfigured = Atomic<Bool>(false)

    public func matmulTransposed(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                 m: Int, n: Int, k: Int, accumulate: Bool) {
        if m == 1, n > 0, k > 0 {
            // One row (decoding): sgemv reads the weight once, where sgemm would first pack (copy) all of it.
            cblas_sgemv(Int32(QLoRACBLASRowMajor.rawValue), Int32(QLoRACBLASNoTrans.rawValue), Int32(n), Int32(k), 1, b, Int32(k),
                        a, 1, accumulate ? 1 : 0, c, 1)
            return
        }
        gemm(transA: false, transB: true, a, b, c, m: m, n: n, k: k, accumulate: accumulate)
    }

    public func matmul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                       m: Int, n: Int, k: Int, accumulate: Bool) {
        gemm(transA: false, transB: false, a, b, c, m: m, n: n, k: k, accumulate: accumulate)
    }

    public func matmulTransposedA(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                  m: Int, n: Int, k: Int, accumulate: Bool) {
        gemm(transA: true, transB: false, a, b, c, m: m, n: n, k: k, accumulate: accumulate)
    }

    /// Row-major `c[m, n] (+)= op(a) · op(b)` through cblas_sgemm, with the empty cases handled
    /// (`k == 0` is a zero product).
    private func gemm(transA: Bool, transB: Bool, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                      _ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, accumulate: Bool) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if !accumulate { c.update(repeating: 0, count: m * n) }
            return
        }
        let noTrans = Int32(QLoRACBLASNoTrans.rawValue), trans = Int32(QLoRACBLASTrans.rawValue)
        cblas_sgemm(Int32(QLoRACBLASRowMajor.rawValue), transA ? trans : noTrans, transB ? trans : noTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(transA ? m : k), b, Int32(transB ? k : n),
                    accumulate ? 1 : 0, c, Int32(n))
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

    /// Per head: `S = Q_h·K_hᵀ` (sgemm over strided rows), causal mask, row softmax, `O_h = P·V_h` (sgemm).
    public func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                          rows: Int, start: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float) {
        if rows == 1 {  // decoding: CPUBackend+Attention.swift
            return decodeAttention(q: q, k: k, v: v, out: out, start: start, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale)
        }
        let group = heads / kvHeads
        let qStride = heads * headDim, kvStride = kvHeads * headDim
        let total = start + rows
        let rowMajor = Int32(QLoRACBLASRowMajor.rawValue)
        let noTrans = Int32(QLoRACBLASNoTrans.rawValue), trans = Int32(QLoRACBLASTrans.rawValue)
        let scores = UnsafeMutablePointer<Float>.allocate(capacity: rows * total)
        defer { scores.deallocate() }
        for h in 0..<heads {
            let kvh = h / group
            // scores[t, s] = scale · q[t]·k[s]
            cblas_sgemm(rowMajor, noTrans, trans, Int32(rows), Int32(total), Int32(headDim), scale,
                        q + h * headDim, Int32(qStride), k + kvh * headDim, Int32(kvStride), 0, scores, Int32(total))
            for t in 0..<rows {
                let row = scores + t * total
                let visible = start + t + 1
                var maxScore = -Float.infinity
                for s in 0..<visible where row[s] > maxScore { maxScore = row[s] }
                var sum: Float = 0
                for s in 0..<visible {
                    let e = Foundation.exp(row[s] - maxScore)
                    row[s] = e
                    sum += e
                }
                let inv = 1 / sum
                for s in 0..<visible { row[s] *= inv }
                for s in visible..<total { row[s] = 0 }
            }
            // out[t, h·D..] = P[t, :] · V_h
            cblas_sgemm(rowMajor, noTrans, noTrans, Int32(rows), Int32(headDim), Int32(total), 1,
                        scores, Int32(total), v + kvh * headDim, Int32(kvStride), 0, out + h * headDim, Int32(qStride))
        }
    }

    /// Elementwise, so the split into threads does not change any bit (AVX2 and portable paths agree too).
    public func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forEachRange(count, parts: count >= 1 << 16 ? threads : 1) { r in
            qlk_swiglu(gate + r.lowerBound, up + r.lowerBound, out + r.lowerBound, Int64(r.count), kernels.code)
        }
    }

    public func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += y[i] }
    }
}

