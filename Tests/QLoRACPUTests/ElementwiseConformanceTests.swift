import Foundation
import Testing
import QLoRABackends
import QLoRACore

/// The small ops of a step on every available backend against `ReferenceBackend`: each is defined to give the
/// same bits everywhere (no reduction whose order a backend may choose), so the comparison is exact.
@Suite struct ElementwiseConformanceTests {
    static let backends = Backends.available(threads: 2)

    private func random(_ n: Int, _ rng: inout SeededGenerator, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * scale }
    }

    @Test func everyBackendIsListed() {
        #expect(Self.backends.map(\.name) == ["cpu", "reference"])
    }

    @Test(arguments: backends.map(\.name))
    func embeddingAndItsBackwardMatchReference(name: String) throws {
        let backend = try #require(Self.backends.first { $0.name == name }?.backend as? any HostBackend)
        var rng = SeededGenerator(seed: 1)
        let vocab = 11, dim = 37, rows = 9
        let table = random(vocab * dim, &rng)
        let ids: [Int32] = [3, 0, 10, 3, 7, 3, 1, 9, 0]
        var out = [Float](repeating: .nan, count: rows * dim), expected = out
        backend.embedding(table, ids: ids, &out, rows: rows, dim: dim)
        ReferenceBackend().embedding(table, ids: ids, &expected, rows: rows, dim: dim)
        #expect(out == expected)
        #expect(Array(out[(4 * dim)..<(5 * dim)]) == Array(table[(7 * dim)..<(8 * dim)]))

        let dOut = random(rows * dim, &rng)
        var dTable = random(vocab * dim, &rng), dExpected = dTable
        backend.embeddingBackward(dOut, ids: ids, dTable: &dTable, rows: rows, dim: dim)
        ReferenceBackend().embeddingBackward(dOut, ids: ids, dTable: &dExpected, rows: rows, dim: dim)
        #expect(dTable == dExpected)
    }

    @Test(arguments: backends.map(\.name))
    func biasScaleAndSumOfSquaresMatchReference(name: String) throws {
        let backend = try #require(Self.backends.first { $0.name == name }?.backend as? any HostBackend)
        var rng = SeededGenerator(seed: 2)
        let rows = 5, width = 67
        let bias = random(width, &rng)
        var x = random(rows * width, &rng), expected = x
        backend.addBias(&x, bias, rows: rows, width: width)
        ReferenceBackend().addBias(&expected, bias, rows: rows, width: width)
        #expect(x == expected)
        #expect(x[2 * width + 5] == expected[2 * width + 5])

        var big = random(200_001, &rng), bigExpected = big
        backend.scale(&big, by: 0.37, count: big.count)
        ReferenceBackend().scale(&bigExpected, by: 0.37, count: bigExpected.count)
        #expect(big == bigExpected)
        #expect(backend.sumOfSquares(big, count: big.count) == ReferenceBackend().sumOfSquares(big, count: big.count))
    }

    @Test(arguments: backends.map(\.name))
    func dropoutMatchesReferenceBitForBit(name: String) throws {
        let backend = try #require(Self.backends.first { $0.name == name }?.backend as? any HostBackend)
        var rng = SeededGenerator(seed: 3)
        let x = random(150_007, &rng)
        let mask = DropoutMask(probability: 0.1, key: 0x1234_5678_9ABC_DEF0)
        var out = [Float](repeating: .nan, count: x.count), expected = out
        backend.dropout(x, &out, count: x.count, mask: mask)
        ReferenceBackend().dropout(x, &expected, count: x.count, mask: mask)
        #expect(out == expected)
        let rate = Double(out.filter { $0 == 0 }.count) / Double(out.count)
        #expect(abs(rate - 0.1) < 0.005)
    }

    @Test(arguments: backends.map(\.name))
    func adamWMatchesReferenceBitForBit(name: String) throws {
        let backend = try #require(Self.backends.first { $0.name == name }?.backend as? any HostBackend)
        var rng = SeededGenerator(seed: 4)
        let n = 100_003
        var p = random(n, &rng), m = random(n, &rng, scale: 0.01), v = random(n, &rng, scale: 0.01).map { $0 * $0 }
        var (pr, mr, vr) = (p, m, v)
        for t in 1...3 {
            let g = random(n, &rng)
            let step = AdamWStep(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, t: t)
            backend.adamW(&p, gradient: g, m: &m, v: &v, count: n, step: step)
            ReferenceBackend().adamW(&pr, gradient: g, m: &mr, v: &vr, count: n, step: step)
        }
        #expect(p == pr && m == mr && v == vr)
    }

    /// The reference's products do not depend on how many threads compute them.
    @Test func referenceProductsDoNotDependOnTheThreadCount() {
        var rng = SeededGenerator(seed: 5)
        let m = 19, n = 23, k = 45
        let a = random(m * k, &rng), b = random(n * k, &rng), bn = random(k * n, &rng), at = random(k * m, &rng)
        func products(_ backend: ReferenceBackend) -> [[Float]] {
            var c1 = [Float](repeating: 0, count: m * n), c2 = c1, c3 = c1
            backend.matmulTransposed(a, b, &c1, m: m, n: n, k: k, accumulate: false)
            backend.matmul(a, bn, &c2, m: m, n: n, k: k, accumulate: false)
            backend.matmulTransposedA(at, bn, &c3, m: m, n: n, k: k, accumulate: false)
            return [c1, c2, c3]
        }
        #expect(products(ReferenceBackend(threads: 1)) == products(ReferenceBackend(threads: 3)))
    }
}
