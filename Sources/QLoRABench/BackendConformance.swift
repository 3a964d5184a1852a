import Foundation
import QLoRABackends
import QLoRACore

/// Every op of the `Backend` protocol run on a candidate backend and on a reference through their own tensor handles,
/// inputs uploaded and outputs downloaded, on seeded random data (llama.cpp's `test-backend-ops` is the model). The
/// conformance tests (Tests/QLoRACPUTests/TensorConformanceTests.swift) run it on every backend of this build;
/// `qlora bench ops` runs it where the tests cannot (a GPU machine without Swift, scripts/gpu-check.sh).
///
/// Each check reports its largest error, |ours − reference| / max(1, |reference|) over every element, against its
/// tolerance: 0 for the ops that must be bit-identical (the 4-bit dequantization behind the linears is checked
/// through them; dropout masks, AdamW, scaling, bias, embedding and its backward, residual adds).
public struct BackendConformance {
    public struct Result: Sendable, Encodable {
        public var op: String
        public var maxError: Double
        public var tolerance: Double
        public var passed: Bool { maxError <= tolerance }
    }

    public let candidate: any Backend
    public let reference: any Backend
    /// Relative tolerance of the fp32 ops.
    public var tolerance: Double = 1e-4
    /// Relative tolerance of the products (matmuls and multi-row linears): `tolerance`, or 1e-2 for a candidate whose
    /// GEMMs read bf16 (`ComputePrecision.bf16`); the decode GEMV and every other op stay fp32 and keep theirs.
    public var productTolerance: Double?

    public init(candidate: any Backend, reference: any Backend) {
        self.candidate = candidate
        self.reference = reference
    }

    static func random(_ n: Int, _ seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }

    /// The largest |a − b| / max(1, |b|) (any bit difference counts; NaN or a length mismatch is infinite).
    public static func error(_ a: [Float], _ b: [Float]) -> Double {
        guard a.count == b.count else { return .infinity }
        var worst = 0.0
        for (x, y) in zip(a, b) {
            if x.bitPattern == y.bitPattern { continue }
            let e = x.isNaN || y.isNaN ? Double.infinity : Double(abs(x - y)) / max(1, Double(abs(y)))
            worst = max(worst, e == 0 ? Double.leastNonzeroMagnitude : e)   // -0 vs +0 counts for exact ops
        }
        return worst
    }

    /// `op` on both backends: `inputs` uploaded (f32), `outputs` uploaded with their initial values; both sides'
    /// outputs downloaded.
    private func both(inputs: [([Float], [Int])], outputs: [([Float], [Int])],
                      _ op: (any Backend, [Tensor], [Tensor]) -> Void) -> (ours: [[Float]], reference: [[Float]]) {
        func run(_ x: any Backend) -> [[Float]] {
            let ins = inputs.map { x.upload($0.0, shape: $0.1) }
            let outs = outputs.map { x.upload($0.0, shape: $0.1) }
            op(x, ins, outs)
            x.synchronize()
            return outs.map { x.download($0) }
        }
        return (run(candidate), run(reference))
    }

    /// Runs every check, in a fixed order.
    public func run() -> [Result] {
        var results: [Result] = []
        func record(_ op: String, _ r: (ours: [[Float]], reference: [[Float]]), exact: Bool = false, tolerance: Double? = nil) {
            let e = zip(r.ours, r.reference).map { Self.error($0, $1) }.max() ?? 0
            results.append(Result(op: op, maxError: e, tolerance: exact ? 0 : tolerance ?? self.tolerance))
        }
        let random = Self.random

        func product(_ op: String, _ r: (ours: [[Float]], reference: [[Float]])) { record(op, r, tolerance: productTolerance) }

        // Products.
        do {
            let m = 5, n = 7, k = 33
            let a = random(m * k, 2, 1), w = random(n * k, 3, 1), c0 = random(m * n, 4, 1)
            product("matmulTransposed", both(inputs: [(a, [m, k]), (w, [n, k])], outputs: [(c0, [m, n])]) { x, i, o in
                x.matmulTransposed(i[0], i[1], o[0], m: m, n: n, k: k, accumulate: true)
            })
            let bkn = random(k * n, 5, 1)
            product("matmul", both(inputs: [(a, [m, k]), (bkn, [k, n])], outputs: [(c0, [m, n])]) { x, i, o in
                x.matmul(i[0], i[1], o[0], m: m, n: n, k: k, accumulate: false)
            })
            let akm = random(k * m, 6, 1)
            product("matmulTransposedA", both(inputs: [(akm, [k, m]), (bkn, [k, n])], outputs: [(c0, [m, n])]) { x, i, o in
                x.matmulTransposedA(i[0], i[1], o[0], m: m, n: n, k: k, accumulate: true)
            })
        }

        // Frozen linears, dense and 4-bit, one row (decoding's GEMV) and several.
        for rows in [1, 6] {
            let out = 24, inF = 128
            let x = random(rows * inF, 7, 1), dense = random(out * inF, 8, 0.1), dy = random(rows * out, 9, 1)
            let q = FourBitQuantizer.quantize(dense, shape: [out, inF], options: FourBitOptions())
            for fourBit in [false, true] {
                let tag = "\(fourBit ? "4-bit" : "f32"), \(rows) row\(rows == 1 ? "" : "s")"
                func weight(_ z: any Backend) -> Tensor { fourBit ? z.upload(q) : z.upload(frozen: dense, shape: [out, inF]) }
                product("linear (\(tag))", both(inputs: [(x, [rows, inF])], outputs: [(random(rows * out, 10, 1), [rows, out])]) { z, i, o in
                    z.linear(i[0], weight(z), o[0], rows: rows, accumulate: true)
                })
                let ones = [Float](repeating: 1, count: rows * out)
                product("linear group (\(tag))", both(inputs: [(x, [rows, inF])], outputs: [(ones, [rows, out]), (ones, [rows, out])]) { z, i, o in
                    z.linear(i[0], [weight(z), weight(z)], o, rows: rows)
                })
                product("linearBackwardInput (\(tag))", both(inputs: [(dy, [rows, out])], outputs: [(random(rows * inF, 11, 1), [rows, inF])]) { z, i, o in
                    z.linearBackwardInput(i[0], weight(z), o[0], rows: rows, accumulate: fourBit)
                })
            }
        }

        // Forward ops.
        do {
            let rows = 5, dim = 16, heads = 4, kvHeads = 2, d = 8, start = 3
            let x = random(rows * dim, 13, 1), g = random(dim, 14, 1)
            record("rmsNorm", both(inputs: [(x, [rows, dim]), (g, [dim])], outputs: [([Float](repeating: 0, count: rows * dim), [rows, dim])]) { z, i, o in
                z.rmsNorm(i[0], weight: i[1], o[0], rows: rows, dim: dim, eps: 1e-5)
            })
            let cosT = random(rows * d / 2, 15, 1), sinT = random(rows * d / 2, 16, 1), qx = random(rows * heads * d, 17, 1)
            record("rope", both(inputs: [(cosT, [rows, d / 2]), (sinT, [rows, d / 2])], outputs: [(qx, [rows, heads * d])]) { z, i, o in
                z.rope(o[0], rows: rows, heads: heads, headDim: d, cos: i[0], sin: i[1])
            }, exact: true)
            record("ropeBackward", both(inputs: [(cosT, [rows, d / 2]), (sinT, [rows, d / 2])], outputs: [(qx, [rows, heads * d])]) { z, i, o in
                z.ropeBackward(o[0], rows: rows, heads: heads, headDim: d, cos: i[0], sin: i[1])
            }, exact: true)
            let k = random((start + rows) * kvHeads * d, 18, 1), v = random(k.count, 19, 1)
            record("attention (KV cache)", both(inputs: [(qx, [rows, heads * d]), (k, [start + rows, kvHeads * d]), (v, [start + rows, kvHeads * d])],
                                                outputs: [([Float](repeating: 0, count: qx.count), [rows, heads * d])]) { z, i, o in
                z.attention(q: i[0], k: i[1], v: i[2], out: o[0], rows: rows, start: start, heads: heads, kvHeads: kvHeads, headDim: d, scale: 0.35)
            })
            let gate = random(40, 20, 3), up = random(40, 21, 1)
            record("swiglu", both(inputs: [(gate, [40]), (up, [40])], outputs: [([Float](repeating: 0, count: 40), [40])]) { z, i, o in
                z.swiglu(gate: i[0], up: i[1], o[0], count: 40)
            })
            record("add", both(inputs: [(up, [40])], outputs: [(gate, [40])]) { z, i, o in z.add(o[0], i[0], count: 40) }, exact: true)
        }

        // Training ops.
        do {
            let rows = 9, heads = 4, kvHeads = 2, d = 8, dim = 16, vocab = 50
            let zeros = { (n: Int, shape: [Int]) in ([Float](repeating: 0, count: n), shape) }
            // Training attention: 9 rows in three documents, and 1100 rows in two (past the CUDA backend's 1024-row
            // chunks, GEMMAttention.swift). Its products read bf16 under bf16 compute: the products' tolerance.
            let long = [Int32](repeating: 0, count: 700) + [Int32](repeating: 1, count: 400)
            for (rows, docs, tag) in [(rows, [0, 0, 0, 0, 1, 1, 1, 2, 2] as [Int32], ""), (1100, long, " (1100 rows)")] {
                let q = random(rows * heads * d, 22, 2), k = random(rows * kvHeads * d, 23, 2), v = random(k.count, 24, 1)
                let dOut = random(q.count, 25, 1)
                let r = both(inputs: [(q, [rows, heads * d]), (k, [rows, kvHeads * d]), (v, [rows, kvHeads * d]), (dOut, [rows, heads * d])],
                             outputs: [zeros(q.count, [rows, heads * d]), zeros(rows * heads, [rows, heads]), zeros(q.count, [rows, heads * d]),
                                       zeros(k.count, [rows, kvHeads * d]), zeros(k.count, [rows, kvHeads * d])]) { z, i, o in
                    let documents = z.upload(docs, shape: [rows])
                    z.attentionTraining(q: i[0], k: i[1], v: i[2], out: o[0], logsumexp: o[1], documents: documents, rows: rows, heads: heads,
                                        kvHeads: kvHeads, headDim: d, scale: 0.35)
                    z.attentionBackward(dOut: i[3], q: i[0], k: i[1], v: i[2], out: o[0], logsumexp: o[1], dq: o[2], dk: o[3], dv: o[4],
                                        documents: documents, rows: rows, heads: heads, kvHeads: kvHeads, headDim: d, scale: 0.35)
                }
                for (j, name) in ["attentionTraining out", "attentionTraining logsumexp", "attentionBackward dq", "attentionBackward dk",
                                  "attentionBackward dv"].enumerated() {
                    record(name + tag, ([r.ours[j]], [r.reference[j]]), tolerance: productTolerance)
                }
            }
            let dy = random(rows * dim, 26, 1), x = random(rows * dim, 27, 1), w = random(dim, 28, 1)
            record("rmsNormBackward (dx, dWeight)", both(inputs: [(dy, [rows, dim]), (x, [rows, dim]), (w, [dim])],
                                                         outputs: [(random(rows * dim, 29, 1), [rows, dim]), zeros(dim, [dim])]) { z, i, o in
                z.rmsNormBackward(i[0], x: i[1], weight: i[2], dx: o[0], dWeight: o[1], rows: rows, dim: dim, eps: 1e-5, accumulate: true)
            })
            let gate = random(40, 30, 3), up = random(40, 31, 1), dAct = random(40, 32, 1)
            record("swigluBackward", both(inputs: [(gate, [40]), (up, [40])], outputs: [(dAct, [40]), zeros(40, [40])]) { z, i, o in
                z.swigluBackward(o[0], gate: i[0], up: i[1], dGate: o[0], dUp: o[1], count: 40)
            })
            let logits = random(rows * vocab, 33, 4)
            let targets: [Int32] = [3, CrossEntropy.ignoreIndex, 49, 0, 7, 7, CrossEntropy.ignoreIndex, 12, 1]
            var sums: [(sum: Double, count: Int)] = []
            record("crossEntropy dLogits", both(inputs: [], outputs: [(logits, [rows, vocab])]) { z, _, o in
                sums.append(z.crossEntropy(logits: o[0], targets: z.upload(targets, shape: [rows]), dLogits: o[0], rows: rows, vocab: vocab,
                                           gradScale: 1.0 / 7))
            }, tolerance: 1e-5)
            let lossError = sums[0].count == sums[1].count ? abs(sums[0].sum - sums[1].sum) / max(1, abs(sums[1].sum)) : .infinity
            results.append(Result(op: "crossEntropy loss", maxError: lossError, tolerance: tolerance))
        }

        // The small ops: bit-identical.
        do {
            let vocab = 11, dim = 13, rows = 6
            let table = random(vocab * dim, 34, 1), dOut = random(rows * dim, 35, 1)
            let ids: [Int32] = [3, 0, 10, 3, 7, 3]
            record("embedding, embeddingBackward", both(inputs: [(table, [vocab, dim]), (dOut, [rows, dim])],
                                                        outputs: [([Float](repeating: 0, count: rows * dim), [rows, dim]),
                                                                  (random(vocab * dim, 36, 1), [vocab, dim])]) { z, i, o in
                let t = z.upload(ids, shape: [rows])
                z.embedding(i[0], ids: t, o[0], rows: rows, dim: dim)
                z.embeddingBackward(i[1], ids: t, dTable: o[1], rows: rows, dim: dim)
            }, exact: true)
            let bias = random(dim, 37, 1), xs = random(rows * dim, 38, 1)
            record("addBias, scale, dropout", both(inputs: [(bias, [dim])], outputs: [(xs, [rows, dim]), (xs, [rows, dim])]) { z, i, o in
                z.addBias(o[0], i[0], rows: rows, width: dim)
                z.scale(o[0], by: 0.37, count: rows * dim)
                z.dropout(o[0], o[1], count: rows * dim, mask: DropoutMask(probability: 0.3, key: 99))
            }, exact: true)
            let n = 5000
            let p = random(n, 39, 1), g = random(n, 40, 1), m = random(n, 41, 0.1), v = random(n, 42, 0.1).map(abs)
            let step = AdamWStep(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, t: 3)
            var squares: [Double] = []
            record("adamW", both(inputs: [(g, [n])], outputs: [(p, [n]), (m, [n]), (v, [n])]) { z, i, o in
                z.adamW(o[0], gradient: i[0], m: o[1], v: o[2], count: n, step: step)
                squares.append(z.sumOfSquares(o[0], count: n))
            }, exact: true)
            // The global norm's sum of squares: Double, any fixed order (1e-12 relative).
            results.append(Result(op: "sumOfSquares", maxError: abs(squares[0] - squares[1]) / max(1, abs(squares[1])), tolerance: 1e-12))
        }
        return results
    }

    /// The results as a table, one line per op.
    public static func table(_ results: [Result], candidate: String, reference: String) -> String {
        var lines = ["op                                         max error   tolerance   \(candidate) vs \(reference)"]
        for r in results {
            let name = r.op.padding(toLength: 42, withPad: " ", startingAt: 0)
            lines.append("\(name) \(String(format: "%9.2e", r.maxError))   \(r.tolerance == 0 ? "exact    " : String(format: "%9.0e", r.tolerance))   \(r.passed ? "ok" : "FAILED")")
        }
        let failed = results.filter { !$0.passed }.count
        lines.append(failed == 0 ? "all \(results.count) checks passed" : "\(failed) of \(results.count) checks FAILED")
        return lines.joined(separator: "\n")
    }
}
