import COpenBLAS
import CQLoRAKernels
import Foundation
import QLoRACore

/// The training ops on CPU. Rows are spread over threads in fixed-size chunks; every reduction that crosses
/// rows or heads is combined in a fixed order afterwards (see each function), so results are bit-identical
/// from run to run and independent of the thread count except through OpenBLAS's own partitioning of a
/// GEMM, which is fixed for a given `threads`.
extension CPUBackend {
    /// Rows per chunk of the RMSNorm backward: `dWeight` is summed per chunk, then over chunks in order.
    static let normChunkRows = 16

    public func rmsNormBackward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                                dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
                                rows: Int, dim: Int, eps: Float, accumulate: Bool) {
        let chunkRows = Self.normChunkRows
        let chunks = (rows + chunkRows - 1) / chunkRows
        let partial: UnsafeMutablePointer<Float>? = dWeight == nil ? nil : .allocate(capacity: chunks * dim)
        defer { partial?.deallocate() }
        let partialP = partial.map(SharedPointer.init), dxP = SharedPointer(dx)
        let workers = rows * dim >= 1 << 15 ? threads : 1
        CPUKernels.parallelChunks(rows, chunk: chunkRows, threads: workers) { range in
            let pw = partialP.map { $0.base + (range.lowerBound / chunkRows) * dim }
            pw?.update(repeating: 0, count: dim)
            for r in range {
                qlk_rmsnorm_backward_row(dy + r * dim, x + r * dim, weight, dxP.base + r * dim, pw, Int64(dim), eps,
                                         accumulate ? 1 : 0, kernels.code)
            }
        }
        if let dWeight, let partial {
            for c in 0..<chunks {
                let p = partial + c * dim
                for i in 0..<dim { dWeight[i] += p[i] }
            }
        }
    }

    public func ropeBackward(_ dx: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int,
                             cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = headDim / 2
        for t in 0..<rows {
            let c = cos + t * half, s = sin + t * half
            for h in 0..<heads {
                let a = dx + (t * heads + h) * headDim, b = a + half
                for i in 0..<half {
                    let g0 = a[i], g1 = b[i]
                    a[i] = g0 * c[i] + g1 * s[i]
                    b[i] = g1 * c[i] - g0 * s[i]
                }
            }
        }
    }

    public func swigluBackward(_ dOut: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                               dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int) {
        let dg = SharedPointer(dGate), du = SharedPointer(dUp)
        CPUKernels.parallelChunks(count, chunk: 1 << 14, threads: threads) { range in
            let i = range.lowerBound
            qlk_swiglu_backward(dOut + i, gate + i, up + i, dg.base + i, du.base + i, Int64(range.count), kernels.code)
        }
    }

    /// Rows run in parallel; each row's loss is kept in Double and the rows are added in order.
    public func crossEntropy(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, dLogits: UnsafeMutablePointer<Float>?,
                             rows: Int, vocab: Int, gradScale: Float) -> (sum: Double, count: Int) {
        guard rows > 0 else { return (0, 0) }
        let losses = UnsafeMutablePointer<Double>.allocate(capacity: rows)
        defer { losses.deallocate() }
        let lossP = SharedPointer(losses), gradP = dLogits.map(SharedPointer.init)
        for r in 0..<rows where targets[r] != CrossEntropy.ignoreIndex {
            precondition(targets[r] >= 0 && Int(targets[r]) < vocab, "target \(targets[r]) outside the vocabulary of \(vocab) (row \(r))")
        }
        CPUKernels.parallelChunks(rows, chunk: max(1, (1 << 15) / max(vocab, 1)), threads: threads) { range in
            for r in range {
                let z = logits + r * vocab
                let g = gradP.map { $0.base + r * vocab }
                guard targets[r] != CrossEntropy.ignoreIndex else {
                    g?.update(repeating: 0, count: vocab)
                    lossP.base[r] = .nan
                    continue
                }
                let y = Int(targets[r])
                let zy = z[y]
                let m = CPUKernels.maximum(z, vocab)
                // One exp per logit: e = exp(z − m) goes into the gradient row, which is then scaled.
                let sum = qlk_exp_shifted_sum(z, g, Int64(vocab), m, kernels.code)
                if let g {
                    qlk_scale(g, Int64(vocab), gradScale / sum, kernels.code)
                    g[y] -= gradScale
                }
                lossP.base[r] = Double(m) + Foundation.log(Double(sum)) - Double(zy)
            }
        }
        var total = 0.0, count = 0
        for r in 0..<rows where targets[r] != CrossEntropy.ignoreIndex {
            total += losses[r]
            count += 1
        }
        return (total, count)
    }
}
