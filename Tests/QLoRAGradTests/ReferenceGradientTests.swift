import Foundation
import Testing
import QLoRACore

/// Finite-difference checks of every reference backward.
///
/// Each op's output `y` is reduced to a scalar `L = Σ r ⊙ y` with fixed random `r` (summed in Double), so
/// `∂L/∂y = r` is what the backward receives. Central differences `(L(x+h) − L(x−h)) / 2h` use `h = 1e-2`
/// on inputs of size O(1): truncation error `h²/6 · L'''` is ~1e-5, and the Float rounding of `y`
/// (~6e-8 relative, ~1e-6 on `L`) becomes ~5e-5 after dividing by `2h`. The tolerance, `2e-3 · max(1, |g|∞)`
/// on every element, is far below the O(1) error any wrong formula makes.
@Suite struct ReferenceGradientTests {
    let ref = ReferenceBackend()
    static let h: Float = 1e-2
    static let tolerance: Float = 2e-3

    /// Compares `analytic` with central differences of `loss` in every coordinate of `input`.
    private func expectMatchesFiniteDifferences(_ input: [Float], _ analytic: [Float], _ what: String,
                                                loss: ([Float]) -> Double) {
        #expect(input.count == analytic.count)
        let scale = max(1, analytic.map(abs).max() ?? 0)
        var worst: Float = 0, at = -1
        var x = input
        for i in 0..<input.count {
            x[i] = input[i] + Self.h
            let plus = loss(x)
            x[i] = input[i] - Self.h
            let minus = loss(x)
            x[i] = input[i]
            let fd = Float((plus - minus) / Double(2 * Self.h))
            let err = abs(fd - analytic[i])
            if err > worst { worst = err; at = i }
        }
        #expect(worst <= Self.tolerance * scale, "\(what): worst |fd − analytic| = \(worst) at \(at), scale \(scale)")
    }

    private func weighted(_ y: [Float], _ r: [Float]) -> Double {
        zip(y, r).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    @Test func rmsNormBackwardMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 1)
        let rows = 3, dim = 16, eps: Float = 1e-5
        let x = random(rows * dim, &rng, scale: 2), w = random(dim, &rng, offset: 1), r = random(rows * dim, &rng)
        func forward(_ x: [Float], _ w: [Float]) -> Double {
            var y = [Float](repeating: 0, count: rows * dim)
            ref.rmsNorm(x, weight: w, &y, rows: rows, dim: dim, eps: eps)
            return weighted(y, r)
        }
        var dx = random(rows * dim, &rng), dw = random(dim, &rng)
        let dx0 = dx, dw0 = dw
        ref.rmsNormBackward(r, x: x, weight: w, dx: &dx, dWeight: &dw, rows: rows, dim: dim, eps: eps, accumulate: true)
        expectMatchesFiniteDifferences(x, zip(dx, dx0).map { $0 - $1 }, "dx") { forward($0, w) }
        expectMatchesFiniteDifferences(w, zip(dw, dw0).map { $0 - $1 }, "dWeight") { forward(x, $0) }
        // Without accumulate, dx is overwritten with the same values.
        var fresh = dx0
        ref.rmsNormBackward(r, x: x, weight: w, dx: &fresh, dWeight: nil, rows: rows, dim: dim, eps: eps, accumulate: false)
        #expect(zip(fresh, zip(dx, dx0)).allSatisfy { abs($0 - ($1.0 - $1.1)) <= 1e-5 })
    }

    @Test func ropeBackwardMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 2)
        let rows = 3, heads = 2, headDim = 8, half = headDim / 2
        let angles = random(rows * half, &rng, scale: 3)
        let cosT = angles.map { Foundation.cos($0) }, sinT = angles.map { Foundation.sin($0) }
        let x = random(rows * heads * headDim, &rng), r = random(x.count, &rng)
        var g = r
        ref.ropeBackward(&g, rows: rows, heads: heads, headDim: headDim, cos: cosT, sin: sinT)
        expectMatchesFiniteDifferences(x, g, "dx") { x in
            var y = x
            ref.rope(&y, rows: rows, heads: heads, headDim: headDim, cos: cosT, sin: sinT)
            return weighted(y, r)
        }
        // Backward after forward is the identity (the rotation is orthogonal).
        var y = x
        ref.rope(&y, rows: rows, heads: heads, headDim: headDim, cos: cosT, sin: sinT)
        ref.ropeBackward(&y, rows: rows, heads: heads, headDim: headDim, cos: cosT, sin: sinT)
        #expect(zip(y, x).allSatisfy { abs($0 - $1) <= 1e-6 })
    }

    @Test(arguments: [nil, [0, 0, 0, 1, 1, 5, 5, 5, 5] as [Int32]])
    func attentionBackwardMatchesFiniteDifferences(documents: [Int32]?) {
        var rng = SeededGenerator(seed: 3)
        let rows = 9, heads = 4, kvHeads = 2, headDim = 4, scale: Float = 0.5
        let q = random(rows * heads * headDim, &rng), k = random(rows * kvHeads * headDim, &rng)
        let v = random(rows * kvHeads * headDim, &rng), r = random(q.count, &rng)
        func forward(_ q: [Float], _ k: [Float], _ v: [Float], lse: UnsafeMutablePointer<Float>? = nil) -> [Float] {
            var out = [Float](repeating: 0, count: q.count)
            withOptionalPointer(documents) { docs in
                ref.attentionTraining(q: q, k: k, v: v, out: &out, logsumexp: lse, documents: docs, rows: rows,
                                      heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale)
            }
            return out
        }
        var lse = [Float](repeating: 0, count: rows * heads)
        let out = lse.withUnsafeMutableBufferPointer { forward(q, k, v, lse: $0.baseAddress!) }
        var dq = [Float](repeating: 9, count: q.count), dk = [Float](repeating: 9, count: k.count), dv = dk
        withOptionalPointer(documents) { docs in
            ref.attentionBackward(dOut: r, q: q, k: k, v: v, out: out, logsumexp: lse, dq: &dq, dk: &dk, dv: &dv,
                                  documents: docs, rows: rows, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale)
        }
        expectMatchesFiniteDifferences(q, dq, "dq") { weighted(forward($0, k, v), r) }
        expectMatchesFiniteDifferences(k, dk, "dk") { weighted(forward(q, $0, v), r) }
        expectMatchesFiniteDifferences(v, dv, "dv") { weighted(forward(q, k, $0), r) }
    }

    @Test func swigluBackwardMatchesFiniteDifferences() {
        var rng = SeededGenerator(seed: 4)
        let n = 40
        let gate = random(n, &rng, scale: 4), up = random(n, &rng, scale: 2), r = random(n, &rng)
        func forward(_ g: [Float], _ u: [Float]) -> Double {
            var y = [Float](repeating: 0, count: n)
            ref.swiglu(gate: g, up: u, &y, count: n)
            return weighted(y, r)
        }
        var dg = [Float](repeating: 0, count: n), du = dg
        ref.swigluBackward(r, gate: gate, up: up, dGate: &dg, dUp: &du, count: n)
        expectMatchesFiniteDifferences(gate, dg, "dGate") { forward($0, up) }
        expectMatchesFiniteDifferences(up, du, "dUp") { forward(gate, $0) }
    }

    @Test func crossEntropyGradientMatchesFiniteDifferencesAndSkipsIgnoredRows() {
        var rng = SeededGenerator(seed: 5)
        let rows = 5, vocab = 11
        let logits = random(rows * vocab, &rng, scale: 5)
        let targets: [Int32] = [3, CrossEntropy.ignoreIndex, 0, 10, CrossEntropy.ignoreIndex]
        var grad = [Float](repeating: 7, count: logits.count)
        let (sum, count) = ref.crossEntropy(logits: logits, targets: targets, dLogits: &grad, rows: rows, vocab: vocab, gradScale: 1)
        #expect(count == 3)
        expectMatchesFiniteDifferences(logits, grad, "dLogits") { z in
            ref.crossEntropy(logits: z, targets: targets, dLogits: nil, rows: rows, vocab: vocab, gradScale: 1).sum
        }
        #expect(grad[vocab..<(2 * vocab)].allSatisfy { $0 == 0 } && grad[(4 * vocab)...].allSatisfy { $0 == 0 })
        // The loss of a row is −log softmax at the target, independently computed here in Double.
        var expected = 0.0
        for (row, y) in targets.enumerated() where y != CrossEntropy.ignoreIndex {
            let z = logits[(row * vocab)..<((row + 1) * vocab)].map(Double.init)
            expected += Foundation.log(z.map { Foundation.exp($0) }.reduce(0, +)) - z[Int(y)]
        }
        #expect(abs(sum - expected) <= 1e-9 * abs(expected))
        // gradScale scales the gradient only; each counted row's gradient sums to zero.
        var half = grad
        _ = ref.crossEntropy(logits: logits, targets: targets, dLogits: &half, rows: rows, vocab: vocab, gradScale: 0.5)
        #expect(zip(half, grad).allSatisfy { abs($0 - $1 / 2) <= 1e-7 })
        #expect(abs(grad[0..<vocab].reduce(0, +)) <= 1e-6)
    }

    @Test func crossEntropyIsStableForHugeLogits() {
        let logits: [Float] = [1e30, -1e30, 0, 88, 89, 90]
        var grad = [Float](repeating: 0, count: 6)
        let (sum, count) = ref.crossEntropy(logits: logits, targets: [0, 2], dLogits: &grad, rows: 2, vocab: 3, gradScale: 1)
        #expect(count == 2 && sum.isFinite && grad.allSatisfy(\.isFinite))
        #expect(abs(sum - Foundation.log(1 + Foundation.exp(-1.0) + Foundation.exp(-2.0))) <= 1e-6)
    }
}

func random(_ n: Int, _ rng: inout SeededGenerator, scale: Float = 1, offset: Float = 0) -> [Float] {
    (0..<n).map { _ in offset + (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
}

func withOptionalPointer<R>(_ a: [Int32]?, _ body: (UnsafePointer<Int32>?) -> R) -> R {
    guard let a else { return body(nil) }
    return a.withUnsafeBufferPointer { body($0.baseAddress!) }
}
