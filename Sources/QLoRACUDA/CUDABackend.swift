import CCUDA
import Foundation
import QLoRACore

/// Device memory for one tensor; freed (cuMemFree) when the last handle goes.
final class CUDAStorage: TensorStorage, @unchecked Sendable {
    let context: CUDAContext
    let pointer: qlora_CUdeviceptr
    let capacity: Int
    let elementBytes: Int
    /// Under bf16 compute, a frozen fp32 matrix's bf16 copy, made once at upload: what its GEMMs read (the LM head is
    /// read by every chunk of rows; rounding it on each read would cost a pass over it every time).
    var bf16Shadow: CUDAStorage?

    init(context: CUDAContext, capacity: Int, elementBytes: Int) {
        self.context = context
        self.capacity = capacity
        self.elementBytes = elementBytes
        pointer = context.allocate(bytes: capacity * elementBytes)
    }

    deinit { context.free(pointer, bytes: capacity * elementBytes) }
}

/// A frozen 4-bit weight on the device: codes, codebook and quant state (plain or double-quantized scales).
final class CUDAFourBitStorage: TensorStorage, @unchecked Sendable {
    let capacity: Int
    let rows: Int, cols: Int, blocksize: Int
    let packed: CUDAStorage, codebook: CUDAStorage
    let scales: CUDAStorage?
    let nestedCodes: CUDAStorage?, nestedAbsmax: CUDAStorage?, nestedMap: CUDAStorage?
    let nestedOffset: Float, nestedBlocksize: Int

    init(context: CUDAContext, weight w: FourBitTensor) {
        func put<T>(_ values: [T]) -> CUDAStorage {
            let s = CUDAStorage(context: context, capacity: values.count, elementBytes: MemoryLayout<T>.stride)
            values.withUnsafeBytes { context.upload($0, to: s.pointer) }
            return s
        }
        capacity = w.count
        (rows, cols) = w.matrixShape
        blocksize = w.blocksize
        packed = put(w.packed)
        codebook = put(w.type.codebook)
        switch w.scales {
        case .plain(let absmax):
            scales = put(absmax)
            nestedCodes = nil; nestedAbsmax = nil; nestedMap = nil
            nestedOffset = 0; nestedBlocksize = 1
        case .nested(let n):
            scales = nil
            nestedCodes = put(n.codes); nestedAbsmax = put(n.absmax); nestedMap = put(n.map)
            nestedOffset = n.offset; nestedBlocksize = n.blocksize
        }
    }

    /// The quant-state arguments every 4-bit kernel takes, in order.
    var arguments: [CUDAContext.Argument] {
        [.pointer(packed.pointer), .pointer(codebook.pointer), .pointer(scales?.pointer ?? 0), .pointer(nestedCodes?.pointer ?? 0),
         .pointer(nestedAbsmax?.pointer ?? 0), .pointer(nestedMap?.pointer ?? 0), .f32(nestedOffset), .i64(nestedBlocksize),
         .i64(blocksize)]
    }
}

/// The CUDA backend: every op of `Backend` on device memory, on one stream, with the kernels of Kernels/ and cuBLASLt
/// GEMMs. `precision` is what the GEMMs read: bf16 (the default; the paper's compute dtype) or fp32 without TF32; they
/// accumulate and write fp32 either way, and every other op computes in fp32. Frozen 4-bit weights are dequantized
/// (straight to bf16 under bf16 compute) into a reused scratch buffer right before their GEMM (one decode row takes the
/// 4-bit GEMV instead); fp32 activations are rounded to bf16 into scratch once per GEMM input (once for a q/k/v or
/// gate/up group). Residual adds are the GEMM's β = 1 (the model accumulates o_proj and down_proj into the residual).
/// Determinism: one stream, fixed GEMM algorithms per shape, no floating-point atomics, fixed reduction orders in
/// every kernel.
///
/// Status (docs/CUDA.md): compiled and reviewed, not yet run on a GPU; `Backends` makes it only when asked for by name
/// (`auto` keeps the CPU) until the GPU check (scripts/gpu-check.sh) has passed on one.
public final class CUDABackend: Backend, @unchecked Sendable {
    public let context: CUDAContext
    private let lock = NSLock()
    private var scratch: [String: CUDAStorage] = [:]
    /// Training attention's document starts for the last documents tensor (the model passes the same one to every
    /// layer, forward and backward): on the host for the chunks, on the device for the row kernels' masks. Its storage
    /// is held, so a new tensor can never take its identity while it is cached.
    private var startsCache: (storage: AnyObject, offset: Int, rows: Int, host: [Int], device: Tensor)?

    /// What the GEMMs read (see the type's comment).
    public let precision: ComputePrecision

    public init(context: CUDAContext, precision: ComputePrecision = .bf16) {
        self.context = context
        self.precision = precision
    }

    public var storageTypes: Set<TensorType> { [.f32, .i32, .fourBit] }

    // MARK: Pointers and scratch

    func ptr(_ t: Tensor) -> qlora_CUdeviceptr {
        guard let s = t.storage as? CUDAStorage else { preconditionFailure("a tensor CUDABackend did not make (\(t.type) \(t.shape))") }
        return s.pointer + qlora_CUdeviceptr(t.offset * s.elementBytes)
    }

    private func optionalPtr(_ t: Tensor?) -> qlora_CUdeviceptr { t.map(ptr) ?? 0 }

    private func fourBit(_ t: Tensor) -> CUDAFourBitStorage? { t.storage as? CUDAFourBitStorage }

    /// A device buffer of at least `bytes` for `purpose`, reused between ops (stream order keeps uses apart).
    func scratch(_ purpose: String, bytes: Int) -> qlora_CUdeviceptr {
        lock.withLock {
            if let s = scratch[purpose], s.capacity >= bytes { return s.pointer }
            scratch[purpose] = nil
            let s = CUDAStorage(context: context, capacity: max(bytes, 256), elementBytes: 1)
            scratch[purpose] = s
            return s.pointer
        }
    }

    private func elementBytes(_ type: TensorType) -> Int {
        switch type {
        case .f32, .i32: 4
        case .bf16: 2
        case .fourBit: preconditionFailure("4-bit tensors are uploaded, not allocated")
        }
    }

    // MARK: Memory

    public func allocate(_ shape: [Int], _ type: TensorType) -> Tensor {
        let count = shape.reduce(1, *)
        let s = CUDAStorage(context: context, capacity: count, elementBytes: elementBytes(type))
        context.zero(s.pointer, bytes: count * s.elementBytes)   // a reused block holds its last tensor's values
        return Tensor(storage: s, type: type, shape: shape)
    }

    public func upload(_ values: [Float], shape: [Int]) -> Tensor {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        let s = CUDAStorage(context: context, capacity: values.count, elementBytes: 4)
        values.withUnsafeBytes { context.upload($0, to: s.pointer) }
        return Tensor(storage: s, type: .f32, shape: shape)
    }

    public func upload(frozen values: [Float], shape: [Int]) -> Tensor {
        let t = upload(values, shape: shape)
        if precision == .bf16, shape.count == 2, let s = t.storage as? CUDAStorage {
            let shadow = CUDAStorage(context: context, capacity: values.count, elementBytes: 2)
            context.castToBF16(s.pointer, into: shadow.pointer, count: values.count)
            s.bf16Shadow = shadow
        }
        return t
    }

    public func upload(_ values: [Int32], shape: [Int]) -> Tensor {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        let s = CUDAStorage(context: context, capacity: values.count, elementBytes: 4)
        values.withUnsafeBytes { context.upload($0, to: s.pointer) }
        return Tensor(storage: s, type: .i32, shape: shape)
    }

    public func upload(_ weight: FourBitTensor) -> Tensor {
        Tensor(storage: CUDAFourBitStorage(context: context, weight: weight), type: .fourBit, shape: weight.shape)
    }

    public func write(_ values: UnsafeBufferPointer<Float>, into t: Tensor) {
        precondition(values.count == t.count && t.type == .f32)
        context.upload(UnsafeRawBufferPointer(values), to: ptr(t))
        // The source is the caller's memory: wait until it has been read.
        context.synchronize()
    }

    public func download(_ t: Tensor) -> [Float] {
        if t.type == .i32 {
            var ids = [Int32](repeating: 0, count: t.count)
            ids.withUnsafeMutableBytes { context.download(ptr(t), into: $0) }
            return ids.map(Float.init)
        }
        var out = [Float](repeating: 0, count: t.count)
        out.withUnsafeMutableBufferPointer { read(t, into: $0) }
        return out
    }

    public func read(_ t: Tensor, into: UnsafeMutableBufferPointer<Float>) {
        precondition(into.count == t.count && t.type == .f32, "read \(t.type) \(t.shape) into \(into.count) floats")
        context.download(ptr(t), into: UnsafeMutableRawBufferPointer(into))
    }

    public func copy(_ src: Tensor, to dst: Tensor) {
        precondition(src.count == dst.count)
        guard src.count > 0 else { return }
        context.makeCurrent()
        context.must(context.driver.api.cuMemcpyDtoDAsync(ptr(dst), ptr(src), src.count * 4, context.stream), "cuMemcpyDtoDAsync_v2")
    }

    public func zero(_ t: Tensor) { context.zero(ptr(t), bytes: t.count * elementBytes(t.type)) }

    public func synchronize() { context.synchronize() }

    // MARK: Products (row-major, mapped onto column-major cuBLASLt: C[m, n] row-major is Cᵀ[n, m] column-major)

    private func zeroIfEmpty(_ c: Tensor, m: Int, n: Int, k: Int, accumulate: Bool) -> Bool {
        if m == 0 || n == 0 { return true }
        if k == 0 {
            if !accumulate { zero(c.reshaped([m * n])) }
            return true
        }
        return false
    }

    /// A GEMM operand of `count` elements as cuBLASLt reads it: the fp32 tensor itself, or under bf16 compute its
    /// round-to-nearest-even bf16 copy in the scratch buffer `slot`.
    private func operand(_ t: Tensor, count: Int, _ slot: String) -> qlora_CUdeviceptr {
        guard precision == .bf16 else { return ptr(t) }
        let out = scratch(slot, bytes: count * 2)
        context.castToBF16(ptr(t), into: out, count: count)
        return out
    }

    public func matmulTransposed(_ a: Tensor, _ b: Tensor, _ c: Tensor, m: Int, n: Int, k: Int, accumulate: Bool) {
        if zeroIfEmpty(c, m: m, n: n, k: k, accumulate: accumulate) { return }
        context.gemm(transA: true, transB: false, m: n, n: m, k: k, a: operand(b, count: n * k, "gemm a"), lda: k,
                     b: operand(a, count: m * k, "gemm b"), ldb: k, d: ptr(c), ldd: n, beta: accumulate ? 1 : 0, operands: precision)
    }

    public func matmul(_ a: Tensor, _ b: Tensor, _ c: Tensor, m: Int, n: Int, k: Int, accumulate: Bool) {
        if zeroIfEmpty(c, m: m, n: n, k: k, accumulate: accumulate) { return }
        context.gemm(transA: false, transB: false, m: n, n: m, k: k, a: operand(b, count: k * n, "gemm a"), lda: n,
                     b: operand(a, count: m * k, "gemm b"), ldb: k, d: ptr(c), ldd: n, beta: accumulate ? 1 : 0, operands: precision)
    }

    public func matmulTransposedA(_ a: Tensor, _ b: Tensor, _ c: Tensor, m: Int, n: Int, k: Int, accumulate: Bool) {
        if zeroIfEmpty(c, m: m, n: n, k: k, accumulate: accumulate) { return }
        context.gemm(transA: false, transB: true, m: n, n: m, k: k, a: operand(b, count: k * n, "gemm a"), lda: n,
                     b: operand(a, count: k * m, "gemm b"), ldb: m, d: ptr(c), ldd: n, beta: accumulate ? 1 : 0, operands: precision)
    }

    /// The weight a GEMM reads, in `precision`: the tensor itself (fp32), its bf16 copy (a frozen matrix's shadow, else
    /// rounded into scratch), or a 4-bit weight dequantized into the scratch buffer (fp32 or bf16, bit-exact either way:
    /// qlora_math.h).
    private func dense(_ w: Tensor) -> qlora_CUdeviceptr {
        if precision == .bf16, let shadow = (w.storage as? CUDAStorage)?.bf16Shadow {
            return shadow.pointer + qlora_CUdeviceptr(w.offset * 2)
        }
        guard let q = fourBit(w) else { return operand(w, count: w.count, "dense weight") }
        let bf16 = precision == .bf16
        let out = scratch("dequantized weight", bytes: q.capacity * (bf16 ? 2 : 4))
        context.launch(bf16 ? "ql_dequant4_bf16" : "ql_dequant4_f32", grid: CUDAContext.gridFor(q.capacity), block: 256,
                       q.arguments + [.i64(q.capacity), .pointer(out)])
        return out
    }

    /// `y[rows, n] (+)= x·Wᵀ` for `x` already in GEMM form (`operand`).
    private func linearGEMM(_ x: qlora_CUdeviceptr, _ w: Tensor, _ y: Tensor, rows: Int, accumulate: Bool) {
        let (n, k) = (w.shape[0], w.count / max(w.shape[0], 1))
        if zeroIfEmpty(y, m: rows, n: n, k: k, accumulate: accumulate) { return }
        context.gemm(transA: true, transB: false, m: n, n: rows, k: k, a: dense(w), lda: k, b: x, ldb: k, d: ptr(y), ldd: n,
                     beta: accumulate ? 1 : 0, operands: precision)
    }

    public func linear(_ x: Tensor, _ w: Tensor, _ y: Tensor, rows: Int, accumulate: Bool) {
        let (n, k) = (w.shape[0], w.count / max(w.shape[0], 1))
        if rows == 1, let q = fourBit(w) {
            context.launch("ql_gemv4_f32", grid: min((n + 7) / 8, 1 << 16), block: 256,
                           q.arguments + [.i64(n), .i64(k), .pointer(ptr(x)), .pointer(ptr(y)), .i32(accumulate ? 1 : 0)])
            return
        }
        linearGEMM(operand(x, count: rows * k, "gemm input"), w, y, rows: rows, accumulate: accumulate)
    }

    /// A group of projections of one input (q/k/v, gate/up): the input is rounded to bf16 once for all of them. (One
    /// GEMM over the weights dequantized side by side would write a [rows, Σn] result that then has to be split into
    /// the group's outputs: an extra pass over the largest activations, which costs more than the launches it saves
    /// at training sizes.)
    public func linear(_ x: Tensor, _ ws: [Tensor], _ ys: [Tensor], rows: Int) {
        precondition(ws.count == ys.count)
        guard rows > 1, let first = ws.first else {
            for (w, y) in zip(ws, ys) { linear(x, w, y, rows: rows, accumulate: false) }
            return
        }
        let k = first.count / max(first.shape[0], 1)
        let input = operand(x, count: rows * k, "gemm input")
        for (w, y) in zip(ws, ys) {
            precondition(w.count / max(w.shape[0], 1) == k, "a projection group's weights read inputs of different widths")
            linearGEMM(input, w, y, rows: rows, accumulate: false)
        }
    }

    public func linearBackwardInput(_ dy: Tensor, _ w: Tensor, _ dx: Tensor, rows: Int, accumulate: Bool) {
        let (n, k) = (w.shape[0], w.count / max(w.shape[0], 1))   // dx[rows, k] = dy[rows, n] · W[n, k]
        if zeroIfEmpty(dx, m: rows, n: k, k: n, accumulate: accumulate) { return }
        context.gemm(transA: false, transB: false, m: k, n: rows, k: n, a: dense(w), lda: k, b: operand(dy, count: rows * n, "gemm input"),
                     ldb: n, d: ptr(dx), ldd: k, beta: accumulate ? 1 : 0, operands: precision)
    }

    public func makeResident(_ w: Tensor) -> (any ResidentMatrix)? { nil }

    public func matrixVector(_ w: any ResidentMatrix, _ x: Tensor, _ y: Tensor) {
        preconditionFailure("CUDABackend makes no resident matrices")
    }

    // MARK: Forward ops

    public func rmsNorm(_ x: Tensor, weight: Tensor, _ out: Tensor, rows: Int, dim: Int, eps: Float) {
        context.launch("ql_rmsnorm_f32", grid: min(rows, 1 << 16), block: 256,
                       [.pointer(ptr(x)), .pointer(ptr(weight)), .pointer(ptr(out)), .pointer(0), .i64(rows), .i64(dim), .f32(eps)])
    }

    public func rope(_ x: Tensor, rows: Int, heads: Int, headDim: Int, cos: Tensor, sin: Tensor) {
        rope(x, rows: rows, heads: heads, headDim: headDim, cos: cos, sin: sin, inverse: false)
    }

    private func rope(_ x: Tensor, rows: Int, heads: Int, headDim: Int, cos: Tensor, sin: Tensor, inverse: Bool) {
        context.launch("ql_rope_f32", grid: CUDAContext.gridFor(rows * heads * headDim / 2), block: 256,
                       [.pointer(ptr(x)), .pointer(ptr(cos)), .pointer(ptr(sin)), .i64(rows), .i64(heads), .i64(headDim),
                        .i32(inverse ? 1 : 0)])
    }

    private func warpsGrid(_ warps: Int) -> Int { (warps + 3) / 4 }   // 4 warps (128 threads) per block

    public func attention(q: Tensor, k: Tensor, v: Tensor, out: Tensor, rows: Int, start: Int, heads: Int, kvHeads: Int, headDim: Int,
                          scale: Float) {
        precondition(headDim <= 256, "attention head dimension \(headDim) > 256")
        context.launch("ql_attention_forward_f32", grid: warpsGrid(rows * heads), block: 128,
                       [.pointer(ptr(q)), .pointer(ptr(k)), .pointer(ptr(v)), .pointer(ptr(out)), .pointer(0), .pointer(0),
                        .i64(rows), .i64(start), .i64(heads), .i64(kvHeads), .i64(headDim), .f32(scale)])
    }

    public func swiglu(gate: Tensor, up: Tensor, _ out: Tensor, count: Int) {
        context.launch("ql_swiglu_f32", grid: CUDAContext.gridFor(count), block: 256,
                       [.pointer(ptr(gate)), .pointer(ptr(up)), .pointer(ptr(out)), .i64(count)])
    }

    public func add(_ x: Tensor, _ y: Tensor, count: Int) {
        context.launch("ql_add_f32", grid: CUDAContext.gridFor(count), block: 256, [.pointer(ptr(x)), .pointer(ptr(y)), .i64(count)])
    }

    // MARK: Training ops

    public func rmsNormBackward(_ dy: Tensor, x: Tensor, weight: Tensor, dx: Tensor, dWeight: Tensor?, rows: Int, dim: Int, eps: Float,
                                accumulate: Bool) {
        let inverse = dWeight == nil ? 0 : scratch("inverse rms", bytes: rows * 4)
        context.launch("ql_rmsnorm_backward_f32", grid: min(rows, 1 << 16), block: 256,
                       [.pointer(ptr(dy)), .pointer(ptr(x)), .pointer(ptr(weight)), .pointer(ptr(dx)), .pointer(inverse), .i64(rows),
                        .i64(dim), .f32(eps), .i32(accumulate ? 1 : 0)])
        if let dWeight {
            context.launch("ql_rmsnorm_weight_grad_f32", grid: CUDAContext.gridFor(dim), block: 256,
                           [.pointer(ptr(dy)), .pointer(ptr(x)), .pointer(inverse), .pointer(ptr(dWeight)), .i64(rows), .i64(dim)])
        }
    }

    public func ropeBackward(_ dx: Tensor, rows: Int, heads: Int, headDim: Int, cos: Tensor, sin: Tensor) {
        rope(dx, rows: rows, heads: heads, headDim: headDim, cos: cos, sin: sin, inverse: true)
    }

    /// Each row's document start (or 0 without documents), in a scratch buffer.
    /// Each row's document start on the host and on the device (null without documents: the kernels read 0), computed
    /// from one download of `documents` and uploaded once per documents tensor.
    private func documentStarts(_ documents: Tensor?, rows: Int) -> (host: [Int], device: qlora_CUdeviceptr) {
        guard let documents else { return (QLoRACore.documentStarts(nil, rows: rows), 0) }
        let storage = documents.storage as AnyObject
        if let c = lock.withLock({ startsCache }), c.storage === storage, c.offset == documents.offset, c.rows == rows {
            return (c.host, ptr(c.device))
        }
        var ids = [Int32](repeating: 0, count: rows)
        ids.withUnsafeMutableBytes { context.download(ptr(documents), into: $0) }
        let host = ids.withUnsafeBufferPointer { QLoRACore.documentStarts($0.baseAddress, rows: rows) }
        let device = upload(host.map { Int32($0) }, shape: [rows])
        lock.withLock { startsCache = (storage, documents.offset, rows, host, device) }
        return (host, ptr(device))
    }

    private func buffer(_ t: Tensor) -> CUDAAttentionEngine.Buffer { .init(pointer: ptr(t), bf16: false) }

    public func attentionTraining(q: Tensor, k: Tensor, v: Tensor, out: Tensor, logsumexp: Tensor?, documents: Tensor?, rows: Int,
                                  heads: Int, kvHeads: Int, headDim: Int, scale: Float) {
        guard rows > 0 else { return }
        let starts = documentStarts(documents, rows: rows)
        let lse = logsumexp.map(buffer) ?? .init(pointer: scratch("attention logsumexp", bytes: rows * heads * 4), bf16: false)
        GEMMAttention.forward(CUDAAttentionEngine(backend: self), q: buffer(q), k: buffer(k), v: buffer(v), out: buffer(out), lse: lse,
                              starts: starts.host, deviceStarts: .init(pointer: starts.device, bf16: false),
                              shape: .init(rows: rows, heads: heads, kvHeads: kvHeads, headDim: headDim), scale: scale)
    }

    public func attentionBackward(dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, logsumexp: Tensor, dq: Tensor, dk: Tensor,
                                  dv: Tensor, documents: Tensor?, rows: Int, heads: Int, kvHeads: Int, headDim: Int, scale: Float) {
        guard rows > 0 else { return }
        let starts = documentStarts(documents, rows: rows)
        let delta = scratch("attention delta", bytes: rows * heads * 4)
        context.launch("ql_attention_delta_f32", grid: warpsGrid(rows * heads), block: 128,
                       [.pointer(ptr(dOut)), .pointer(ptr(out)), .pointer(delta), .i64(rows), .i64(heads), .i64(headDim)])
        GEMMAttention.backward(CUDAAttentionEngine(backend: self), dOut: buffer(dOut), q: buffer(q), k: buffer(k), v: buffer(v),
                               lse: buffer(logsumexp), delta: .init(pointer: delta, bf16: false), dq: buffer(dq), dk: buffer(dk),
                               dv: buffer(dv), starts: starts.host, deviceStarts: .init(pointer: starts.device, bf16: false),
                               shape: .init(rows: rows, heads: heads, kvHeads: kvHeads, headDim: headDim), scale: scale)
    }

    public func swigluBackward(_ dOut: Tensor, gate: Tensor, up: Tensor, dGate: Tensor, dUp: Tensor, count: Int) {
        context.launch("ql_swiglu_backward_f32", grid: CUDAContext.gridFor(count), block: 256,
                       [.pointer(ptr(dOut)), .pointer(ptr(gate)), .pointer(ptr(up)), .pointer(ptr(dGate)), .pointer(ptr(dUp)), .i64(count)])
    }

    public func crossEntropy(logits: Tensor, targets: Tensor, dLogits: Tensor?, rows: Int, vocab: Int,
                             gradScale: Float) -> (sum: Double, count: Int) {
        // The kernel works in place: on dLogits (a copy of the logits) when a gradient is wanted, else on scratch.
        let work: qlora_CUdeviceptr
        if let dLogits {
            if !dLogits.sharesStorage(with: logits) || dLogits.offset != logits.offset { copy(logits.reshaped([rows * vocab]), to: dLogits.reshaped([rows * vocab])) }
            work = ptr(dLogits)
        } else {
            work = scratch("cross-entropy logits", bytes: rows * vocab * 4)
            context.makeCurrent()
            context.must(context.driver.api.cuMemcpyDtoDAsync(work, ptr(logits), rows * vocab * 4, context.stream), "cuMemcpyDtoDAsync_v2")
        }
        let losses = scratch("cross-entropy losses", bytes: rows * 4)
        context.launch("ql_cross_entropy_f32", grid: min(rows, 1 << 16), block: 256,
                       [.pointer(work), .pointer(ptr(targets)), .pointer(losses), .i64(rows), .i64(vocab), .f32(gradScale),
                        .i32(dLogits == nil ? 0 : 1)])
        var perRow = [Float](repeating: 0, count: rows)
        var ids = [Int32](repeating: 0, count: rows)
        perRow.withUnsafeMutableBytes { context.download(losses, into: $0) }
        ids.withUnsafeMutableBytes { context.download(ptr(targets), into: $0) }
        var sum = 0.0, count = 0
        for r in 0..<rows where ids[r] != CrossEntropy.ignoreIndex {
            precondition(ids[r] >= 0 && Int(ids[r]) < vocab, "target \(ids[r]) outside the vocabulary of \(vocab) (row \(r))")
            sum += Double(perRow[r])
            count += 1
        }
        return (sum, count)
    }

    // MARK: The small ops

    public func embedding(_ table: Tensor, ids: Tensor, _ out: Tensor, rows: Int, dim: Int) {
        context.launch("ql_embedding_f32", grid: CUDAContext.gridFor(rows * dim), block: 256,
                       [.pointer(ptr(table)), .pointer(ptr(ids)), .pointer(ptr(out)), .i64(rows), .i64(dim)])
    }

    public func embeddingBackward(_ dOut: Tensor, ids: Tensor, dTable: Tensor, rows: Int, dim: Int) {
        let vocab = dTable.count / max(dim, 1)
        context.launch("ql_embedding_backward_f32", grid: CUDAContext.gridFor(vocab * dim), block: 256,
                       [.pointer(ptr(dOut)), .pointer(ptr(ids)), .pointer(ptr(dTable)), .i64(rows), .i64(dim), .i64(vocab)])
    }

    public func addBias(_ x: Tensor, _ bias: Tensor, rows: Int, width: Int) {
        context.launch("ql_add_bias_f32", grid: CUDAContext.gridFor(rows * width), block: 256,
                       [.pointer(ptr(x)), .pointer(ptr(bias)), .i64(rows), .i64(width)])
    }

    public func scale(_ x: Tensor, by s: Float, count: Int) {
        context.launch("ql_scale_f32", grid: CUDAContext.gridFor(count), block: 256, [.pointer(ptr(x)), .f32(s), .i64(count)])
    }

    public func dropout(_ src: Tensor, _ dst: Tensor, count: Int, mask: DropoutMask) {
        context.launch("ql_dropout_f32", grid: CUDAContext.gridFor(count), block: 256,
                       [.pointer(ptr(src)), .pointer(ptr(dst)), .i64(count), .u64(0), .u64(mask.key), .u32(mask.threshold), .f32(mask.scale)])
    }

    public func adamW(_ p: Tensor, gradient g: Tensor, m: Tensor, v: Tensor, count: Int, step: AdamWStep) {
        // qlora_math.h's ql_adamw_step: decay, hasDecay (int), w1, b2, w2, stepSize, bc2Sqrt, epsilon.
        var bytes: [UInt8] = []
        func f(_ x: Float) { withUnsafeBytes(of: x) { bytes += $0 } }
        f(step.decay ?? 1)
        withUnsafeBytes(of: Int32(step.decay == nil ? 0 : 1)) { bytes += $0 }
        [step.w1, step.b2, step.w2, step.stepSize, step.bc2Sqrt, step.epsilon].forEach(f)
        context.launch("ql_adamw_f32", grid: CUDAContext.gridFor(count), block: 256,
                       [.pointer(ptr(p)), .pointer(ptr(g)), .pointer(ptr(m)), .pointer(ptr(v)), .i64(count), .bytes(bytes)])
    }

    /// Chunks of the deterministic norm's first pass: fixed, so the sum order never depends on the GPU.
    static let normChunk = 1 << 16

    public func sumOfSquares(_ x: Tensor, count: Int) -> Double {
        guard count > 0 else { return 0 }
        let chunks = (count + Self.normChunk - 1) / Self.normChunk
        let partials = scratch("norm partials", bytes: chunks * 8 + 8)
        context.launch("ql_sum_squares_partial", grid: chunks, block: 256,
                       [.pointer(ptr(x)), .i64(count), .i64(Self.normChunk), .pointer(partials)])
        let total = partials + qlora_CUdeviceptr(chunks * 8)
        context.launch("ql_sum_partials", grid: 1, block: 32, [.pointer(partials), .i64(chunks), .pointer(total)])
        var result = 0.0
        withUnsafeMutableBytes(of: &result) { context.download(total, into: $0) }
        return result
    }
}

/// `GEMMAttention` on the GPU: buffers are device pointers (fp32, or the bf16 copies `operand` makes under bf16
/// compute), GEMMs go to cuBLASLt batched over the kv heads, and the row kernels are attention.cu's.
struct CUDAAttentionEngine: AttentionEngine {
    struct Buffer {
        let pointer: qlora_CUdeviceptr
        let bf16: Bool
    }

    let backend: CUDABackend
    private var context: CUDAContext { backend.context }

    func scratch(_ slot: String, floats: Int) -> Buffer { Buffer(pointer: backend.scratch(slot, bytes: floats * 4), bf16: false) }

    func operand(_ buffer: Buffer, count: Int, _ slot: String) -> Buffer {
        guard backend.precision == .bf16 else { return buffer }
        let out = backend.scratch(slot, bytes: count * 2)
        context.castToBF16(buffer.pointer, into: out, count: count)
        return Buffer(pointer: out, bf16: true)
    }

    func zero(_ buffer: Buffer, count: Int) { context.zero(buffer.pointer, bytes: count * 4) }

    /// Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: the operands swap and so do their transposes.
    func gemm(_ a: AttentionView<Buffer>, transA: Bool, _ b: AttentionView<Buffer>, transB: Bool, into c: AttentionView<Buffer>,
              m: Int, n: Int, k: Int, batch: Int, beta: Float) {
        precondition(a.buffer.bf16 == b.buffer.bf16 && !c.buffer.bf16, "GEMM operands of one type, an fp32 result")
        func address(_ v: AttentionView<Buffer>) -> qlora_CUdeviceptr { v.buffer.pointer + qlora_CUdeviceptr(v.offset * (v.buffer.bf16 ? 2 : 4)) }
        context.gemm(transA: transB, transB: transA, m: n, n: m, k: k, a: address(b), lda: b.ld, b: address(a), ldb: a.ld, d: address(c),
                     ldd: c.ld, beta: beta, operands: a.buffer.bf16 ? .bf16 : .fp32, batch: batch, strideA: b.stride, strideB: a.stride,
                     strideD: c.stride)
    }

    func softmaxRows(_ scores: Buffer, starts: Buffer, lse: Buffer, forward: Bool, r0: Int, firstKey: Int, nq: Int, nk: Int, batch: Int,
                     heads: Int, group: Int, j: Int, scale: Float) {
        context.launch("ql_attention_softmax_rows_f32", grid: batch * nq, block: 256,
                       [.pointer(scores.pointer), .pointer(starts.pointer), .pointer(lse.pointer), .i32(forward ? 1 : 0), .i64(r0),
                        .i64(firstKey), .i64(nq), .i64(nk), .i64(batch), .i64(heads), .i64(group), .i64(j), .f32(scale)])
    }

    func scoreGradients(_ dScores: Buffer, probabilities: Buffer, delta: Buffer, r0: Int, nq: Int, nk: Int, batch: Int, heads: Int,
                        group: Int, j: Int, scale: Float) {
        context.launch("ql_attention_score_grad_f32", grid: CUDAContext.gridFor(batch * nq * nk), block: 256,
                       [.pointer(dScores.pointer), .pointer(probabilities.pointer), .pointer(delta.pointer), .i64(r0), .i64(nq), .i64(nk),
                        .i64(batch), .i64(heads), .i64(group), .i64(j), .f32(scale)])
    }
}
