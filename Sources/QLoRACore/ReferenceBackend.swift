import Foundation

/// Scalar definitions of every op: obviously correct, and the yardstick for faster backends (the conformance
/// suites compare every backend with it, and `backend: reference` runs a whole pipeline on it).
///
/// The definitions are plain loops. Two liberties make a pipeline on a real model finish in minutes rather than
/// hours, neither of which changes what is computed: independent outputs (rows of a product, attention heads)
/// are spread over `threads`, each computed whole by one thread, so results never depend on the split; and a
/// dot product accumulates in 8 lanes (`dot`), so it vectorizes while its rounding stays fixed.
public struct ReferenceBackend: HostBackend {
    public let threads: Int

    public init(threads: Int = 1) { self.threads = max(1, threads) }

    /// `Σ_p a[p]·b[p]` over `k` elements: element `p` is added to lane `p % 8` in increasing `p`, then the lanes are
    /// combined as `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ k: Int) -> Float {
        var acc = SIMD8<Float>(repeating: 0)
        var p = 0
        while p + 8 <= k {
            acc += UnsafeRawPointer(a + p).loadUnaligned(as: SIMD8<Float>.self) * UnsafeRawPointer(b + p).loadUnaligned(as: SIMD8<Float>.self)
            p += 8
        }
        while p < k {
            acc[p % 8] += a[p] * b[p]
            p += 1
        }
        return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))
    }

    /// Runs `body` over `0..<count` split into `threads` contiguous ranges.
    func split(_ count: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forEachRange(count, parts: count >= 4 ? threads : 1, body)
    }

    /// `c[i, j] = Σ_p a[i, p]·b[j, p]` (`dot`).
    public func matmulTransposed(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                 m: Int, n: Int, k: Int, accumulate: Bool) {
        func entry(_ i: Int, _ j: Int) {
            let s = Self.dot(a + i * k, b + j * k, k)
            c[i * n + j] = accumulate ? c[i * n + j] + s : s
        }
        // Rows of b stay in cache while every row of a passes by them.
        if m >= n {
            split(m) { rows in for j in 0..<n { for i in rows { entry(i, j) } } }
        } else {
            split(n) { columns in for j in columns { for i in 0..<m { entry(i, j) } } }
        }
    }

    /// `c[i, j] = Σ_p a[i, p]·b[p, j]`, `p` added in increasing order (one Float sum per entry).
    public func matmul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                       m: Int, n: Int, k: Int, accumulate: Bool) {
        rowSums(m: m, n: n, k: k, accumulate: accumulate, c) { i, p in a[i * k + p] } row: { p in b + p * n }
    }

    /// `c[i, j] = Σ_p a[p, i]·b[p, j]`, `p` added in increasing order.
    public func matmulTransposedA(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                  m: Int, n: Int, k: Int, accumulate: Bool) {
        rowSums(m: m, n: n, k: k, accumulate: accumulate, c) { i, p in a[p * m + i] } row: { p in b + p * n }
    }

    /// `c[i, :] (+)= Σ_p coefficient(i, p) · row(p)` with each entry summed over `p` in increasing order, rows of c
    /// in blocks of 8 so that each `row(p)` is read once per block.
    private func rowSums(m: Int, n: Int, k: Int, accumulate: Bool, _ c: UnsafeMutablePointer<Float>,
                         coefficient: (Int, Int) -> Float, row: (Int) -> UnsafePointer<Float>) {
        let block = 8
        split((m + block - 1) / block) { blocks in
            let sums = UnsafeMutablePointer<Float>.allocate(capacity: block * n)
            defer { sums.deallocate() }
            for bi in blocks {
                let i0 = bi * block, rows = min(block, m - i0)
                sums.update(repeating: 0, count: rows * n)
                for p in 0..<k {
                    let r = row(p)
                    for i in 0..<rows {
                        let x = coefficient(i0 + i, p), s = sums + i * n
                        for j in 0..<n { s[j] += x * r[j] }
                    }
                }
                for i in 0..<rows {
                    let out = c + (i0 + i) * n, s = sums + i * n
                    for j in 0..<n { out[j] = accumulate ? out[j] + s[j] : s[j] }
                }
            }
        }
    }

    /// The whole weight dequantized by `FourBitQuantizer.dequantizeReference`, then `matmulTransposed`.
    public func linear(_ x: UnsafePointer<Float>, _ w: FourBitTensor, _ y: UnsafeMutablePointer<Float>, rows m: Int,
                       accumulate: Bool) {
        let (n, k) = w.matrixShape
        let dense = FourBitQuantizer.dequantizeReference(w)
        matmulTransposed(x, dense, y, m: m, n: n, k: k, accumulate: accumulate)
    }

    /// One `linear` per weight.
    public func linear(_ x: UnsafePointer<Float>, _ ws: [FourBitTensor], _ ys: [UnsafeMutablePointer<Float>], rows m: Int) {
        for (w, y) in zip(ws, ys) { linear(x, w, y, rows: m, accumulate: false) }
    }

    /// The definition keeps matrices as they are.
    public func makeResident(_ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int) -> (any ResidentMatrix)? { nil }

    public func matrixVector(_ w: any ResidentMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        preconditionFailure("ReferenceBackend makes no resident matrices")
    }

    public func linearBackwardInput(_ dy: UnsafePointer<Float>, _ w: FourBitTensor, _ dx: UnsafeMutablePointer<Float>, rows m: Int,
                                    accumulate: Bool) {
        let (n, k) = w.matrixShape
        let dense = FourBitQuantizer.dequantizeReference(w)
        matmul(dy, dense, dx, m: m, n: k, k: n, accumulate: accumulate)
    }

    public func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                        rows: Int, dim: Int, eps: Float) {
        for r in 0..<rows {
            var ss: Float = 0
            for i in 0..<dim { ss += x[r * dim + i] * x[r * dim + i] }
            let inv = 1 / (ss / Float(dim) + eps).squareRoot()
            for i in 0..<dim { out[r * dim + i] = weight[i] * (x[r * dim + i] * inv) }
        }
    }

    public func rope(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int,
                     cos: UnsafePointer<Float>, sin: UnsafePointer<Float>) {
        let half = headDim / 2
        for t in 0..<rows {
            for h in 0..<heads {
                let base = (t * heads + h) * headDim
                for i in 0..<half {
                    let c = cos[t * half + i], s = sin[t * half + i]
                    let a = x[base + i], b = x[base + i + half]
                    x[base + i] = a * c - b * s
                    x[base + i + half] = b * c + a * s
                }
            }
        }
    }

    public func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                          rows: Int, start: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float) {
        let group = heads / kvHeads
        let qStride = heads * headDim, kvStride = kvHeads * headDim
        split(heads) { headRange in
            var scores = [Float](repeating: 0, count: start + rows)
            for t in 0..<rows {
                let visible = start + t + 1
                for h in headRange {
                    let kvh = h / group
                    var maxScore = -Float.infinity
                    for s in 0..<visible {
                        var dot: Float = 0
                        for d in 0..<headDim { dot += q[t * qStride + h * headDim + d] * k[s * kvStride + kvh * headDim + d] }
                        scores[s] = dot * scale
                        maxScore = max(maxScore, scores[s])
                    }
                    var sum: Float = 0
                    for s in 0..<visible {
                        scores[s] = (scores[s] - maxScore).expRef
                        sum += scores[s]
                    }
                    for d in 0..<headDim {
                        var acc: Float = 0
                        for s in 0..<visible { acc += scores[s] * v[s * kvStride + kvh * headDim + d] }
                        out[t * qStride + h * headDim + d] = acc / sum
                    }
                }
            }
        }
    }

    public func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let g = gate[i]
            out[i] = g / (1 + (-g).expRef) * up[i]
        }
    }

    public func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] += y[i] }
    }
}

extension Float {
    /// e^x computed in Double: the reference's exponential.
    var expRef: Float { Float(Foundation.exp(Double(self))) }
}
