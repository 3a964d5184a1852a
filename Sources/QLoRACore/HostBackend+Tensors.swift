import Foundation

/// Host memory for a host backend's tensor: an allocation the backend owns (zero-filled, writable), a frozen
/// f32 array kept as it is (read-only: uploading a model's weights copies nothing), or a 4-bit weight.
public final class HostStorage: TensorStorage, @unchecked Sendable {
    enum Memory {
        case owned(UnsafeMutableRawPointer)
        case frozen([Float])
        case fourBit(FourBitTensor)
    }

    let memory: Memory
    public let capacity: Int

    init(zeroed count: Int, elementSize: Int) {
        let bytes = max(1, count * elementSize)
        let p = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 16)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        memory = .owned(p)
        capacity = count
    }

    init(frozen values: [Float]) {
        memory = .frozen(values)
        capacity = values.count
    }

    init(fourBit: FourBitTensor) {
        memory = .fourBit(fourBit)
        capacity = fourBit.count
    }

    deinit {
        if case .owned(let p) = memory { p.deallocate() }
    }
}

extension HostBackend {
    public var storageTypes: Set<TensorType> { [.f32, .i32, .fourBit] }

    // MARK: Resolving handles to host pointers

    private func storage(_ t: Tensor) -> HostStorage {
        guard let s = t.storage as? HostStorage else { preconditionFailure("a tensor from another backend given to a host backend") }
        return s
    }

    /// Pointer to an owned f32 tensor's elements (outputs, and inputs that are never frozen).
    func mutable(_ t: Tensor) -> UnsafeMutablePointer<Float> {
        precondition(t.type == .f32, "an f32 tensor was expected, got \(t.type)")
        guard case .owned(let p) = storage(t).memory else { preconditionFailure("writing a frozen (read-only) tensor") }
        return p.assumingMemoryBound(to: Float.self) + t.offset
    }

    /// Pointer to an i32 tensor's elements.
    func ints(_ t: Tensor) -> UnsafeMutablePointer<Int32> {
        precondition(t.type == .i32, "an i32 tensor was expected, got \(t.type)")
        guard case .owned(let p) = storage(t).memory else { preconditionFailure("an i32 tensor is always owned") }
        return p.assumingMemoryBound(to: Int32.self) + t.offset
    }

    func fourBit(_ t: Tensor) -> FourBitTensor? {
        if case .fourBit(let w) = storage(t).memory { return w }
        return nil
    }

    /// Calls `body` with a pointer to each f32 tensor's elements (owned or frozen; nil stays nil). Frozen arrays are
    /// read inside `withUnsafeBufferPointer`, so their pointers are only used within `body`.
    func reading<R>(_ ts: [Tensor?], _ body: ([UnsafePointer<Float>?]) -> R) -> R {
        var pointers: [UnsafePointer<Float>?] = []
        pointers.reserveCapacity(ts.count)
        func next(_ i: Int) -> R {
            if i == ts.count { return body(pointers) }
            guard let t = ts[i] else {
                pointers.append(nil)
                return next(i + 1)
            }
            precondition(t.type == .f32, "an f32 tensor was expected, got \(t.type)")
            switch storage(t).memory {
            case .owned(let p):
                pointers.append(UnsafePointer(p.assumingMemoryBound(to: Float.self) + t.offset))
                return next(i + 1)
            case .frozen(let values):
                return values.withUnsafeBufferPointer { b in
                    pointers.append(b.baseAddress! + t.offset)
                    return next(i + 1)
                }
            case .fourBit:
                preconditionFailure("a 4-bit weight read as f32")
            }
        }
        return next(0)
    }

    // MARK: Memory

    public func allocate(_ shape: [Int], _ type: TensorType) -> Tensor {
        precondition(type == .f32 || type == .i32, "a host backend allocates f32 and i32 tensors, not \(type)")
        let count = shape.reduce(1, *)
        return Tensor(storage: HostStorage(zeroed: count, elementSize: 4), type: type, shape: shape)
    }

    public func upload(_ values: [Float], shape: [Int]) -> Tensor {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        let t = allocate(shape, .f32)
        mutable(t).update(from: values, count: values.count)
        return t
    }

    public func upload(frozen values: [Float], shape: [Int]) -> Tensor {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        return Tensor(storage: HostStorage(frozen: values), type: .f32, shape: shape)
    }

    public func upload(_ values: [Int32], shape: [Int]) -> Tensor {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        let t = allocate(shape, .i32)
        ints(t).update(from: values, count: values.count)
        return t
    }

    public func upload(_ weight: FourBitTensor) -> Tensor {
        Tensor(storage: HostStorage(fourBit: weight), type: .fourBit, shape: weight.shape)
    }

    public func write(_ values: UnsafeBufferPointer<Float>, into t: Tensor) {
        precondition(values.count == t.count, "\(values.count) values for a tensor of \(t.count)")
        if let base = values.baseAddress { mutable(t).update(from: base, count: values.count) }
    }

    public func download(_ t: Tensor) -> [Float] {
        if t.type == .fourBit { return FourBitQuantizer.dequantizeReference(fourBit(t)!) }
        if t.type == .i32 { return UnsafeBufferPointer(start: ints(t), count: t.count).map(Float.init) }
        guard t.count > 0 else { return [] }  // see SafetensorsFile.floats: no zero-capacity initializer
        return [Float](unsafeUninitializedCapacity: t.count) { out, n in
            read(t, into: out)
            n = t.count
        }
    }

    public func read(_ t: Tensor, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(out.count == t.count, "reading \(t.count) values into \(out.count)")
        guard let base = out.baseAddress else { return }
        reading([t]) { p in base.update(from: p[0]!, count: t.count) }
    }

    public func copy(_ src: Tensor, to dst: Tensor) {
        precondition(src.count == dst.count, "copying \(src.count) values into \(dst.count)")
        reading([src]) { p in mutable(dst).update(from: p[0]!, count: src.count) }
    }

    public func zero(_ t: Tensor) {
        if t.type == .i32 { ints(t).update(repeating: 0, count: t.count) } else { mutable(t).update(repeating: 0, count: t.count) }
    }

    /// Host ops run synchronously: nothing to wait for.
    public func synchronize() {}

    // MARK: Products

    public func matmulTransposed(_ a: Tensor, _ b: Tensor, _ c: Tensor, m: Int, n: Int, k: Int, accumulate: Bool) {
        reading([a, b]) { matmulTransposed($0[0]!, $0[1]!, mutable(c), m: m, n: n, k: k, accumulate: accumulate) }
    }

    public func matmul(_ a: Tensor, _ b: Tensor, _ c: Tensor, m: Int, n: Int, k: Int, accumulate: Bool) {
        reading([a, b]) { matmul($0[0]!, $0[1]!, mutable(c), m: m, n: n, k: k, accumulate: accumulate) }
    }

    public func matmulTransposedA(_ a: Tensor, _ b: Tensor, _ c: Tensor, m: Int, n: Int, k: Int, accumulate: Bool) {
        reading([a, b]) { matmulTransposedA($0[0]!, $0[1]!, mutable(c), m: m, n: n, k: k, accumulate: accumulate) }
    }

    public func linear(_ x: Tensor, _ w: Tensor, _ y: Tensor, rows: Int, accumulate: Bool) {
        let (out, inFeatures) = (w.shape[0], w.shape[1])
        if let q = fourBit(w) {
            reading([x]) { linear($0[0]!, q, mutable(y), rows: rows, accumulate: accumulate) }
        } else {
            reading([x, w]) { matmulTransposed($0[0]!, $0[1]!, mutable(y), m: rows, n: out, k: inFeatures, accumulate: accumulate) }
        }
    }

    public func linear(_ x: Tensor, _ ws: [Tensor], _ ys: [Tensor], rows: Int) {
        precondition(ws.count == ys.count, "\(ws.count) weights for \(ys.count) outputs")
        let quantized = ws.compactMap { fourBit($0) }
        guard quantized.count == ws.count else {
            for (w, y) in zip(ws, ys) { linear(x, w, y, rows: rows, accumulate: false) }
            return
        }
        reading([x]) { linear($0[0]!, quantized, ys.map { mutable($0) }, rows: rows) }
    }

    public func linearBackwardInput(_ dy: Tensor, _ w: Tensor, _ dx: Tensor, rows: Int, accumulate: Bool) {
        let (out, inFeatures) = (w.shape[0], w.shape[1])
        if let q = fourBit(w) {
            reading([dy]) { linearBackwardInput($0[0]!, q, mutable(dx), rows: rows, accumulate: accumulate) }
        } else {
            reading([dy, w]) { matmul($0[0]!, $0[1]!, mutable(dx), m: rows, n: inFeatures, k: out, accumulate: accumulate) }
        }
    }

    public func makeResident(_ w: Tensor) -> (any ResidentMatrix)? {
        precondition(w.shape.count == 2, "a resident matrix is 2-D, got \(w.shape)")
        return reading([w]) { makeResident(UnsafeBufferPointer(start: $0[0]!, count: w.count), rows: w.shape[0], cols: w.shape[1]) }
    }

    public func matrixVector(_ w: any ResidentMatrix, _ x: Tensor, _ y: Tensor) {
        reading([x]) { matrixVector(w, $0[0]!, mutable(y)) }
    }

    // MARK: Forward ops

    public func rmsNorm(_ x: Tensor, weight: Tensor, _ out: Tensor, rows: Int, dim: Int, eps: Float) {
        reading([x, weight]) { rmsNorm($0[0]!, weight: $0[1]!, mutable(out), rows: rows, dim: dim, eps: eps) }
    }

    public func rope(_ x: Tensor, rows: Int, heads: Int, headDim: Int, cos: Tensor, sin: Tensor) {
        reading([cos, sin]) { rope(mutable(x), rows: rows, heads: heads, headDim: headDim, cos: $0[0]!, sin: $0[1]!) }
    }

    public func attention(q: Tensor, k: Tensor, v: Tensor, out: Tensor, rows: Int, start: Int, heads: Int, kvHeads: Int,
                          headDim: Int, scale: Float) {
        reading([q, k, v]) {
            attention(q: $0[0]!, k: $0[1]!, v: $0[2]!, out: mutable(out), rows: rows, start: start, heads: heads, kvHeads: kvHeads,
                      headDim: headDim, scale: scale)
        }
    }

    public func swiglu(gate: Tensor, up: Tensor, _ out: Tensor, count: Int) {
        reading([gate, up]) { swiglu(gate: $0[0]!, up: $0[1]!, mutable(out), count: count) }
    }

    public func add(_ x: Tensor, _ y: Tensor, count: Int) {
        reading([y]) { add(mutable(x), $0[0]!, count: count) }
    }

    // MARK: Training ops

    public func rmsNormBackward(_ dy: Tensor, x: Tensor, weight: Tensor, dx: Tensor, dWeight: Tensor?, rows: Int, dim: Int,
                                eps: Float, accumulate: Bool) {
        reading([dy, x, weight]) {
            rmsNormBackward($0[0]!, x: $0[1]!, weight: $0[2]!, dx: mutable(dx), dWeight: dWeight.map { mutable($0) }, rows: rows,
                            dim: dim, eps: eps, accumulate: accumulate)
        }
    }

    public func ropeBackward(_ dx: Tensor, rows: Int, heads: Int, headDim: Int, cos: Tensor, sin: Tensor) {
        reading([cos, sin]) { ropeBackward(mutable(dx), rows: rows, heads: heads, headDim: headDim, cos: $0[0]!, sin: $0[1]!) }
    }

    public func attentionTraining(q: Tensor, k: Tensor, v: Tensor, out: Tensor, logsumexp: Tensor?, documents: Tensor?, rows: Int,
                                  heads: Int, kvHeads: Int, headDim: Int, scale: Float) {
        reading([q, k, v]) {
            attentionTraining(q: $0[0]!, k: $0[1]!, v: $0[2]!, out: mutable(out), logsumexp: logsumexp.map { mutable($0) },
                              documents: documents.map { UnsafePointer(ints($0)) }, rows: rows, heads: heads, kvHeads: kvHeads,
                              headDim: headDim, scale: scale)
        }
    }

    public func attentionBackward(dOut: Tensor, q: Tensor, k: Tensor, v: Tensor, out: Tensor, logsumexp: Tensor, dq: Tensor,
                                  dk: Tensor, dv: Tensor, documents: Tensor?, rows: Int, heads: Int, kvHeads: Int, headDim: Int,
                                  scale: Float) {
        reading([dOut, q, k, v, out, logsumexp]) {
            attentionBackward(dOut: $0[0]!, q: $0[1]!, k: $0[2]!, v: $0[3]!, out: $0[4]!, logsumexp: $0[5]!, dq: mutable(dq),
                              dk: mutable(dk), dv: mutable(dv), documents: documents.map { UnsafePointer(ints($0)) }, rows: rows,
                              heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale)
        }
    }

    public func swigluBackward(_ dOut: Tensor, gate: Tensor, up: Tensor, dGate: Tensor, dUp: Tensor, count: Int) {
        reading([dOut, gate, up]) {
            swigluBackward($0[0]!, gate: $0[1]!, up: $0[2]!, dGate: mutable(dGate), dUp: mutable(dUp), count: count)
        }
    }

    public func crossEntropy(logits: Tensor, targets: Tensor, dLogits: Tensor?, rows: Int, vocab: Int,
                             gradScale: Float) -> (sum: Double, count: Int) {
        reading([logits]) {
            crossEntropy(logits: $0[0]!, targets: ints(targets), dLogits: dLogits.map { mutable($0) }, rows: rows, vocab: vocab,
                         gradScale: gradScale)
        }
    }

    // MARK: The small ops

    public func embedding(_ table: Tensor, ids: Tensor, _ out: Tensor, rows: Int, dim: Int) {
        reading([table]) { embedding($0[0]!, ids: ints(ids), mutable(out), rows: rows, dim: dim) }
    }

    public func embeddingBackward(_ dOut: Tensor, ids: Tensor, dTable: Tensor, rows: Int, dim: Int) {
        reading([dOut]) { embeddingBackward($0[0]!, ids: ints(ids), dTable: mutable(dTable), rows: rows, dim: dim) }
    }

    public func addBias(_ x: Tensor, _ bias: Tensor, rows: Int, width: Int) {
        reading([bias]) { addBias(mutable(x), $0[0]!, rows: rows, width: width) }
    }

    public func scale(_ x: Tensor, by s: Float, count: Int) {
        scale(mutable(x), by: s, count: count)
    }

    public func dropout(_ src: Tensor, _ dst: Tensor, count: Int, mask: DropoutMask) {
        reading([src]) { dropout($0[0]!, mutable(dst), count: count, mask: mask) }
    }

    public func adamW(_ p: Tensor, gradient g: Tensor, m: Tensor, v: Tensor, count: Int, step: AdamWStep) {
        reading([g]) { adamW(mutable(p), gradient: $0[0]!, m: mutable(m), v: mutable(v), count: count, step: step) }
    }

    public func sumOfSquares(_ x: Tensor, count: Int) -> Double {
        reading([x]) { sumOfSquares($0[0]!, count: count) }
    }
}
