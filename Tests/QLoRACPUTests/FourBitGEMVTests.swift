import Foundation
import Testing
import QLoRACore
import QLoRACPU

/// The fused 4-bit GEMV (qlk_gemv4, `FourBitKernels.gemv`, `CPUBackend.linear` with one row) against the scalar
/// dequantization and a double-precision dot product, its two kernel paths against each other, and thread counts.
@Suite(.serialized) struct FourBitGEMVTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let n: Int, k: Int, blocksize: Int, type: FourBitType, doubleQuant: Bool
        var testDescription: String { "\(n)x\(k) bs\(blocksize) \(type.rawValue)\(doubleQuant ? "+dq" : "")" }
    }

    // k not a multiple of the block size or of 8 or 16 or 32, rows starting off a byte or inside a block, a single
    // row, wide and tall matrices, SmolLM2's shapes.
    static let cases: [Case] = [
        Case(n: 7, k: 45, blocksize: 32, type: .nf4, doubleQuant: true),
        Case(n: 9, k: 33, blocksize: 32, type: .fp4, doubleQuant: false),
        Case(n: 1, k: 16, blocksize: 32, type: .nf4, doubleQuant: false),
        Case(n: 2, k: 31, blocksize: 64, type: .fp4, doubleQuant: true),
        Case(n: 4, k: 577, blocksize: 128, type: .nf4, doubleQuant: true),
        Case(n: 5, k: 1000, blocksize: 64, type: .nf4, doubleQuant: false),
        Case(n: 3, k: 80, blocksize: 32, type: .fp4, doubleQuant: true),
        Case(n: 130, k: 200, blocksize: 64, type: .nf4, doubleQuant: true),
        Case(n: 6, k: 4100, blocksize: 4096, type: .fp4, doubleQuant: false),
        Case(n: 192, k: 576, blocksize: 64, type: .nf4, doubleQuant: true),
        Case(n: 576, k: 1536, blocksize: 64, type: .nf4, doubleQuant: true),
        Case(n: 1536, k: 576, blocksize: 64, type: .fp4, doubleQuant: true),
    ]

    private static func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }

    private static func tensor(_ c: Case) -> FourBitTensor {
        FourBitQuantizer.quantize(random(c.n * c.k, seed: UInt64(c.n * 7919 + c.k), scale: 0.2), shape: [c.n, c.k],
                                  options: FourBitOptions(type: c.type, blocksize: c.blocksize, doubleQuant: c.doubleQuant))
    }

    private static func gemv(_ w: FourBitTensor, _ x: [Float], y0: [Float], accumulate: Bool, threads: Int,
                             pool: WorkerPool? = nil, path: KernelPath = .detected) -> [Float] {
        var y = y0
        x.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer {
                FourBitKernels.gemv(w, xb.baseAddress!, $0.baseAddress!, accumulate: accumulate, threads: threads, pool: pool,
                                    path: path)
            }
        }
        return y
    }

    @Test(arguments: cases)
    func matchesTheScalarDequantizationInDoublePrecision(_ c: Case) {
        let w = Self.tensor(c)
        let dense = FourBitQuantizer.dequantizeReference(w)
        let x = Self.random(c.k, seed: 5)
        let y0 = Self.random(c.n, seed: 6)
        for accumulate in [false, true] {
            let y = Self.gemv(w, x, y0: y0, accumulate: accumulate, threads: 2)
            for r in 0..<c.n {
                var exact = accumulate ? Double(y0[r]) : 0, magnitude = accumulate ? abs(Double(y0[r])) : 0
                for j in 0..<c.k {
                    let p = Double(dense[r * c.k + j]) * Double(x[j])
                    exact += p
                    magnitude += abs(p)
                }
                #expect(abs(Double(y[r]) - exact) <= 1e-5 * magnitude, "row \(r): \(y[r]) vs \(exact) (Σ|w·x| \(magnitude))")
            }
        }
    }

    @Test(.enabled(if: FourBitKernels.path == "avx2", "this CPU has no AVX2+FMA: one path only"), arguments: cases)
    func avx2AndPortablePathsAreBitIdentical(_ c: Case) {
        let w = Self.tensor(c)
        let x = Self.random(c.k, seed: 7), y0 = Self.random(c.n, seed: 8)
        for accumulate in [false, true] {
            let fast = Self.gemv(w, x, y0: y0, accumulate: accumulate, threads: 2, path: .avx2)
            let portable = Self.gemv(w, x, y0: y0, accumulate: accumulate, threads: 2, path: .scalar)
            #expect(fast.map(\.bitPattern) == portable.map(\.bitPattern))
        }
    }

    @Test func resultsDoNotDependOnTheThreadCount() {
        let c = Case(n: 1536, k: 576, blocksize: 64, type: .nf4, doubleQuant: true)
        let w = Self.tensor(c)
        let x = Self.random(c.k, seed: 9), y0 = [Float](repeating: 0, count: c.n)
        let one = Self.gemv(w, x, y0: y0, accumulate: false, threads: 1).map(\.bitPattern)
        for threads in [2, 3, 8] {
            #expect(Self.gemv(w, x, y0: y0, accumulate: false, threads: threads).map(\.bitPattern) == one)
            let pool = WorkerPool(threads: threads)
            for _ in 0..<3 {
                #expect(Self.gemv(w, x, y0: y0, accumulate: false, threads: threads, pool: pool).map(\.bitPattern) == one)
            }
        }
    }

    @Test func backendLinearWithOneRowUsesTheGEMVAndMatchesTheReferenceBackend() {
        let c = Case(n: 192, k: 576, blocksize: 64, type: .nf4, doubleQuant: true)
        let w = Self.tensor(c)
        let x = Self.random(c.k, seed: 10), y0 = Self.random(c.n, seed: 11)
        for accumulate in [false, true] {
            var fast = y0, slow = y0
            CPUBackend(threads: 2).linear(x, w, &fast, rows: 1, accumulate: accumulate)
            ReferenceBackend().linear(x, w, &slow, rows: 1, accumulate: accumulate)
            #expect(zip(fast, slow).allSatisfy { abs($0 - $1) <= 1e-4 * max(1, abs($1)) })
            #expect(fast.map(\.bitPattern) == Self.gemv(w, x, y0: y0, accumulate: accumulate, threads: 1).map(\.bitPattern))
        }
    }

    @Test func decodeAttentionMatchesTheReference() {
        let heads = 6, kvHeads = 2, d = 40, start = 37, total = start + 1
        let q = Self.random(heads * d, seed: 12), k = Self.random(total * kvHeads * d, seed: 13)
        let v = Self.random(total * kvHeads * d, seed: 14)
        var fast = [Float](repeating: 0, count: heads * d), slow = fast
        CPUBackend(threads: 2).attention(q: q, k: k, v: v, out: &fast, rows: 1, start: start, heads: heads, kvHeads: kvHeads,
                                         headDim: d, scale: 0.3)
        ReferenceBackend().attention(q: q, k: k, v: v, out: &slow, rows: 1, start: start, heads: heads, kvHeads: kvHeads,
                                     headDim: d, scale: 0.3)
        #expect(zip(fast, slow).allSatisfy { abs($0 - $1) <= 1e-5 })
    }

    /// Q8_0-shaped data (fp16-like scale × int8, the largest |q| = 127 in every block): the exact copy exists and its
    /// GEMV matches the fp32 matrix; data not of that form gets no copy.
    @Test func blockInt8CopyIsExactAndItsGEMVMatches() throws {
        let rows = 67, cols = 96
        var rng = SeededGenerator(seed: 15)
        var w = [Float](repeating: 0, count: rows * cols)
        for b in 0..<(rows * cols / 32) {
            let d = Float(Float16(Float(rng.next() % 1000 + 1) / 37_000))
            let top = Int(rng.next() % 32)
            for i in 0..<32 {
                let q = i == top ? (rng.next() % 2 == 0 ? 127 : -127) : Int(rng.next() % 255) - 127
                w[32 * b + i] = d * Float(q)
            }
        }
        let copy = try #require(w.withUnsafeBufferPointer { BlockInt8Matrix.exact($0, rows: rows, cols: cols) })
        #expect(copy.bytes == rows * cols + 4 * rows * cols / 32)
        let x = Self.random(cols, seed: 16)
        var y = [Float](repeating: 0, count: rows)
        copy.gemv(x, &y, threads: 2)
        for r in 0..<rows {
            var exact = 0.0, magnitude = 0.0
            for j in 0..<cols {
                exact += Double(w[r * cols + j]) * Double(x[j])
                magnitude += abs(Double(w[r * cols + j]) * Double(x[j]))
            }
            #expect(abs(Double(y[r]) - exact) <= 1e-5 * magnitude)
        }
        if FourBitKernels.path == "avx2" {
            var portable = [Float](repeating: 0, count: rows)
            copy.gemv(x, &portable, threads: 1, path: .scalar)
            #expect(portable.map(\.bitPattern) == y.map(\.bitPattern))
        }
        var other = w
        other[5] = other[5].nextUp
        #expect(other.withUnsafeBufferPointer { BlockInt8Matrix.exact($0, rows: rows, cols: cols) } == nil)
        #expect(Self.random(64, seed: 17).withUnsafeBufferPointer { BlockInt8Matrix.exact($0, rows: 2, cols: 32) } == nil)
    }
}
