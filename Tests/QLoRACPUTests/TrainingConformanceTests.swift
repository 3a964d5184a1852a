import Foundation
import Testing
import QLoRABackends
import QLoRACore
@testable import QLoRACPU

/// Every training op (forward variants and backwards) of every backend agrees with its scalar reference, and the
/// CPU backend's repeats itself bit for bit across kernel paths and thread counts. Tolerances: `1e-4 · max(1, |ref|)` per element (Float kernels with different
/// summation order against a reference that sums in Double).
@Suite(.serialized) struct TrainingConformanceTests {
    let reference = ReferenceBackend()
    let cpu = CPUBackend(threads: 2)
    /// Every backend but the reference, from the factory: a new backend is checked here without editing this suite.
    static let underTest = Backends.available(threads: 2).filter { $0.name != "reference" }.compactMap { $0.backend as? any HostBackend }

    private func random(_ n: Int, _ rng: inout SeededGenerator, scale: Float = 1, offset: Float = 0) -> [Float] {
        (0..<n).map { _ in offset + (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }

    private func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-4) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    private func withDocs<R>(_ a: [Int32]?, _ body: (UnsafePointer<Int32>?) -> R) -> R {
        guard let a else { return body(nil) }
        return a.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    @Test(arguments: [(1, 8), (5, 64), (70, 200)])
    func rmsNormBackwardMatchesReference(rows: Int, dim: Int) {
        for backend in Self.underTest {
            var rng = SeededGenerator(seed: UInt64(rows * dim))
            let x = random(rows * dim, &rng, scale: 3), w = random(dim, &rng, offset: 1), dy = random(rows * dim, &rng)
            for accumulate in [false, true] {
                var rdx = random(rows * dim, &rng), cdx = rdx
                var rdw = random(dim, &rng), cdw = rdw
                reference.rmsNormBackward(dy, x: x, weight: w, dx: &rdx, dWeight: &rdw, rows: rows, dim: dim, eps: 1e-5, accumulate: accumulate)
                backend.rmsNormBackward(dy, x: x, weight: w, dx: &cdx, dWeight: &cdw, rows: rows, dim: dim, eps: 1e-5, accumulate: accumulate)
                #expect(close(cdx, rdx))
                #expect(close(cdw, rdw))
            }
        }
    }

    @Test func ropeBackwardMatchesReference() {
        for backend in Self.underTest {
            var rng = SeededGenerator(seed: 21)
            let rows = 7, heads = 3, headDim = 16
            let cosT = random(rows * headDim / 2, &rng), sinT = random(rows * headDim / 2, &rng)
            let g = random(rows * heads * headDim, &rng)
            var r = g, c = g
            reference.ropeBackward(&r, rows: rows, heads: heads, headDim: headDim, cos: cosT, sin: sinT)
            backend.ropeBackward(&c, rows: rows, heads: heads, headDim: headDim, cos: cosT, sin: sinT)
            #expect(close(c, r, tolerance: 1e-6))
        }
    }

    @Test func swigluBackwardMatchesReferenceAndMayWriteOverItsInput() {
        for backend in Self.underTest {
            var rng = SeededGenerator(seed: 22)
            let n = 40_000
            let gate = random(n, &rng, scale: 8), up = random(n, &rng, scale: 2), dy = random(n, &rng)
            var rg = [Float](repeating: 0, count: n), ru = rg, cg = rg, cu = rg
            reference.swigluBackward(dy, gate: gate, up: up, dGate: &rg, dUp: &ru, count: n)
            backend.swigluBackward(dy, gate: gate, up: up, dGate: &cg, dUp: &cu, count: n)
            #expect(close(cg, rg, tolerance: 1e-5))
            #expect(close(cu, ru, tolerance: 1e-5))
            var inPlace = dy
            inPlace.withUnsafeMutableBufferPointer { p in
                backend.swigluBackward(p.baseAddress!, gate: gate, up: up, dGate: p.baseAddress!, dUp: &cu, count: n)
            }
            #expect(inPlace == cg)
        }
    }

    @Test(arguments: [(3, 17), (40, 1000)])
    func crossEntropyMatchesReference(rows: Int, vocab: Int) {
        for backend in Self.underTest {
            var rng = SeededGenerator(seed: UInt64(rows + vocab))
            let logits = random(rows * vocab, &rng, scale: 6)
            let targets: [Int32] = (0..<rows).map { r in r % 4 == 1 ? CrossEntropy.ignoreIndex : Int32(rng.next() % UInt64(vocab)) }
            var rg = [Float](repeating: 0, count: logits.count), cg = rg
            let r = reference.crossEntropy(logits: logits, targets: targets, dLogits: &rg, rows: rows, vocab: vocab, gradScale: 0.25)
            let c = backend.crossEntropy(logits: logits, targets: targets, dLogits: &cg, rows: rows, vocab: vocab, gradScale: 0.25)
            #expect(c.count == r.count)
            #expect(abs(c.sum - r.sum) <= 1e-5 * max(1, abs(r.sum)))
            #expect(close(cg, rg, tolerance: 1e-6))
            // Loss only, and the gradient written over the logits themselves.
            let lossOnly = backend.crossEntropy(logits: logits, targets: targets, dLogits: nil, rows: rows, vocab: vocab, gradScale: 1)
            #expect(lossOnly.sum == c.sum && lossOnly.count == c.count)
            var inPlace = logits
            let again = inPlace.withUnsafeMutableBufferPointer { p in
                backend.crossEntropy(logits: p.baseAddress!, targets: targets, dLogits: p.baseAddress!, rows: rows, vocab: vocab, gradScale: 0.25)
            }
            #expect(again.sum == c.sum && inPlace == cg)
        }
    }

    static let attentionCases: [(rows: Int, heads: Int, kvHeads: Int, headDim: Int, documents: [Int32]?)] = [
        (1, 2, 1, 4, nil),
        (9, 6, 2, 8, nil),
        (12, 4, 2, 8, [0, 0, 0, 0, 1, 1, 2, 3, 3, 3, 0, 0]),
        (70, 3, 3, 16, nil),
        (200, 4, 1, 8, [Int32](repeating: 0, count: 130) + [Int32](repeating: 1, count: 70)),
    ]

    @Test(arguments: attentionCases)
    func trainingAttentionAndItsBackwardMatchReference(rows: Int, heads: Int, kvHeads: Int, headDim: Int, documents: [Int32]?) {
        for backend in Self.underTest {
            var rng = SeededGenerator(seed: UInt64(rows * 100 + heads))
            let scale = 1 / Float(headDim).squareRoot()
            let q = random(rows * heads * headDim, &rng, scale: 2), k = random(rows * kvHeads * headDim, &rng, scale: 2)
            let v = random(rows * kvHeads * headDim, &rng), dOut = random(q.count, &rng)
            var rOut = [Float](repeating: 0, count: q.count), cOut = rOut
            var rLse = [Float](repeating: 0, count: rows * heads), cLse = rLse
            withDocs(documents) { docs in
                reference.attentionTraining(q: q, k: k, v: v, out: &rOut, logsumexp: &rLse, documents: docs, rows: rows,
                                            heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale)
                backend.attentionTraining(q: q, k: k, v: v, out: &cOut, logsumexp: &cLse, documents: docs, rows: rows,
                                      heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale)
            }
            #expect(close(cOut, rOut, tolerance: 1e-5))
            #expect(close(cLse, rLse, tolerance: 1e-5))

            var rdq = [Float](repeating: 0, count: q.count), rdk = [Float](repeating: 0, count: k.count), rdv = rdk
            var cdq = rdq, cdk = rdk, cdv = rdv
            withDocs(documents) { docs in
                reference.attentionBackward(dOut: dOut, q: q, k: k, v: v, out: rOut, logsumexp: rLse, dq: &rdq, dk: &rdk, dv: &rdv,
                                            documents: docs, rows: rows, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale)
                backend.attentionBackward(dOut: dOut, q: q, k: k, v: v, out: cOut, logsumexp: cLse, dq: &cdq, dk: &cdk, dv: &cdv,
                                      documents: docs, rows: rows, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale)
            }
            #expect(close(cdq, rdq))
            #expect(close(cdk, rdk))
            #expect(close(cdv, rdv))

            // Repeats bit for bit.
            var dq2 = [Float](repeating: 1, count: q.count), dk2 = [Float](repeating: 1, count: k.count), dv2 = dk2
            withDocs(documents) { docs in
                backend.attentionBackward(dOut: dOut, q: q, k: k, v: v, out: cOut, logsumexp: cLse, dq: &dq2, dk: &dk2, dv: &dv2,
                                      documents: docs, rows: rows, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale)
            }
            #expect(dq2 == cdq && dk2 == cdk && dv2 == cdv)
        }
    }

    @Test func trainingAttentionWithoutDocumentsEqualsTheInferenceAttention() {
        for backend in Self.underTest {
            var rng = SeededGenerator(seed: 31)
            let rows = 10, heads = 4, kvHeads = 2, headDim = 8
            let q = random(rows * heads * headDim, &rng), k = random(rows * kvHeads * headDim, &rng), v = random(k.count, &rng)
            var a = [Float](repeating: 0, count: q.count), b = a
            backend.attention(q: q, k: k, v: v, out: &a, rows: rows, start: 0, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: 0.3)
            backend.attentionTraining(q: q, k: k, v: v, out: &b, logsumexp: nil, documents: nil, rows: rows, heads: heads,
                                  kvHeads: kvHeads, headDim: headDim, scale: 0.3)
            #expect(close(b, a, tolerance: 1e-6))
        }
    }

    @Test func packedDocumentsAttendLikeSeparateSequences() {
        for backend in Self.underTest {
            // Two documents packed into one row block give each document's own causal attention.
            var rng = SeededGenerator(seed: 32)
            let lengths = [5, 7], rows = 12, heads = 2, headDim = 4, width = heads * headDim
            let q = random(rows * width, &rng), k = random(rows * width, &rng), v = random(rows * width, &rng)
            let docs: [Int32] = [4, 4, 4, 4, 4, 9, 9, 9, 9, 9, 9, 9]
            var packed = [Float](repeating: 0, count: q.count)
            backend.attentionTraining(q: q, k: k, v: v, out: &packed, logsumexp: nil, documents: docs, rows: rows, heads: heads,
                                  kvHeads: heads, headDim: headDim, scale: 0.5)
            var first = 0
            for n in lengths {
                let range = (first * width)..<((first + n) * width)
                var alone = [Float](repeating: 0, count: n * width)
                reference.attentionTraining(q: Array(q[range]), k: Array(k[range]), v: Array(v[range]), out: &alone, logsumexp: nil,
                                            documents: nil, rows: n, heads: heads, kvHeads: heads, headDim: headDim, scale: 0.5)
                #expect(close(Array(packed[range]), alone, tolerance: 1e-5))
                first += n
            }
        }
    }

    @Test func kernelExpIsWithinTwoUlps() {
        var worst = 0.0
        var x: Float = -87
        while x < 88 {
            let exact = Foundation.exp(Double(x))
            let ulp = Double(Float(exact).ulp)
            worst = max(worst, abs(Double(CPUKernels.exp(x)) - exact) / ulp)
            x += 0.0137
        }
        #expect(worst <= 2, "worst error \(worst) ulp")
        #expect(CPUKernels.exp(0) == 1 && CPUKernels.exp(-.infinity) < 1e-37 && CPUKernels.exp(-.infinity) >= 0)
    }

    @Test func avx2AndPortableKernelPathsAreBitIdentical() {
        var rng = SeededGenerator(seed: 34)
        let rows = 37, dim = 203, vocab = 301, heads = 3, headDim = 8
        let x = random(rows * dim, &rng, scale: 3), w = random(dim, &rng, offset: 1), dy = random(rows * dim, &rng)
        let logits = random(rows * vocab, &rng, scale: 30)
        let targets: [Int32] = (0..<rows).map { _ in Int32(rng.next() % UInt64(vocab)) }
        let q = random(rows * heads * headDim, &rng, scale: 3), k = random(q.count, &rng, scale: 3), v = random(q.count, &rng)
        func run(_ cpu: CPUBackend) -> [[Float]] {
            var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: dim)
            cpu.rmsNormBackward(dy, x: x, weight: w, dx: &dx, dWeight: &dw, rows: rows, dim: dim, eps: 1e-5, accumulate: false)
            var dg = dx, du = dx
            cpu.swigluBackward(dy, gate: x, up: x, dGate: &dg, dUp: &du, count: x.count)
            var g = [Float](repeating: 0, count: logits.count)
            let loss = cpu.crossEntropy(logits: logits, targets: targets, dLogits: &g, rows: rows, vocab: vocab, gradScale: 0.1)
            var out = [Float](repeating: 0, count: q.count), lse = [Float](repeating: 0, count: rows * heads)
            cpu.attentionTraining(q: q, k: k, v: v, out: &out, logsumexp: &lse, documents: nil, rows: rows, heads: heads,
                                  kvHeads: heads, headDim: headDim, scale: 0.4)
            var dq = out, dk = out, dv = out
            cpu.attentionBackward(dOut: v, q: q, k: k, v: v, out: out, logsumexp: lse, dq: &dq, dk: &dk, dv: &dv, documents: nil,
                                  rows: rows, heads: heads, kvHeads: heads, headDim: headDim, scale: 0.4)
            return [dx, dw, dg, du, g, [Float(loss.sum)], out, lse, dq, dk, dv]
        }
        let portable = run(CPUBackend(threads: 2, kernels: .scalar))
        let automatic = run(CPUBackend(threads: 2))
        #expect(portable == automatic, "paths differ (automatic path: \(FourBitKernels.path))")
    }

    @Test func rowReductionsDoNotDependOnTheThreadCount() {
        var rng = SeededGenerator(seed: 33)
        let rows = 300, dim = 128, vocab = 500
        let x = random(rows * dim, &rng, scale: 3), w = random(dim, &rng, offset: 1), dy = random(rows * dim, &rng)
        let logits = random(rows * vocab, &rng, scale: 4)
        let targets: [Int32] = (0..<rows).map { _ in Int32(rng.next() % UInt64(vocab)) }
        var results: [([Float], [Float], Double, [Float])] = []
        for threads in [1, 2, 3] {
            let b = CPUBackend(threads: threads)
            var dx = [Float](repeating: 0, count: x.count), dw = [Float](repeating: 0, count: dim)
            b.rmsNormBackward(dy, x: x, weight: w, dx: &dx, dWeight: &dw, rows: rows, dim: dim, eps: 1e-5, accumulate: false)
            var g = [Float](repeating: 0, count: logits.count)
            let loss = b.crossEntropy(logits: logits, targets: targets, dLogits: &g, rows: rows, vocab: vocab, gradScale: 1 / 300)
            results.append((dx, dw, loss.sum, g))
        }
        _ = CPUBackend(threads: 2)  // restore OpenBLAS's thread count for the other suites
        for r in results.dropFirst() {
            #expect(r.0 == results[0].0 && r.1 == results[0].1 && r.2 == results[0].2 && r.3 == results[0].3)
        }
    }
}
