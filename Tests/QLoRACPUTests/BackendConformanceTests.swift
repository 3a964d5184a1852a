import Testing
import QLoRABackends
import QLoRACore

/// Every op of every backend (`Backends.available`) agrees with its scalar reference on random inputs.
@Suite struct BackendConformanceTests {
    let reference = ReferenceBackend()
    /// Every host backend but the reference, from the factory: a new one is checked here without editing this suite
    /// (these are the kernels over host pointers; TensorConformanceTests checks every backend through its tensors).
    static let underTest = Backends.available(threads: 2).filter { $0.name != "reference" }.compactMap { $0.backend as? any HostBackend }

    private func random(_ n: Int, _ rng: inout SeededGenerator, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }

    private func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-4) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    @Test(arguments: [(1, 7, 5), (13, 33, 64), (64, 96, 576)])
    func matmulTransposedMatchesReference(m: Int, n: Int, k: Int) {
        for backend in Self.underTest {
            var rng = SeededGenerator(seed: UInt64(m * n * k))
            let a = random(m * k, &rng), b = random(n * k, &rng)
            var r = random(m * n, &rng), c = r
            reference.matmulTransposed(a, b, &r, m: m, n: n, k: k, accumulate: true)
            backend.matmulTransposed(a, b, &c, m: m, n: n, k: k, accumulate: true)
            #expect(close(c, r, tolerance: 1e-4))
            reference.matmulTransposed(a, b, &r, m: m, n: n, k: k, accumulate: false)
            backend.matmulTransposed(a, b, &c, m: m, n: n, k: k, accumulate: false)
            #expect(close(c, r, tolerance: 1e-4))
        }
    }

    @Test(arguments: [(1, 7, 5), (13, 33, 64), (64, 96, 70)])
    func matmulAndTransposedAMatchReference(m: Int, n: Int, k: Int) {
        for backend in Self.underTest {
            var rng = SeededGenerator(seed: UInt64(m * n + k))
            let a = random(m * k, &rng), b = random(k * n, &rng)
            for accumulate in [true, false] {
                var r = random(m * n, &rng), c = r
                reference.matmul(a, b, &r, m: m, n: n, k: k, accumulate: accumulate)
                backend.matmul(a, b, &c, m: m, n: n, k: k, accumulate: accumulate)
                #expect(close(c, r, tolerance: 1e-4))
                // a read as [k, m]: the same buffer, the other product.
                var rt = random(m * n, &rng), ct = rt
                reference.matmulTransposedA(a, b, &rt, m: m, n: n, k: k, accumulate: accumulate)
                backend.matmulTransposedA(a, b, &ct, m: m, n: n, k: k, accumulate: accumulate)
                #expect(close(ct, rt, tolerance: 1e-4))
            }
        }
    }

    @Test func normRopeSwigluAddMatchReference() {
        for backend in Self.underTest {
            var rng = SeededGenerator(seed: 11)
            let rows = 5, dim = 64, heads = 4, headDim = 16
            let x = random(rows * dim, &rng, scale: 3), w = random(dim, &rng)
            var r = [Float](repeating: 0, count: rows * dim), c = r
            reference.rmsNorm(x, weight: w, &r, rows: rows, dim: dim, eps: 1e-5)
            backend.rmsNorm(x, weight: w, &c, rows: rows, dim: dim, eps: 1e-5)
            #expect(close(c, r))
            let cosT = random(rows * headDim / 2, &rng), sinT = random(rows * headDim / 2, &rng)
            var xr = x, xc = x
            reference.rope(&xr, rows: rows, heads: heads, headDim: headDim, cos: cosT, sin: sinT)
            backend.rope(&xc, rows: rows, heads: heads, headDim: headDim, cos: cosT, sin: sinT)
            #expect(close(xc, xr))
            let up = random(rows * dim, &rng, scale: 2)
            reference.swiglu(gate: x, up: up, &r, count: x.count)
            backend.swiglu(gate: x, up: up, &c, count: x.count)
            #expect(close(c, r))
            var ar = x, ac = x
            reference.add(&ar, up, count: x.count)
            backend.add(&ac, up, count: x.count)
            #expect(ac == ar)
        }
    }

    @Test(arguments: [(0, 6), (5, 1), (3, 4)])
    func causalGQAAttentionMatchesReference(start: Int, rows: Int) {
        for backend in Self.underTest {
            var rng = SeededGenerator(seed: UInt64(start * 10 + rows))
            let heads = 6, kvHeads = 2, headDim = 8
            let q = random(rows * heads * headDim, &rng), k = random((start + rows) * kvHeads * headDim, &rng)
            let v = random((start + rows) * kvHeads * headDim, &rng)
            var r = [Float](repeating: 0, count: q.count), c = r
            reference.attention(q: q, k: k, v: v, out: &r, rows: rows, start: start, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: 0.35)
            backend.attention(q: q, k: k, v: v, out: &c, rows: rows, start: start, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: 0.35)
            #expect(close(c, r, tolerance: 1e-5))
        }
    }

    @Test func attentionOfOneKeyIsThatValue() {
        for backend in Self.underTest {
            // With a single visible key, softmax is 1 and the output is v (independent of q and scale).
            let q: [Float] = [1, 2, 3, 4], k: [Float] = [9, 9, 9, 9], v: [Float] = [0.5, -1, 2, 7]
            var out = [Float](repeating: 0, count: 4)
            backend.attention(q: q, k: k, v: v, out: &out, rows: 1, start: 0, heads: 1, kvHeads: 1, headDim: 4, scale: 3)
            #expect(out == v)
        }
    }
}
