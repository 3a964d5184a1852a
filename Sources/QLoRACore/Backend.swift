/// A compute backend: it owns its memory (tensors it allocates, uploads and downloads) and runs every op of a
/// training step and a decode step on that memory, so the model (Sources/QLoRAModel) never touches an element.
///
/// The ops' arithmetic is defined once, on host pointers, by `HostBackend` (HostBackend.swift, with the scalar
/// reference in ReferenceBackend.swift); here each op takes `Tensor` handles made by this backend, with the same
/// shapes (legend: T rows, H width, D head dim, nH/nKV heads, S cached positions) and the same rules for
/// accumulation, aliasing and determinism. A host backend gets all of this protocol from `HostBackend`'s extension
/// (HostBackend+Tensors.swift); a device backend implements it on its own memory.
///
/// Ops may run asynchronously: `download`, `sumOfSquares` and `crossEntropy` (which return values to the host)
/// wait for the work before them; `synchronize` waits for everything.
public protocol Backend: Sendable {
    // MARK: Memory

    /// Storage types this backend holds (an upload or allocation of another type is a programming error; the
    /// pipeline refuses a spec that asks for one, see BackendCapabilities.swift).
    var storageTypes: Set<TensorType> { get }

    /// A zero-filled tensor.
    func allocate(_ shape: [Int], _ type: TensorType) -> Tensor

    /// A writable f32 tensor holding `values`.
    func upload(_ values: [Float], shape: [Int]) -> Tensor

    /// A read-only f32 tensor holding `values` (a frozen weight): a host backend keeps the array itself, no copy.
    func upload(frozen values: [Float], shape: [Int]) -> Tensor

    /// An i32 tensor holding `values` (ids, targets, document ids).
    func upload(_ values: [Int32], shape: [Int]) -> Tensor

    /// A frozen 4-bit weight (`[out, in]`, type `.fourBit`), kept whole in the backend's form.
    func upload(_ weight: FourBitTensor) -> Tensor

    /// Writes host values into an existing f32 tensor (`values.count == t.count`).
    func write(_ values: UnsafeBufferPointer<Float>, into t: Tensor)

    /// The tensor's values as f32 (waits for pending work).
    func download(_ t: Tensor) -> [Float]

    /// Reads an f32 tensor into host memory (`into.count == t.count`; waits for pending work).
    func read(_ t: Tensor, into: UnsafeMutableBufferPointer<Float>)

    /// `dst = src` (same element count, both f32).
    func copy(_ src: Tensor, to dst: Tensor)

    /// `t = 0`.
    func zero(_ t: Tensor)

    /// Waits until every op issued so far has finished.
    func synchronize()

    // MARK: Products

    /// `c[m, n] = a[m, k] · b[n, k]ᵀ` (with `accumulate`, adds to `c`); `b` f32.
    func matmulTransposed(_ a: Tensor, _ b: Tensor, _ c: Tensor, m: Int, n: Int, k: Int, accumulate: Bool)
    /// `c[m, n] = a[m, k] · b[k, n]`.
    func matmul(_ a: Tensor, _ b: Tensor, _ c: Tensor, m: Int, n: Int, k: Int, accumulate: Bool)
    /// `c[m, n] = a[k, m]ᵀ · b[k, n]`.
    func matmulTransposedA(_ a: Tensor, _ b: Tensor, _ c: Tensor, m: Int, n: Int, k: Int, accumulate: Bool)

    /// A frozen linear layer `y[rows, out] = x[rows, in] · Wᵀ` for `w` `[out, in]` f32 or 4-bit (never dequantized
    /// whole); with `accumulate`, adds to `y`.
    func linear(_ x: Tensor, _ w: Tensor, _ y: Tensor, rows: Int, accumulate: Bool)

    /// `ys[i] = x · ws[i]ᵀ` for several frozen weights sharing one input (q/k/v, gate/up), overwriting each `ys[i]`:
    /// the values of one `linear` each, which a backend may run together (a decode step's GEMVs in one dispatch).
    func linear(_ x: Tensor, _ ws: [Tensor], _ ys: [Tensor], rows: Int)

    /// `dx[rows, in] = dy[rows, out] · W` through a frozen weight (f32 or 4-bit); with `accumulate`, adds to `dx`.
    func linearBackwardInput(_ dy: Tensor, _ w: Tensor, _ dx: Tensor, rows: Int, accumulate: Bool)

    /// A frozen f32 matrix `[rows, cols]` in the backend's own form for one-row products (the decode step's LM
    /// head), or nil when it has none better than the matrix.
    func makeResident(_ w: Tensor) -> (any ResidentMatrix)?

    /// `y[rows] = w · x[cols]` for a matrix this backend made resident.
    func matrixVector(_ w: any ResidentMatrix, _ x: Tensor, _ y: Tensor)

    // MARK: Forward ops (HostBackend.swift has each one's definition)

    func rmsNorm(_ x: Tensor, weight: Tensor, _ out: Tensor, rows: Int, dim: Int, eps: Float)
    func rope(_ x: Tensor, rows: Int, heads: Int, headDim: Int, cos: Tensor, sin: Tensor)
    /// Attention of `rows` new queries at positions `start ..< start+rows` over cached keys/values `[S, nKV·D]`.
    func attention(q: Tensor, k: Tensor, v: Tensor, out: Tensor, rows: Int, start: Int, heads: Int, kvHeads: Int, headDim: Int,
                   scale: Float)
    func swiglu(gate: Tensor, up: Tensor, _ out: Tensor, count: Int)
    func add(_ x: Tensor, _ y: Tensor, count: Int)

    // MARK: Training ops

    func rmsNormBackward(_ dy: Tensor, x: Tensor, weight: Tensor, dx: Tensor, dWeight: Tensor?, rows: Int, dim: Int, eps: Float,
                         accumulate: Bool)
    func ropeBackward(_ dx: Tensor, rows: Int, heads: Int, headDim: Int, cos: Tensor, sin: Tensor)
    func attentionTraining(q: Tensor, k: Tensor, v: Tensor, out: Tensor, logsumexp: Tensor?, documents: Tensor?, rows: Int,
                           heads: Int, kvHeads: Int, headDim: Int, scale: Float)
    func attentionBackward(dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, logsumexp: Tensor, dq: Tensor, dk: Tensor,
                           dv: Tensor, documents: Tensor?, rows: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float)
    func swigluBackward(_ dOut: Tensor, gate: Tensor, up: Tensor, dGate: Tensor, dUp: Tensor, count: Int)
    /// Summed loss (Double, row order) and counted rows; `targets` i32 `[rows]`.
    func crossEntropy(logits: Tensor, targets: Tensor, dLogits: Tensor?, rows: Int, vocab: Int, gradScale: Float) -> (sum: Double, count: Int)

    // MARK: The small ops (ElementwiseOps.swift)

    func embedding(_ table: Tensor, ids: Tensor, _ out: Tensor, rows: Int, dim: Int)
    func embeddingBackward(_ dOut: Tensor, ids: Tensor, dTable: Tensor, rows: Int, dim: Int)
    func addBias(_ x: Tensor, _ bias: Tensor, rows: Int, width: Int)
    func scale(_ x: Tensor, by s: Float, count: Int)
    func dropout(_ src: Tensor, _ dst: Tensor, count: Int, mask: DropoutMask)
    func adamW(_ p: Tensor, gradient g: Tensor, m: Tensor, v: Tensor, count: Int, step: AdamWStep)
    func sumOfSquares(_ x: Tensor, count: Int) -> Double
}

/// What a backend's GEMMs read: fp32 operands (every backend; the CPU's only mode), or bf16 copies of them with fp32
/// accumulation and fp32 results (the CUDA backend's default, as the QLoRA paper trains: `bnb_4bit_compute_dtype`
/// bfloat16). Only the products change; every other op computes in fp32 either way.
public enum ComputePrecision: String, Sendable, CaseIterable {
    case fp32, bf16
}

/// A backend whose tensors live in device memory reports it: what its allocations hold now and at most since the
/// last `resetDeviceMemoryPeak` (or since it was made). Host backends do not conform (their memory is the process's
/// RSS).
public protocol DeviceMemoryReporting {
    var deviceMemory: (inUse: Int, peak: Int) { get }
    func resetDeviceMemoryPeak()
}

/// A backend that pages AdamW's moments itself, between its device and host memory (the CUDA backend: pinned host
/// memory and a copy stream). The trainer's paged AdamW (Sources/QLoRATraining/AdamW.swift) uses it when the backend
/// has it, and `PagedFloatStore` (moments in a file-backed mapping, copied through the backend) otherwise.
public protocol MomentPaging {
    /// Zero moments (an m and a v) for tensors of `counts` elements, at most `budgetBytes` of them in device memory
    /// (nil: all of them).
    func makeMomentPager(counts: [Int], budgetBytes: Int?) -> any MomentPager
}

/// AdamW moments held by a `MomentPaging` backend. `update` runs `Backend.adamW` on every tensor, so a paged run
/// matches an unpaged one bit for bit: only where the moments live between updates differs.
public protocol MomentPager: AnyObject, Sendable {
    /// Elements per tensor.
    var counts: [Int] { get }
    /// Write-backs to host memory so far.
    var evictions: Int { get }
    /// One AdamW update of every `params[i]` with `gradients[i]` and tensor i's moments.
    func update(_ params: [Tensor], gradients: [Tensor], step: AdamWStep)
    /// Tensor `index`'s moments (for checkpoints).
    func moments(_ index: Int) -> (m: [Float], v: [Float])
    /// Overwrites tensor `index`'s moments (restoring a checkpoint).
    func setMoments(_ index: Int, m: [Float], v: [Float])
}
