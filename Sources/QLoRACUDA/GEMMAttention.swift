import Foundation

/// Training attention (causal, grouped-query heads, packed documents) as batched GEMMs plus two row kernels, so its
/// FLOPs run on the tensor cores through cuBLASLt instead of one warp per query row on the CUDA cores. Generic over
/// `AttentionEngine`: `CUDAAttentionEngine` runs it on the GPU; the tests run the same plan on host arrays
/// (Tests/QLoRACUDATests/GEMMAttentionTests.swift) against `ReferenceBackend`, which checks every offset, stride,
/// chunk and accumulation here without a GPU. Only the two row kernels (attention.cu) are the GPU's own.
///
/// The query rows go in chunks of `chunkRows`; a chunk's keys run from its first row's document start (rounded down for
/// alignment) to its last row (document starts never decrease). Per chunk and per position `j` within a kv-head group, one GEMM batched over
/// the kv heads g takes query head g·G + j against kv head g (uniform strides: G·d between query heads, d between kv
/// heads), so a whole chunk is 2·G batched GEMMs forward and 5·G backward:
///
///   forward   S = Q_j·K_gᵀ; P = softmax(scale·S) over the row's visible keys, logsumexp saved; O_j = P·V_g
///   backward  S again, P = exp(scale·S − lse); dP = dO_j·V_gᵀ; dS = scale·P⊙(dP − δ); dQ_j = dS·K_g;
///             dK_g += dSᵀ·Q_j; dV_g += Pᵀ·dO_j (summed over j, then chunks, in that order: deterministic)
///
/// The scores of one chunk exist at once (`kvHeads` × chunk rows × its keys, fp32), never the whole attention matrix.
enum GEMMAttention {
    static let chunkRows = 1024

    /// Query chunks `[r0, r1)` and the first key each reads: its first row's document start, rounded down to a multiple
    /// of `keyAlignment` (the columns before a row's start are masked anyway), so the bf16 score rows and key blocks
    /// the tensor cores read start 16-byte aligned.
    static func chunks(starts: [Int], chunkRows: Int = chunkRows, keyAlignment: Int = 8) -> [(rows: Range<Int>, firstKey: Int)] {
        stride(from: 0, to: starts.count, by: chunkRows).map { r0 in
            (r0..<min(r0 + chunkRows, starts.count), starts[r0] / keyAlignment * keyAlignment)
        }
    }

    struct Shape {
        let rows: Int, heads: Int, kvHeads: Int, headDim: Int
        var group: Int { heads / kvHeads }
    }

    /// `out` and `lse` for `q`, `k`, `v` (engine buffers in the Backend layouts: [rows, heads, d], [rows, kvHeads, d]).
    static func forward<E: AttentionEngine>(_ e: E, q: E.Buffer, k: E.Buffer, v: E.Buffer, out: E.Buffer, lse: E.Buffer,
                                            starts: [Int], deviceStarts: E.Buffer, shape s: Shape, scale: Float,
                                            chunkRows: Int = chunkRows) {
        let d = s.headDim, H = s.heads, KV = s.kvHeads, G = s.group
        let qOp = e.operand(q, count: s.rows * H * d, "attention q"), kOp = e.operand(k, count: s.rows * KV * d, "attention k")
        let vOp = e.operand(v, count: s.rows * KV * d, "attention v")
        for (rows, firstKey) in chunks(starts: starts, chunkRows: chunkRows) {
            let nq = rows.count, nk = rows.upperBound - firstKey, r0 = rows.lowerBound
            let scores = e.scratch("attention scores", floats: KV * nq * nk)
            let sView = AttentionView(scores, offset: 0, ld: nk, stride: nq * nk)
            for j in 0..<G {
                let qj = AttentionView(qOp, offset: (r0 * H + j) * d, ld: H * d, stride: G * d)
                let kg = AttentionView(kOp, offset: firstKey * KV * d, ld: KV * d, stride: d)
                e.gemm(qj, transA: false, kg, transB: true, into: sView, m: nq, n: nk, k: d, batch: KV, beta: 0)
                e.softmaxRows(scores, starts: deviceStarts, lse: lse, forward: true, r0: r0, firstKey: firstKey, nq: nq, nk: nk,
                              batch: KV, heads: H, group: G, j: j, scale: scale)
                let p = AttentionView(e.operand(scores, count: KV * nq * nk, "attention p"), offset: 0, ld: nk, stride: nq * nk)
                let vg = AttentionView(vOp, offset: firstKey * KV * d, ld: KV * d, stride: d)
                let oj = AttentionView(out, offset: (r0 * H + j) * d, ld: H * d, stride: G * d)
                e.gemm(p, transA: false, vg, transB: false, into: oj, m: nq, n: d, k: nk, batch: KV, beta: 0)
            }
        }
    }

    /// `dq`, `dk`, `dv` (overwritten) for `dOut` given the forward's inputs, `lse` and `delta[t, h] = dOut·out`.
    static func backward<E: AttentionEngine>(_ e: E, dOut: E.Buffer, q: E.Buffer, k: E.Buffer, v: E.Buffer, lse: E.Buffer,
                                             delta: E.Buffer, dq: E.Buffer, dk: E.Buffer, dv: E.Buffer, starts: [Int],
                                             deviceStarts: E.Buffer, shape s: Shape, scale: Float, chunkRows: Int = chunkRows) {
        let d = s.headDim, H = s.heads, KV = s.kvHeads, G = s.group
        e.zero(dk, count: s.rows * KV * d)
        e.zero(dv, count: s.rows * KV * d)
        let qOp = e.operand(q, count: s.rows * H * d, "attention q"), kOp = e.operand(k, count: s.rows * KV * d, "attention k")
        let vOp = e.operand(v, count: s.rows * KV * d, "attention v")
        let gOp = e.operand(dOut, count: s.rows * H * d, "attention dout")
        for (rows, firstKey) in chunks(starts: starts, chunkRows: chunkRows) {
            let nq = rows.count, nk = rows.upperBound - firstKey, r0 = rows.lowerBound
            let scores = e.scratch("attention scores", floats: KV * nq * nk)
            let dScores = e.scratch("attention score gradients", floats: KV * nq * nk)
            let sView = AttentionView(scores, offset: 0, ld: nk, stride: nq * nk)
            let dsView = AttentionView(dScores, offset: 0, ld: nk, stride: nq * nk)
            let kg = AttentionView(kOp, offset: firstKey * KV * d, ld: KV * d, stride: d)
            let vg = AttentionView(vOp, offset: firstKey * KV * d, ld: KV * d, stride: d)
            let dkg = AttentionView(dk, offset: firstKey * KV * d, ld: KV * d, stride: d)
            let dvg = AttentionView(dv, offset: firstKey * KV * d, ld: KV * d, stride: d)
            for j in 0..<G {
                let qj = AttentionView(qOp, offset: (r0 * H + j) * d, ld: H * d, stride: G * d)
                let gj = AttentionView(gOp, offset: (r0 * H + j) * d, ld: H * d, stride: G * d)
                e.gemm(qj, transA: false, kg, transB: true, into: sView, m: nq, n: nk, k: d, batch: KV, beta: 0)
                e.softmaxRows(scores, starts: deviceStarts, lse: lse, forward: false, r0: r0, firstKey: firstKey, nq: nq, nk: nk,
                              batch: KV, heads: H, group: G, j: j, scale: scale)
                e.gemm(gj, transA: false, vg, transB: true, into: dsView, m: nq, n: nk, k: d, batch: KV, beta: 0)
                e.scoreGradients(dScores, probabilities: scores, delta: delta, r0: r0, nq: nq, nk: nk, batch: KV, heads: H, group: G,
                                 j: j, scale: scale)
                let p = AttentionView(e.operand(scores, count: KV * nq * nk, "attention p"), offset: 0, ld: nk, stride: nq * nk)
                let ds = AttentionView(e.operand(dScores, count: KV * nq * nk, "attention ds"), offset: 0, ld: nk, stride: nq * nk)
                let dqj = AttentionView(dq, offset: (r0 * H + j) * d, ld: H * d, stride: G * d)
                e.gemm(ds, transA: false, kg, transB: false, into: dqj, m: nq, n: d, k: nk, batch: KV, beta: 0)
                e.gemm(ds, transA: true, qj, transB: false, into: dkg, m: nk, n: d, k: nq, batch: KV, beta: 1)
                e.gemm(p, transA: true, gj, transB: false, into: dvg, m: nk, n: d, k: nq, batch: KV, beta: 1)
            }
        }
    }
}

/// A strided, batched matrix inside an engine buffer, in elements: batch b's element (row, col) is at
/// `offset + b·stride + row·ld + col` (row-major).
struct AttentionView<Buffer> {
    let buffer: Buffer
    let offset: Int, ld: Int, stride: Int
    init(_ buffer: Buffer, offset: Int, ld: Int, stride: Int) {
        self.buffer = buffer
        self.offset = offset
        self.ld = ld
        self.stride = stride
    }
}

/// What `GEMMAttention` runs on. Buffers hold fp32 unless `operand` made them (its GEMM-operand form).
protocol AttentionEngine {
    associatedtype Buffer
    /// A scratch buffer of `floats` fp32 values for `slot` (reused between calls).
    func scratch(_ slot: String, floats: Int) -> Buffer
    /// `buffer`'s first `count` values as GEMM operands read them: itself (fp32), or a bf16 copy in `slot`.
    func operand(_ buffer: Buffer, count: Int, _ slot: String) -> Buffer
    func zero(_ buffer: Buffer, count: Int)
    /// For each batch b: C (m × n) = op(A)·op(B) + beta·C, row-major; op(A) is m × k (A stored k × m when transA).
    func gemm(_ a: AttentionView<Buffer>, transA: Bool, _ b: AttentionView<Buffer>, transB: Bool, into c: AttentionView<Buffer>,
              m: Int, n: Int, k: Int, batch: Int, beta: Float)
    /// Over `scores` [batch][nq][nk] (batch g, local row i: query row t = r0 + i, head h = g·group + j; column c: key
    /// firstKey + c), visible keys starts[t] ≤ key ≤ t: forward, P = exp(scale·S − lse) with lse = log Σ exp(scale·S)
    /// written to lse[t·heads + h]; backward, P = exp(scale·S − lse[t·heads + h]). P overwrites S; 0 where not visible.
    func softmaxRows(_ scores: Buffer, starts: Buffer, lse: Buffer, forward: Bool, r0: Int, firstKey: Int, nq: Int, nk: Int,
                     batch: Int, heads: Int, group: Int, j: Int, scale: Float)
    /// dS = scale · P ⊙ (dP − delta[t·heads + h]), overwriting dP (same indexing as `softmaxRows`).
    func scoreGradients(_ dScores: Buffer, probabilities: Buffer, delta: Buffer, r0: Int, nq: Int, nk: Int, batch: Int, heads: Int,
                        group: Int, j: Int, scale: Float)
}
