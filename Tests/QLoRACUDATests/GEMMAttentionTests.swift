import CQLoRAKernelMath
import Foundation
import QLoRACore
import Testing
@testable import QLoRACUDA

/// The CUDA backend's training attention plan (`GEMMAttention`: chunks, strided batched GEMMs over the kv heads, the
/// softmax and score-gradient row steps, the dK/dV accumulation) run on host arrays by `HostAttentionEngine`, against
/// `ReferenceBackend`'s attention. What the GPU adds is cuBLASLt executing the same GEMM descriptions and attention.cu's
/// two row kernels, which compute what the host engine's steps compute here (scripts/gpu-check.sh checks them there).
@Suite struct GEMMAttentionTests {
    struct Case: CustomStringConvertible, Sendable {
        var rows: Int, heads: Int, kvHeads: Int, headDim: Int
        var documents: [Int32]?
        var chunkRows: Int
        var description: String { "\(rows) rows, \(heads)/\(kvHeads) heads of \(headDim), chunks of \(chunkRows), documents \(documents.map { Set($0).count } ?? 0)" }
    }

    static let cases: [Case] = [
        Case(rows: 23, heads: 4, kvHeads: 2, headDim: 8, documents: nil, chunkRows: 7),
        // Packed documents of 5, 1, 9 and 8 rows: chunks start inside documents and span several.
        Case(rows: 23, heads: 4, kvHeads: 2, headDim: 8,
             documents: [0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3], chunkRows: 4),
        Case(rows: 30, heads: 6, kvHeads: 1, headDim: 5, documents: [Int32](repeating: 4, count: 12) + [Int32](repeating: 9, count: 18),
             chunkRows: 1024),
        Case(rows: 17, heads: 3, kvHeads: 3, headDim: 16, documents: (0..<17).map { Int32($0 / 6) }, chunkRows: 5),
    ]

    @Test(arguments: cases) func fp32PlanMatchesTheReference(_ c: Case) {
        let (ours, reference) = run(c, bf16: false)
        for (name, a, b) in zip3(["out", "logsumexp", "dq", "dk", "dv"], ours, reference) {
            #expect(maxRelativeError(a, b) <= 1e-4, "\(name): \(maxRelativeError(a, b))")
        }
    }

    /// With bf16 GEMM operands (what `operand` makes under bf16 compute): every GEMM input must have gone through
    /// `operand`, or the engine refuses the mixed types, and the results stay within bf16's precision.
    @Test(arguments: cases) func bf16PlanStaysWithinBF16Precision(_ c: Case) {
        let (ours, reference) = run(c, bf16: true)
        for (name, a, b) in zip3(["out", "logsumexp", "dq", "dk", "dv"], ours, reference) {
            #expect(maxRelativeError(a, b) <= 1e-2, "\(name): \(maxRelativeError(a, b))")
        }
    }

    @Test func chunksStartAtTheFirstRowsDocumentRoundedDown() {
        let starts = [0, 0, 2, 2, 2, 5, 5]   // documentStarts of [0, 0, 1, 1, 1, 2, 2]
        let chunks = GEMMAttention.chunks(starts: starts, chunkRows: 3, keyAlignment: 1)
        #expect(chunks.map(\.rows) == [0..<3, 3..<6, 6..<7] && chunks.map(\.firstKey) == [0, 2, 5])
        #expect(GEMMAttention.chunks(starts: starts, chunkRows: 3, keyAlignment: 4).map(\.firstKey) == [0, 0, 4])
    }

    // MARK: Helpers

    private func run(_ c: Case, bf16: Bool) -> (ours: [[Float]], reference: [[Float]]) {
        let qCount = c.rows * c.heads * c.headDim, kvCount = c.rows * c.kvHeads * c.headDim
        var rng = SeededGenerator(seed: UInt64(c.rows * 31 + c.heads))
        func random(_ n: Int, _ scale: Float) -> [Float] { (0..<n).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale } }
        let q = random(qCount, 2), k = random(kvCount, 2), v = random(kvCount, 1), dOut = random(qCount, 1)
        let scale = 1 / Float(c.headDim).squareRoot()

        let r = ReferenceBackend()
        let rq = r.upload(q, shape: [c.rows, c.heads * c.headDim]), rk = r.upload(k, shape: [c.rows, c.kvHeads * c.headDim])
        let rv = r.upload(v, shape: [c.rows, c.kvHeads * c.headDim]), rg = r.upload(dOut, shape: [c.rows, c.heads * c.headDim])
        let ro = r.allocate([c.rows, c.heads * c.headDim], .f32), rl = r.allocate([c.rows, c.heads], .f32)
        let rdq = r.allocate([c.rows, c.heads * c.headDim], .f32), rdk = r.allocate([c.rows, c.kvHeads * c.headDim], .f32)
        let rdv = r.allocate([c.rows, c.kvHeads * c.headDim], .f32)
        let documents = c.documents.map { r.upload($0, shape: [c.rows]) }
        r.attentionTraining(q: rq, k: rk, v: rv, out: ro, logsumexp: rl, documents: documents, rows: c.rows, heads: c.heads,
                            kvHeads: c.kvHeads, headDim: c.headDim, scale: scale)
        r.attentionBackward(dOut: rg, q: rq, k: rk, v: rv, out: ro, logsumexp: rl, dq: rdq, dk: rdk, dv: rdv, documents: documents,
                            rows: c.rows, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, scale: scale)
        let reference = [ro, rl, rdq, rdk, rdv].map { r.download($0) }

        let e = HostAttentionEngine(bf16: bf16)
        let starts = c.documents.map { d in d.withUnsafeBufferPointer { documentStarts($0.baseAddress, rows: c.rows) } }
            ?? documentStarts(nil, rows: c.rows)
        let hq = e.make(q), hk = e.make(k), hv = e.make(v), hg = e.make(dOut)
        let ho = e.make(.init(repeating: .nan, count: qCount)), hl = e.make(.init(repeating: .nan, count: c.rows * c.heads))
        let hdq = e.make(.init(repeating: .nan, count: qCount)), hdk = e.make(.init(repeating: .nan, count: kvCount))
        let hdv = e.make(.init(repeating: .nan, count: kvCount)), hs = e.make(starts.map(Float.init))
        let shape = GEMMAttention.Shape(rows: c.rows, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        GEMMAttention.forward(e, q: hq, k: hk, v: hv, out: ho, lse: hl, starts: starts, deviceStarts: hs, shape: shape, scale: scale,
                              chunkRows: c.chunkRows)
        // delta[t, h] = dOut·out, as the backend's delta kernel computes it.
        var delta = [Float](repeating: 0, count: c.rows * c.heads)
        for i in delta.indices {
            for d in 0..<c.headDim { delta[i] += dOut[i * c.headDim + d] * e.arrays[ho.index][i * c.headDim + d] }
        }
        GEMMAttention.backward(e, dOut: hg, q: hq, k: hk, v: hv, lse: hl, delta: e.make(delta), dq: hdq, dk: hdk, dv: hdv, starts: starts,
                               deviceStarts: hs, shape: shape, scale: scale, chunkRows: c.chunkRows)
        return ([ho, hl, hdq, hdk, hdv].map { e.arrays[$0.index] }, reference)
    }

    private func maxRelativeError(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count else { return .infinity }
        return zip(a, b).map { x, y in x.isNaN || y.isNaN ? .infinity : Double(abs(x - y)) / max(1, Double(abs(y))) }.max() ?? 0
    }

    private func zip3<A, B, C>(_ a: [A], _ b: [B], _ c: [C]) -> [(A, B, C)] { zip(a, zip(b, c)).map { ($0, $1.0, $1.1) } }
}

/// `AttentionEngine` on host arrays, with the semantics of `CUDAAttentionEngine`: scratch buffers hold garbage (NaN)
/// until written, a GEMM with β = 0 never reads its output, `operand` makes bf16 copies (rounded as the cast kernel
/// rounds, qlora_math.h) when `bf16`, and a GEMM refuses operands of two types or a bf16 result.
final class HostAttentionEngine: AttentionEngine {
    struct Buffer {
        let index: Int
        let bf16: Bool
    }

    let bf16: Bool
    var arrays: [[Float]] = []
    private var slots: [String: Int] = [:]

    init(bf16: Bool) { self.bf16 = bf16 }

    func make(_ values: [Float]) -> Buffer {
        arrays.append(values)
        return Buffer(index: arrays.count - 1, bf16: false)
    }

    private func slot(_ name: String, _ count: Int, bf16: Bool) -> Buffer {
        let garbage = [Float](repeating: .nan, count: count)
        if let i = slots[name] {
            arrays[i] = garbage
            return Buffer(index: i, bf16: bf16)
        }
        let b = make(garbage)
        slots[name] = b.index
        return Buffer(index: b.index, bf16: bf16)
    }

    func scratch(_ slot: String, floats: Int) -> Buffer { self.slot(slot, floats, bf16: false) }

    func operand(_ buffer: Buffer, count: Int, _ slot: String) -> Buffer {
        guard bf16 else { return buffer }
        let out = self.slot(slot, count, bf16: true)
        var bits = [UInt16](repeating: 0, count: count)
        qlm_bf16_from_float(arrays[buffer.index], &bits, Int64(count))
        qlm_bf16_to_float(bits, &arrays[out.index], Int64(count))
        return out
    }

    func zero(_ buffer: Buffer, count: Int) {
        for i in 0..<count { arrays[buffer.index][i] = 0 }
    }

    func gemm(_ a: AttentionView<Buffer>, transA: Bool, _ b: AttentionView<Buffer>, transB: Bool, into c: AttentionView<Buffer>,
              m: Int, n: Int, k: Int, batch: Int, beta: Float) {
        precondition(a.buffer.bf16 == b.buffer.bf16 && !c.buffer.bf16, "GEMM operands of one type, an fp32 result")
        let x = arrays[a.buffer.index], y = arrays[b.buffer.index]
        for g in 0..<batch {
            for i in 0..<m {
                for j in 0..<n {
                    var sum: Float = 0
                    for l in 0..<k {
                        let av = x[a.offset + g * a.stride + (transA ? l * a.ld + i : i * a.ld + l)]
                        let bv = y[b.offset + g * b.stride + (transB ? j * b.ld + l : l * b.ld + j)]
                        sum += av * bv
                    }
                    let at = c.offset + g * c.stride + i * c.ld + j
                    arrays[c.buffer.index][at] = beta == 0 ? sum : sum + beta * arrays[c.buffer.index][at]
                }
            }
        }
    }

    func softmaxRows(_ scores: Buffer, starts: Buffer, lse: Buffer, forward: Bool, r0: Int, firstKey: Int, nq: Int, nk: Int, batch: Int,
                     heads: Int, group: Int, j: Int, scale: Float) {
        for row in 0..<(batch * nq) {
            let g = row / nq, t = r0 + row % nq, h = g * group + j
            let lo = Int(arrays[starts.index][t]) - firstKey, hi = t - firstKey
            let base = row * nk
            let l: Float
            if forward {
                let m = (lo...hi).map { scale * arrays[scores.index][base + $0] }.max()!
                let sum = (lo...hi).map { Foundation.exp(scale * arrays[scores.index][base + $0] - m) }.reduce(0, +)
                l = m + Foundation.log(sum)
                arrays[lse.index][t * heads + h] = l
            } else {
                l = arrays[lse.index][t * heads + h]
            }
            for col in 0..<nk {
                let s = arrays[scores.index][base + col]
                arrays[scores.index][base + col] = col >= lo && col <= hi ? Foundation.exp(scale * s - l) : 0
            }
        }
    }

    func scoreGradients(_ dScores: Buffer, probabilities: Buffer, delta: Buffer, r0: Int, nq: Int, nk: Int, batch: Int, heads: Int,
                        group: Int, j: Int, scale: Float) {
        for idx in 0..<(batch * nq * nk) {
            let row = idx / nk, g = row / nq, t = r0 + row % nq, h = g * group + j
            let p = arrays[probabilities.index][idx]
            arrays[dScores.index][idx] = scale * p * (arrays[dScores.index][idx] - arrays[delta.index][t * heads + h])
        }
    }
}
