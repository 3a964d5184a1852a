import COpenBLAS
import CQLoRAKernels
import Foundation
import QLoRACore

/// Training attention on CPU: each document (a run of equal ids) is an independent causal block, and
/// within a block every head is a handful of sgemm calls around a threaded row pass that does the
/// softmax (forward) or rebuilds `P` from the saved logsumexp and forms `dS` (backward).
///
/// Heads are handled a few at a time so that score buffers stay within `scoreBudget` floats. The row
/// passes are independent per (head, row); the only cross-head sum, a kv head's `dK`/`dV` over the query
/// heads of its group, is done by sgemm with `beta = 1` in increasing head order, so it is deterministic.
extension CPUBackend {
    /// At most this many score floats (`heads in flight × L × L`) live at once, unless one head needs more.
    static let scoreBudget = 1 << 22

    private static func documentRuns(_ documents: UnsafePointer<Int32>?, rows: Int) -> [Range<Int>] {
        guard rows > 0 else { return [] }
        guard let documents else { return [0..<rows] }
        var runs: [Range<Int>] = []
        var a = 0
        for t in 1...rows where t == rows || documents[t] != documents[t - 1] {
            runs.append(a..<t)
            a = t
        }
        return runs
    }

    public func attentionTraining(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                  out: UnsafeMutablePointer<Float>, logsumexp: UnsafeMutablePointer<Float>?,
                                  documents: UnsafePointer<Int32>?, rows: Int, heads: Int, kvHeads: Int, headDim: Int,
                                  scale: Float) {
        let group = heads / kvHeads
        let qStride = heads * headDim, kvStride = kvHeads * headDim
        let rowMajor = Int32(QLoRACBLASRowMajor.rawValue)
        let noTrans = Int32(QLoRACBLASNoTrans.rawValue), trans = Int32(QLoRACBLASTrans.rawValue)
        let lseP = logsumexp.map(SharedPointer.init)
        for run in Self.documentRuns(documents, rows: rows) {
            let a = run.lowerBound, n = run.count, square = n * n
            let inFlight = max(1, min(heads, Self.scoreBudget / max(square, 1)))
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: inFlight * square)
            defer { scores.deallocate() }
            let scoresP = SharedPointer(scores)
            for h0 in stride(from: 0, to: heads, by: inFlight) {
                let count = min(inFlight, heads - h0)
                for j in 0..<count {
                    let h = h0 + j, kvh = h / group
                    cblas_sgemm(rowMajor, noTrans, trans, Int32(n), Int32(n), Int32(headDim), scale,
                                q + a * qStride + h * headDim, Int32(qStride), k + a * kvStride + kvh * headDim, Int32(kvStride),
                                0, scores + j * square, Int32(n))
                }
                CPUKernels.parallelChunks(count * n, chunk: max(1, 4096 / n), threads: count * square >= 1 << 14 ? threads : 1) { range in
                    for idx in range {
                        let j = idx / n, t = idx % n
                        let row = scoresP.base + j * square + t * n
                        let m = CPUKernels.maximum(row, t + 1)
                        let sum = qlk_exp_shifted_sum(row, row, Int64(t + 1), m)
                        qlk_scale(row, Int64(t + 1), 1 / sum)
                        (row + t + 1).update(repeating: 0, count: n - t - 1)
                        lseP?.base[(a + t) * heads + h0 + j] = m + Foundation.log(sum)
                    }
                }
                for j in 0..<count {
                    let h = h0 + j, kvh = h / group
                    cblas_sgemm(rowMajor, noTrans, noTrans, Int32(n), Int32(headDim), Int32(n), 1,
                                scores + j * square, Int32(n), v + a * kvStride + kvh * headDim, Int32(kvStride),
                                0, out + a * qStride + h * headDim, Int32(qStride))
                }
            }
        }
    }

    public func attentionBackward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                  v: UnsafePointer<Float>, out: UnsafePointer<Float>, logsumexp: UnsafePointer<Float>,
                                  dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                  documents: UnsafePointer<Int32>?, rows: Int, heads: Int, kvHeads: Int, headDim: Int,
                                  scale: Float) {
        let group = heads / kvHeads
        let qStride = heads * headDim, kvStride = kvHeads * headDim
        let rowMajor = Int32(QLoRACBLASRowMajor.rawValue)
        let noTrans = Int32(QLoRACBLASNoTrans.rawValue), trans = Int32(QLoRACBLASTrans.rawValue)
        for run in Self.documentRuns(documents, rows: rows) {
            let a = run.lowerBound, n = run.count, square = n * n
            let inFlight = max(1, min(heads, Self.scoreBudget / max(2 * square, 1)))
            let probs = UnsafeMutablePointer<Float>.allocate(capacity: inFlight * square)
            let dScores = UnsafeMutablePointer<Float>.allocate(capacity: inFlight * square)
            defer {
                probs.deallocate()
                dScores.deallocate()
            }
            let probsP = SharedPointer(probs), dScoresP = SharedPointer(dScores)
            for h0 in stride(from: 0, to: heads, by: inFlight) {
                let count = min(inFlight, heads - h0)
                for j in 0..<count {
                    let h = h0 + j, kvh = h / group
                    // S = scale · Q·Kᵀ (into probs), dP = dO·Vᵀ (into dScores)
                    cblas_sgemm(rowMajor, noTrans, trans, Int32(n), Int32(n), Int32(headDim), scale,
                                q + a * qStride + h * headDim, Int32(qStride), k + a * kvStride + kvh * headDim, Int32(kvStride),
                                0, probs + j * square, Int32(n))
                    cblas_sgemm(rowMajor, noTrans, trans, Int32(n), Int32(n), Int32(headDim), 1,
                                dOut + a * qStride + h * headDim, Int32(qStride), v + a * kvStride + kvh * headDim, Int32(kvStride),
                                0, dScores + j * square, Int32(n))
                }
                CPUKernels.parallelChunks(count * n, chunk: max(1, 4096 / n), threads: count * square >= 1 << 14 ? threads : 1) { range in
                    for idx in range {
                        let j = idx / n, t = idx % n, h = h0 + j
                        let p = probsP.base + j * square + t * n, ds = dScoresP.base + j * square + t * n
                        let o = (a + t) * qStride + h * headDim
                        let delta = CPUKernels.dot(dOut + o, out + o, headDim)
                        let lse = logsumexp[(a + t) * heads + h]
                        qlk_softmax_backward_row(p, ds, Int64(t + 1), lse, delta, scale)
                        (p + t + 1).update(repeating: 0, count: n - t - 1)
                        (ds + t + 1).update(repeating: 0, count: n - t - 1)
                    }
                }
                for j in 0..<count {
                    let h = h0 + j, kvh = h / group
                    let beta: Float = h % group == 0 ? 0 : 1
                    let qh = q + a * qStride + h * headDim, kg = k + a * kvStride + kvh * headDim
                    // dV_g (+)= Pᵀ·dO_h;  dQ_h = dS·K_g;  dK_g (+)= dSᵀ·Q_h   (scale already folded into dS)
                    cblas_sgemm(rowMajor, trans, noTrans, Int32(n), Int32(headDim), Int32(n), 1,
                                probs + j * square, Int32(n), dOut + a * qStride + h * headDim, Int32(qStride),
                                beta, dv + a * kvStride + kvh * headDim, Int32(kvStride))
                    cblas_sgemm(rowMajor, noTrans, noTrans, Int32(n), Int32(headDim), Int32(n), 1,
                                dScores + j * square, Int32(n), kg, Int32(kvStride), 0, dq + a * qStride + h * headDim, Int32(qStride))
                    cblas_sgemm(rowMajor, trans, noTrans, Int32(n), Int32(headDim), Int32(n), 1,
                                dScores + j * square, Int32(n), qh, Int32(qStride),
                                beta, dk + a * kvStride + kvh * headDim, Int32(kvStride))
                }
            }
        }
    }
}
