import COpenBLAS
import CQLoRAKernels
import Foundation
import QLoRACore

/// Training attention on CPU: each document (a run of equal ids) is an independent causal block, and
/// within a block every head is a handful of sgemm calls around a threaded row pass that does the
/// softmax (forward) or rebuilds `P` from the saved logsumexp and forms `dS` (backward).
///
/// Causality is exploited in tiles of `causalTile` rows: query tile `[r0, r1)` is multiplied only with keys
/// `[0, r1)`, and key tile `[k0, k1)` gathers `dK`/`dV` only from queries `[k0, n)`, so the GEMMs do about
/// half of the `n²` work (5/8 at n = 256). Scores of a head live in an `n × n` buffer (upper part unused);
/// heads are handled a few at a time so buffers stay within `scoreBudget` floats.
///
/// Determinism: the row passes are independent per (head, row); every output element of a GEMM is formed
/// by one sgemm call; the only cross-head sum, a kv head's `dK`/`dV` over the query heads of its group,
/// is sgemm with `beta = 1` in increasing head order.
extension CPUBackend {
    /// At most this many score floats (`heads in flight × n × n`) live at once, unless one head needs more.
    static let scoreBudget = 1 << 22
    /// Rows per causal tile.
    static let causalTile = 64

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

    /// Row-major `c = alpha · op(a) · op(b) + beta · c`.
    @inline(__always)
    private static func gemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                             _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                             _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
        guard m > 0, n > 0, k > 0 else { return }
        let noTrans = Int32(QLoRACBLASNoTrans.rawValue), trans = Int32(QLoRACBLASTrans.rawValue)
        cblas_sgemm(Int32(QLoRACBLASRowMajor.rawValue), transA ? trans : noTrans, transB ? trans : noTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    private static func tiles(_ n: Int) -> [Range<Int>] {
        stride(from: 0, to: n, by: causalTile).map { $0..<min(n, $0 + causalTile) }
    }

    public func attentionTraining(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                                  out: UnsafeMutablePointer<Float>, logsumexp: UnsafeMutablePointer<Float>?,
                                  documents: UnsafePointer<Int32>?, rows: Int, heads: Int, kvHeads: Int, headDim: Int,
                                  scale: Float) {
        let group = heads / kvHeads, d = headDim
        let qStride = heads * d, kvStride = kvHeads * d
        let lseP = logsumexp.map(SharedPointer.init)
        for run in Self.documentRuns(documents, rows: rows) {
            let a = run.lowerBound, n = run.count, square = n * n
            let tiles = Self.tiles(n)
            let inFlight = max(1, min(heads, Self.scoreBudget / max(square, 1)))
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: inFlight * square)
            defer { scores.deallocate() }
            let scoresP = SharedPointer(scores)
            for h0 in stride(from: 0, to: heads, by: inFlight) {
                let count = min(inFlight, heads - h0)
                for j in 0..<count {
                    let h = h0 + j, kvh = h / group
                    let qh = q + a * qStride + h * d, kg = k + a * kvStride + kvh * d
                    for tile in tiles {  // S[r0..<r1, 0..<r1] = scale · Q[r0..<r1]·K[0..<r1]ᵀ
                        Self.gemm(false, true, tile.count, tile.upperBound, d, scale, qh + tile.lowerBound * qStride, qStride,
                                  kg, kvStride, 0, scores + j * square + tile.lowerBound * n, n)
                    }
                }
                CPUKernels.parallelChunks(count * n, chunk: max(1, 4096 / n), threads: count * square >= 1 << 14 ? threads : 1) { range in
                    for idx in range {
                        let j = idx / n, t = idx % n
                        let row = scoresP.base + j * square + t * n
                        let m = CPUKernels.maximum(row, t + 1)
                        let sum = qlk_exp_shifted_sum(row, row, Int64(t + 1), m, kernels.code)
                        qlk_scale(row, Int64(t + 1), 1 / sum, kernels.code)
                        (row + t + 1).update(repeating: 0, count: n - t - 1)
                        lseP?.base[(a + t) * heads + h0 + j] = m + Foundation.log(sum)
                    }
                }
                for j in 0..<count {
                    let h = h0 + j, kvh = h / group
                    for tile in tiles {  // O[r0..<r1] = P[r0..<r1, 0..<r1]·V[0..<r1]
                        Self.gemm(false, false, tile.count, d, tile.upperBound, 1, scores + j * square + tile.lowerBound * n, n,
                                  v + a * kvStride + kvh * d, kvStride, 0, out + (a + tile.lowerBound) * qStride + h * d, qStride)
                    }
                }
            }
        }
    }

    public func attentionBackward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                  v: UnsafePointer<Float>, out: UnsafePointer<Float>, logsumexp: UnsafePointer<Float>,
                                  dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                                  documents: UnsafePointer<Int32>?, rows: Int, heads: Int, kvHeads: Int, headDim: Int,
                                  scale: Float) {
        let group = heads / kvHeads, d = headDim
        let qStride = heads * d, kvStride = kvHeads * d
        for run in Self.documentRuns(documents, rows: rows) {
            let a = run.lowerBound, n = run.count, square = n * n
            let tiles = Self.tiles(n)
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
                    let qh = q + a * qStride + h * d, gh = dOut + a * qStride + h * d
                    let kg = k + a * kvStride + kvh * d, vg = v + a * kvStride + kvh * d
                    for tile in tiles {  // S (into probs) and dP = dO·Vᵀ (into dScores), keys 0..<r1
                        let r0 = tile.lowerBound
                        Self.gemm(false, true, tile.count, tile.upperBound, d, scale, qh + r0 * qStride, qStride, kg, kvStride,
                                  0, probs + j * square + r0 * n, n)
                        Self.gemm(false, true, tile.count, tile.upperBound, d, 1, gh + r0 * qStride, qStride, vg, kvStride,
                                  0, dScores + j * square + r0 * n, n)
                    }
                }
                CPUKernels.parallelChunks(count * n, chunk: max(1, 4096 / n), threads: count * square >= 1 << 14 ? threads : 1) { range in
                    for idx in range {
                        let j = idx / n, t = idx % n, h = h0 + j
                        let p = probsP.base + j * square + t * n, ds = dScoresP.base + j * square + t * n
                        let o = (a + t) * qStride + h * d
                        let delta = CPUKernels.dot(dOut + o, out + o, d)
                        // P = exp(S − lse), dS = P ⊙ (dP − Δ) · scale (the scale of dQ and dK folded in)
                        qlk_softmax_backward_row(p, ds, Int64(t + 1), logsumexp[(a + t) * heads + h], delta, scale, kernels.code)
                        (p + t + 1).update(repeating: 0, count: n - t - 1)
                        (ds + t + 1).update(repeating: 0, count: n - t - 1)
                    }
                }
                for j in 0..<count {
                    let h = h0 + j, kvh = h / group
                    let beta: Float = h % group == 0 ? 0 : 1
                    let qh = q + a * qStride + h * d, gh = dOut + a * qStride + h * d
                    let kg = k + a * kvStride + kvh * d
                    let pj = probs + j * square, dsj = dScores + j * square
                    for tile in tiles {
                        let r0 = tile.lowerBound
                        // dQ[r0..<r1] = dS[r0..<r1, 0..<r1]·K[0..<r1]
                        Self.gemm(false, false, tile.count, d, tile.upperBound, 1, dsj + r0 * n, n, kg, kvStride,
                                  0, dq + (a + r0) * qStride + h * d, qStride)
                        // dV[k0..<k1] (+)= P[k0..<n, k0..<k1]ᵀ·dO[k0..<n];  dK[k0..<k1] (+)= dS[k0..<n, k0..<k1]ᵀ·Q[k0..<n]
                        Self.gemm(true, false, tile.count, d, n - r0, 1, pj + r0 * n + r0, n, gh + r0 * qStride, qStride,
                                  beta, dv + (a + r0) * kvStride + kvh * d, kvStride)
                        Self.gemm(true, false, tile.count, d, n - r0, 1, dsj + r0 * n + r0, n, qh + r0 * qStride, qStride,
                                  beta, dk + (a + r0) * kvStride + kvh * d, kvStride)
                    }
                }
            }
        }
    }
}

/// Decoding attention: one query row over `start + 1` cached keys/values, per head a GEMV over the keys
/// (`s[j] = scale · q_h·k_j`), the softmax with the kernels' exp, and one over the values
/// (`o_h = Σ_j p_j v_j / Σ_j p_j`, accumulated in j order) — qlk_attn_scores/qlk_attn_values in
/// Sources/CQLoRAKernels/gemv4.c. Reads the cache in place; the scores live in a stack buffer, so a decode step
/// allocates nothing here.
extension CPUBackend {
    func decodeAttention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                         start: Int, heads: Int, kvHeads: Int, headDim d: Int, scale: Float) {
        let group = heads / kvHeads, kvStride = kvHeads * d, total = start + 1
        withUnsafeTemporaryAllocation(of: Float.self, capacity: total) { buffer in
            let scores = buffer.baseAddress!
            for h in 0..<heads {
                let kvh = h / group
                qlk_attn_scores(q + h * d, k + kvh * d, Int64(kvStride), Int64(d), Int64(total), scale, scores)
                let m = CPUKernels.maximum(scores, total)
                let sum = qlk_exp_shifted_sum(scores, scores, Int64(total), m, kernels.code)
                qlk_attn_values(scores, v + kvh * d, Int64(kvStride), Int64(d), Int64(total), 1 / sum, out + h * d)
            }
        }
    }
}
