import Foundation

/// The compute operations a LLaMA forward pass needs, over contiguous row-major Float32 buffers.
///
/// Shapes use the legend: T tokens (rows), H model width, D head dim, nH query heads, nKV key/value
/// heads, S cached positions. Every op has a scalar version in `ReferenceBackend` (the definition) and a
/// fast one in `QLoRACPU.CPUBackend`; `BackendConformanceTests` checks them against each other.
public protocol Backend: Sendable {
    /// `c[m, n] = a[m, k] · b[n, k]ᵀ` (the linear layer `y = x Wᵀ` with `W` in HF `[out, in]` layout);
    /// with `accumulate`, adds to `c` instead of overwriting it.
    func matmulTransposed(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                          m: Int, n: Int, k: Int, accumulate: Bool)

    /// `c[m, n] = a[m, k] · b[k, n]` (the input gradient of a linear layer, `dx = dy · W`); with
    /// `accumulate`, adds to `c`.
    func matmul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                m: Int, n: Int, k: Int, accumulate: Bool)

    /// `c[m, n] = a[k, m]ᵀ · b[k, n]` (the weight gradient of a linear layer, `dW = dyᵀ · x`); with
    /// `accumulate`, adds to `c`.
    func matmulTransposedA(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                           m: Int, n: Int, k: Int, accumulate: Bool)

    /// `y[m, n] = x[m, k] · dequant(w)ᵀ` for a 4-bit weight `w` of shape `[n, k]` (a frozen QLoRA base linear);
    /// with `accumulate`, adds to `y`. The whole dequantized matrix is never materialized by fast backends.
    func linear(_ x: UnsafePointer<Float>, _ w: FourBitTensor, _ y: UnsafeMutablePointer<Float>, rows m: Int, accumulate: Bool)

    /// `dx[m, k] = dy[m, n] · dequant(w)` for a 4-bit weight `w` of shape `[n, k]` (the input gradient through a
    /// frozen base linear); with `accumulate`, adds to `dx`.
    func linearBackwardInput(_ dy: UnsafePointer<Float>, _ w: FourBitTensor, _ dx: UnsafeMutablePointer<Float>, rows m: Int,
                             accumulate: Bool)

    /// Per row of width `dim`: `out = weight ⊙ x / sqrt(mean(x²) + eps)` (LLaMA RMSNorm, fp32).
    func rmsNorm(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                 rows: Int, dim: Int, eps: Float)

    /// Rotary embedding in place on `x[T, heads·D]`, HF rotate-half convention: for each head and i < D/2,
    /// `(x_i, x_{i+D/2})` rotates by the angle whose cos/sin are `cos[t·D/2 + i]`, `sin[t·D/2 + i]`.
    func rope(_ x: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int,
              cos: UnsafePointer<Float>, sin: UnsafePointer<Float>)

    /// Causal grouped-query attention for `T` new queries at positions `start ..< start+T` over a cache of
    /// `start+T` keys/values: `out[t, h·D..] = softmax(q·kᵀ·scale + causal mask) · v`, query head `h`
    /// reading kv head `h / (nH/nKV)`. `q[T, nH·D]`, `k`/`v` `[S, nKV·D]` with S ≥ start+T, `out[T, nH·D]`.
    func attention(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                   rows: Int, start: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float)

    /// SwiGLU: `out[i] = silu(gate[i]) · up[i]`, `silu(z) = z·σ(z)`.
    func swiglu(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, count: Int)

    /// `x[i] += y[i]` (residual connections).
    func add(_ x: UnsafeMutablePointer<Float>, _ y: UnsafePointer<Float>, count: Int)
}

/// Scalar definitions of every op: slow, obviously correct, and the yardstick for faster backends.
public struct ReferenceBackend: Backend {
    public init() {}

    public func matmulTransposed(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                 m: Int, n: Int, k: Int, accumulate: Bool) {
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k { s += a[i * k + p] * b[j * k + p] }
                c[i * n + j] = accumulate ? c[i * n + j] + s : s
            }
        }
    }

    public func matmul(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                       m: Int, n: Int, k: Int, accumulate: Bool) {
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
                c[i * n + j] = accumulate ? c[i * n + j] + s : s
            }
        }
    }

    public func matmulTransposedA(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                                  m: Int, n: Int, k: Int, accumulate: Bool) {
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k { s += a[p * m + i] * b[p * n + j] }
                c[i * n + j] = accumulate ? c[i * n + j] + s : s
            }
        }
    }

    public func linear(_ x: UnsafePointer<Float>, _ w: FourBitTensor, _ y: UnsafeMutablePointer<Float>, rows m: Int,
                       accumulate: Bool) {
        let (n, k) = w.matrixShape
        let dense = FourBitQuantizer.dequantizeReference(w)
        matmulTransposed(x, dense, y, m: m, n: n, k: k, accumulate: accumulate)
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
        var scores = [Float](repeating: 0, count: start + rows)
        for t in 0..<rows {
            let visible = start + t + 1
            for h in 0..<heads {
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
