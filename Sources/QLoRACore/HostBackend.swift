import Foundation

/// The kernels of a backend whose tensors live in host memory (`HostStorage`), over contiguous row-major Float32
/// buffers: the same ops as `Backend` (Backend+Ops.swift), one level down. A host backend implements these and gets
/// every `Backend` op, with tensor handles resolved to pointers, from `HostBackend+Tensors.swift`.
///
/// Shapes use the legend: T tokens (rows), H model width, D head dim, nH query heads, nKV key/value
/// heads, S cached positions. Every op has a scalar version in `ReferenceBackend` (the definition) and a
/// fast one in `QLoRACPU.CPUBackend`; `BackendConformanceTests` checks them against each other.
public protocol HostBackend: Backend {
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

    /// `ys[i][m, n_i] = x[m, k] · dequant(ws[i])ᵀ` for several 4-bit weights that share one input (q/k/v, gate/up),
    /// overwriting each `ys[i]`: the values of one `linear` per weight, which a backend may run together (a decode
    /// step's small products in one thread dispatch).
    func linear(_ x: UnsafePointer<Float>, _ ws: [FourBitTensor], _ ys: [UnsafeMutablePointer<Float>], rows m: Int)

    /// A frozen dense matrix `w[rows, cols]` taken into the backend's own form for one-row products (a decode step's
    /// LM head), or nil when the backend has no better form than the matrix itself. `matrixVector` through it gives
    /// the values of `matmulTransposed` up to summation order.
    func makeResident(_ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int) -> (any ResidentMatrix)?

    /// `y[rows] = w · x[cols]` for a matrix this backend made resident.
    func matrixVector(_ w: any ResidentMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>)

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

    // MARK: Training: forward variants that save what backward needs, and the backward of every op.
    //
    // Gradients are `d`-prefixed and have the shape of what they differentiate. Determinism: every
    // reduction (over rows for weight gradients, over query heads for GQA key/value gradients, over
    // rows for the loss) runs in a fixed order that depends on neither thread timing nor thread count,
    // so a backend gives bit-identical results run after run (exact resume relies on it).

    /// Backward of `rmsNorm` for rows of width `dim`, with `n = x·rstd`, `rstd = 1/sqrt(mean(x²) + eps)`
    /// recomputed from `x[rows, dim]`: `dx = rstd · (dn − n · mean(dn ⊙ n))` with `dn = dy ⊙ weight`, written
    /// to `dx[rows, dim]` (added to it with `accumulate`, as a residual stream wants). When `dWeight[dim]`
    /// is given, `Σ_rows dy ⊙ n` is ADDED to it (frozen norms pass nil).
    func rmsNormBackward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                         dx: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
                         rows: Int, dim: Int, eps: Float, accumulate: Bool)

    /// Backward of `rope` in place on the gradient `dx[T, heads·D]`: the inverse rotation (the forward
    /// with `sin → −sin`), since each `(i, i+D/2)` pair turns by an orthogonal 2×2 rotation.
    func ropeBackward(_ dx: UnsafeMutablePointer<Float>, rows: Int, heads: Int, headDim: Int,
                      cos: UnsafePointer<Float>, sin: UnsafePointer<Float>)

    /// Causal self-attention over `T` tokens for training, optionally restricted to packed documents:
    /// `out[t, h·D..] = softmax_s(scale · q[t,h]·k[s,kvh] over visible s) · v[s,kvh]`, `kvh = h / (nH/nKV)`.
    /// Token `t` sees `s ≤ t` of its own document; `documents[T]`, when given, holds per-token ids and a
    /// document is a maximal run of equal consecutive ids (a packer writes documents contiguously, so ids
    /// need only differ between neighbours); nil means one document. `q[T, nH·D]`, `k`/`v` `[T, nKV·D]`,
    /// `out[T, nH·D]`. When `logsumexp[T, nH]` is given it receives `max + log(Σ exp(S − max))` of every
    /// score row, which is all `attentionBackward` needs to recompute `P` without storing `T×T` per head.
    func attentionTraining(q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                           out: UnsafeMutablePointer<Float>, logsumexp: UnsafeMutablePointer<Float>?,
                           documents: UnsafePointer<Int32>?, rows: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float)

    /// Backward of `attentionTraining` (same shapes, mask and `logsumexp`; `out` is its output). Per head:
    /// `P = exp(scale·q·kᵀ − lse)` on visible entries, `dV = Pᵀ·dO`, `dP = dO·Vᵀ`,
    /// `dS = P ⊙ (dP − Δ)` with `Δ[t] = dO[t]·O[t]`, `dQ = scale · dS·K`, `dK = scale · dSᵀ·Q`.
    /// `dq[T, nH·D]`, `dk`/`dv` `[T, nKV·D]` are overwritten; a kv head's gradient is the sum over the query
    /// heads that share it, added in increasing head order.
    func attentionBackward(dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                           v: UnsafePointer<Float>, out: UnsafePointer<Float>, logsumexp: UnsafePointer<Float>,
                           dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                           documents: UnsafePointer<Int32>?, rows: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float)

    /// Backward of `swiglu`: `dGate = dOut ⊙ up ⊙ silu'(gate)`, `dUp = dOut ⊙ silu(gate)`, with
    /// `silu'(z) = σ(z)·(1 + z·(1 − σ(z)))`. Elementwise; `dGate` or `dUp` may alias `dOut`.
    func swigluBackward(_ dOut: UnsafePointer<Float>, gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                        dGate: UnsafeMutablePointer<Float>, dUp: UnsafeMutablePointer<Float>, count: Int)

    /// Fused softmax cross-entropy over `logits[rows, vocab]` with `targets[rows]` (`CrossEntropy.ignoreIndex` = -100: ignored):
    /// returns the sum of `logsumexp(z_t) − z_t[y_t]` over counted rows (in Double, added in row order) and
    /// the number of counted rows, so callers can take exact means over several micro-batches. When
    /// `dLogits[rows, vocab]` is given it receives `(softmax(z_t) − onehot(y_t)) · gradScale` for counted
    /// rows and 0 for ignored ones (pass `gradScale = 1/N` for a mean over N counted targets);
    /// `dLogits` may alias `logits`. Max-subtracted, so stable for any finite logits.
    func crossEntropy(logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>, dLogits: UnsafeMutablePointer<Float>?,
                      rows: Int, vocab: Int, gradScale: Float) -> (sum: Double, count: Int)

    // MARK: The small ops around the big ones (ElementwiseOps.swift: definitions and references side by side).
    //
    // Every touch of element memory in a training or decode step is a backend op, so a device backend never
    // has to bring activations or parameters back to the host between ops.

    /// Embedding lookup: `out[r, :] = table[ids[r], :]` for `rows` ids, rows of width `dim`. Ids are checked
    /// by the caller against the table's row count.
    func embedding(_ table: UnsafePointer<Float>, ids: UnsafePointer<Int32>, _ out: UnsafeMutablePointer<Float>, rows: Int, dim: Int)

    /// Backward of `embedding`: `dTable[ids[r], :] += dOut[r, :]`, rows added in increasing `r` (a repeated id
    /// sums its rows in that fixed order).
    func embeddingBackward(_ dOut: UnsafePointer<Float>, ids: UnsafePointer<Int32>, dTable: UnsafeMutablePointer<Float>,
                           rows: Int, dim: Int)

    /// `x[r, :] += bias` for each of `rows` rows of width `width` (Qwen2's q/k/v biases).
    func addBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, width: Int)

    /// `x[i] *= s` (LoRA's `alpha/r` scaling, gradient clipping).
    func scale(_ x: UnsafeMutablePointer<Float>, by s: Float, count: Int)

    /// Inverted dropout with a counter-based mask (`DropoutMask`): `dst[i] = src[i] · mask.scale` where element `i`
    /// is kept, else 0. `dst` may equal `src`. Every backend produces the same bits.
    func dropout(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, mask: DropoutMask)

    /// One AdamW update of a tensor of `count` elements: parameters `p`, gradient `g`, moments `m` and `v`, with the
    /// step's scalar factors (`AdamWStep.apply` is the per-element definition every backend uses).
    func adamW(_ p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
               v: UnsafeMutablePointer<Float>, count: Int, step: AdamWStep)

    /// `Σ x[i]²` accumulated in Double in index order (the exact same sum on every backend: a global gradient
    /// norm must not depend on the backend's thread split).
    func sumOfSquares(_ x: UnsafePointer<Float>, count: Int) -> Double
}

/// Conventions shared by the loss and its callers.
public enum CrossEntropy {
    /// The label value that `Backend.crossEntropy` skips (PyTorch's `ignore_index` default).
    public static let ignoreIndex: Int32 = -100
}

/// Packed-document masks: the first row of the document that each row belongs to, where a document is a
/// maximal run of equal consecutive ids (`[0, 0, 1, 1, 1, 0]` → `[0, 0, 2, 2, 2, 5]`); all zeros for nil.
public func documentStarts(_ documents: UnsafePointer<Int32>?, rows: Int) -> [Int] {
    var starts = [Int](repeating: 0, count: rows)
    guard let documents, rows > 1 else { return starts }
    for t in 1..<rows { starts[t] = documents[t] == documents[t - 1] ? starts[t - 1] : t }
    return starts
}

/// A matrix in a backend's own storage (see `Backend.makeResident`); only the backend that made it reads it.
public protocol ResidentMatrix: AnyObject, Sendable {
    var rows: Int { get }
    var cols: Int { get }
}
