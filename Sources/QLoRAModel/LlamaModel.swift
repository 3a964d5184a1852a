import Foundation
import QLoRACore

/// Keys and values of every layer for the positions seen so far (generation reuses them).
///
/// One allocation for all keys and one for all values, fixed at creation: layer `l`'s keys are the
/// `[capacity, kvHeads·headDim]` rows at `l · capacity · kvHeads·headDim`, so appending a token writes its rows in
/// place and attention reads the cache where it lies. A value type: a copy shares the storage until either
/// side appends (copy on write, of the filled positions only).
public struct KVCache: Sendable {
    public private(set) var length = 0
    let capacity: Int
    /// Floats per position (`kvHeads · headDim`).
    let width: Int
    private var storage: Storage

    final class Storage: @unchecked Sendable {
        let keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>
        let layers: Int, layerFloats: Int

        init(layers: Int, layerFloats: Int) {
            self.layers = layers
            self.layerFloats = layerFloats
            // Never read before written: attention only sees positions < length.
            keys = .allocate(capacity: max(1, layers * layerFloats))
            values = .allocate(capacity: max(1, layers * layerFloats))
        }

        /// A copy holding the first `used` floats of every layer.
        func copy(used: Int) -> Storage {
            let c = Storage(layers: layers, layerFloats: layerFloats)
            for l in 0..<layers {
                (c.keys + l * layerFloats).update(from: keys + l * layerFloats, count: used)
                (c.values + l * layerFloats).update(from: values + l * layerFloats, count: used)
            }
            return c
        }

        deinit {
            keys.deallocate()
            values.deallocate()
        }
    }

    public init(config: LlamaConfig, capacity: Int) {
        self.capacity = capacity
        width = config.kvHeads * config.headDim
        storage = Storage(layers: config.layers, layerFloats: capacity * width)
    }

    /// Layer `l`'s key and value rows `[capacity, width]`. Call `makeUnique` before writing through them.
    func layer(_ l: Int) -> (keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>) {
        (storage.keys + l * storage.layerFloats, storage.values + l * storage.layerFloats)
    }

    /// Gives this cache its own storage if a copy shares it.
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy(used: length * width) }
    }

    mutating func advance(by n: Int) { length += n }
}

/// The LLaMA forward pass (spec llama-architecture §2): embedding, per layer RMSNorm → GQA attention with
/// RoPE → residual → RMSNorm → SwiGLU MLP → residual, final norm, lm_head. fp32 compute; the ops come
/// from a `Backend`.
///
/// With an `adapter`, every adapted projection adds its low-rank delta to the frozen weight's output
/// (`y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ`); the weights themselves are never changed, so a plain and an adapted model
/// can share one set of weights (`withAdapter`).
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    public let backend: any Backend
    /// LoRA deltas applied on top of `weights` (nil: the base model).
    public let adapter: PEFTAdapter?
    private let inverseFrequencies: [Float]
    /// The head's exact block-int8 copy for decode steps, built on first use (shared with adapted views).
    private let decodeHead: DecodeHead

    /// A value computed once on first use, under a lock (models are shared between threads).
    final class DecodeHead: @unchecked Sendable {
        private let lock = NSLock()
        private var built = false
        private var value: (any ResidentMatrix)?

        func get(_ build: () -> (any ResidentMatrix)?) -> (any ResidentMatrix)? {
            lock.lock()
            defer { lock.unlock() }
            if !built {
                value = build()
                built = true
            }
            return value
        }
    }

    public init(config: LlamaConfig, weights: LlamaWeights, backend: any Backend) {
        self.config = config
        self.weights = weights
        self.backend = backend
        self.adapter = nil
        inverseFrequencies = config.inverseFrequencies.map { Float($0) }
        decodeHead = DecodeHead()
    }

    private init(_ base: LlamaModel, adapter: PEFTAdapter?) {
        config = base.config
        weights = base.weights
        backend = base.backend
        self.adapter = adapter
        inverseFrequencies = base.inverseFrequencies
        decodeHead = base.decodeHead
    }

    /// This model's weights with `adapter` applied (nil: the base model again). The weights are shared, not
    /// copied. Throws when the adapter's layers or shapes do not fit the model.
    public func withAdapter(_ adapter: PEFTAdapter?) throws -> LlamaModel {
        if let adapter { try adapter.weights.validate(for: config, source: adapter.source) }
        return LlamaModel(self, adapter: adapter)
    }

    /// This model with the PEFT adapter in `directory` (`adapter_config.json` + `adapter_model.safetensors`,
    /// see `PEFTAdapter`).
    public func withAdapter(directory: String) throws -> LlamaModel {
        try withAdapter(PEFTAdapter.load(directory: URL(fileURLWithPath: directory), model: config))
    }

    /// The model without its adapter.
    public var base: LlamaModel { adapter == nil ? self : LlamaModel(self, adapter: nil) }

    /// Per-forward buffers for `rows` rows, reused by every layer.
    struct Workspace {
        var xn: [Float], q: [Float], k: [Float], v: [Float], attn: [Float], gate: [Float], up: [Float]

        init(_ c: LlamaConfig, rows t: Int) {
            let qWidth = c.heads * c.headDim, kvWidth = c.kvHeads * c.headDim
            xn = [Float](repeating: 0, count: t * c.hiddenSize)
            q = [Float](repeating: 0, count: t * qWidth)
            k = [Float](repeating: 0, count: t * kvWidth)
            v = k
            attn = q
            gate = [Float](repeating: 0, count: t * c.intermediateSize)
            up = gate
        }
    }

    /// `y (+)= x·Wᵀ` for the frozen weight of `p` in layer `l`, plus its low-rank delta when adapted.
    func project(_ p: Projection, _ l: Int, _ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
                 accumulate: Bool) {
        let (out, inFeatures) = p.shape(config)
        weights.layers[l].weight(p).forward(x, rows: rows, out: out, in: inFeatures, into: y, accumulate: accumulate,
                                            backend: backend)
        if let adapter, let pair = adapter.weights.layers[l][p] {
            pair.apply(x, rows: rows, scale: adapter.lora.scaling, into: y, backend: backend)
        }
    }

    /// `project` for projections of one input `x` (q/k/v, gate/up), overwriting each `ys[i]`. When all of them are
    /// 4-bit the backend gets them together (`Backend.linear` over several weights: a decode step's GEMVs in one
    /// thread dispatch, the same values as `project`); otherwise one `project` after another.
    func project(_ ps: [Projection], _ l: Int, _ x: UnsafePointer<Float>, rows: Int, into ys: [UnsafeMutablePointer<Float>]) {
        let layer = weights.layers[l]
        let tensors = ps.compactMap { p -> FourBitTensor? in
            if case .fourBit(let t) = layer.weight(p) { return t } else { return nil }
        }
        guard tensors.count == ps.count else {
            for (p, y) in zip(ps, ys) { project(p, l, x, rows: rows, into: y, accumulate: false) }
            return
        }
        backend.linear(x, tensors, ys, rows: rows)
        if let adapter {
            for (p, y) in zip(ps, ys) {
                adapter.weights.layers[l][p]?.apply(x, rows: rows, scale: adapter.lora.scaling, into: y, backend: backend)
            }
        }
    }

    /// Token embeddings `[rows, H]`.
    func embed(_ tokens: [Int]) -> [Float] {
        let h = config.hiddenSize
        precondition(tokens.allSatisfy { $0 >= 0 && $0 < config.vocabSize }, "token id out of range")
        var x = [Float](repeating: 0, count: tokens.count * h)
        tokens.map { Int32($0) }.withUnsafeBufferPointer { ids in
            backend.embedding(weights.embedding, ids: ids.baseAddress!, &x, rows: tokens.count, dim: h)
        }
        return x
    }

    /// RoPE tables `[rows, D/2]` for these positions: angle = position · inv_freq in fp32, as HF computes them.
    func ropeTables(_ positions: [Int]) -> (cos: [Float], sin: [Float]) {
        let half = config.headDim / 2
        var cosT = [Float](repeating: 0, count: positions.count * half), sinT = cosT
        for (p, position) in positions.enumerated() {
            for i in 0..<half {
                let angle = Float(position) * inverseFrequencies[i]
                cosT[p * half + i] = Foundation.cos(angle)
                sinT[p * half + i] = Foundation.sin(angle)
            }
        }
        return (cosT, sinT)
    }

    /// Every decoder block over `x[rows, H]` (in place). `attend(layer, workspace)` turns the workspace's
    /// RoPE'd `q`, `k`, `v` into `attn`: it is the only part that differs between a KV-cached forward and a
    /// batched scoring forward.
    func blocks(_ x: inout [Float], rows t: Int, rope: (cos: [Float], sin: [Float]),
                attend: (_ layer: Int, _ ws: inout Workspace) -> Void) {
        let c = config, b = backend
        let h = c.hiddenSize, dHead = c.headDim
        let qWidth = c.heads * dHead, kvWidth = c.kvHeads * dHead, f = c.intermediateSize
        var ws = Workspace(c, rows: t)
        for (l, layer) in weights.layers.enumerated() {
            b.rmsNorm(x, weight: layer.attnNorm, &ws.xn, rows: t, dim: h, eps: c.rmsNormEps)
            ws.q.withUnsafeMutableBufferPointer { q in
                ws.k.withUnsafeMutableBufferPointer { k in
                    ws.v.withUnsafeMutableBufferPointer { v in
                        project([.q, .k, .v], l, ws.xn, rows: t, into: [q.baseAddress!, k.baseAddress!, v.baseAddress!])
                    }
                }
            }
            if let bq = layer.bq, let bk = layer.bk, let bv = layer.bv {
                b.addBias(&ws.q, bq, rows: t, width: qWidth)
                b.addBias(&ws.k, bk, rows: t, width: kvWidth)
                b.addBias(&ws.v, bv, rows: t, width: kvWidth)
            }
            b.rope(&ws.q, rows: t, heads: c.heads, headDim: dHead, cos: rope.cos, sin: rope.sin)
            b.rope(&ws.k, rows: t, heads: c.kvHeads, headDim: dHead, cos: rope.cos, sin: rope.sin)
            attend(l, &ws)
            project(.o, l, ws.attn, rows: t, into: &x, accumulate: true)

            b.rmsNorm(x, weight: layer.ffnNorm, &ws.xn, rows: t, dim: h, eps: c.rmsNormEps)
            ws.gate.withUnsafeMutableBufferPointer { gate in
                ws.up.withUnsafeMutableBufferPointer { up in
                    project([.gate, .up], l, ws.xn, rows: t, into: [gate.baseAddress!, up.baseAddress!])
                }
            }
            b.swiglu(gate: ws.gate, up: ws.up, &ws.gate, count: t * f)
            project(.down, l, ws.gate, rows: t, into: &x, accumulate: true)
        }
    }

    var attentionScale: Float { 1 / Float(config.headDim).squareRoot() }

    /// Runs `tokens` at positions `cache.length ..< cache.length + tokens.count`, appending to the cache.
    /// Returns logits `[rows, vocab]` for every position when `allLogits`, else for the last one only.
    public func forward(_ tokens: [Int], cache: inout KVCache, allLogits: Bool = false) -> [Float] {
        let c = config, b = backend
        let t = tokens.count, h = c.hiddenSize
        let kvWidth = c.kvHeads * c.headDim
        let start = cache.length
        precondition(start + t <= cache.capacity, "KV cache overflow: \(start + t) > \(cache.capacity)")
        var x = embed(tokens)
        cache.makeUnique()
        blocks(&x, rows: t, rope: ropeTables(Array(start..<(start + t)))) { l, ws in
            let (keys, values) = cache.layer(l)
            (keys + start * kvWidth).update(from: ws.k, count: t * kvWidth)
            (values + start * kvWidth).update(from: ws.v, count: t * kvWidth)
            b.attention(q: ws.q, k: keys, v: values, out: &ws.attn, rows: t, start: start,
                        heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, scale: attentionScale)
        }
        cache.advance(by: t)

        let rows = allLogits ? t : 1
        let firstRow = t - rows
        var normed = [Float](repeating: 0, count: rows * h)
        x.withUnsafeBufferPointer { xb in
            b.rmsNorm(xb.baseAddress! + firstRow * h, weight: weights.finalNorm, &normed, rows: rows, dim: h, eps: c.rmsNormEps)
        }
        var logits = [Float](repeating: 0, count: rows * c.vocabSize)
        headLogits(normed, rows: rows, decoding: t == 1, into: &logits)
        return logits
    }

    /// `logits[rows, vocab] = normed[rows, H] · headᵀ` (the LM head, or the tied embedding). A decode step
    /// (`decoding`, one row) reads the head in the backend's resident form when it has one (`Backend.makeResident`:
    /// the CPU's exact block-int8 copy holds the same weight values at 1.125 bytes each instead of 4, SmolLM2's tied
    /// head being a GGUF Q8_0 embedding); otherwise, and for prefill (whose logits stay those of the plain
    /// product), the fp32 head.
    public func headLogits(_ normed: UnsafePointer<Float>, rows: Int, decoding: Bool, into logits: UnsafeMutablePointer<Float>) {
        let c = config, head = weights.lmHead ?? weights.embedding
        if decoding, rows == 1,
           let resident = decodeHead.get({ head.withUnsafeBufferPointer { backend.makeResident($0, rows: c.vocabSize, cols: c.hiddenSize) } }) {
            backend.matrixVector(resident, normed, logits)
            return
        }
        backend.matmulTransposed(normed, head, logits, m: rows, n: c.vocabSize, k: c.hiddenSize, accumulate: false)
    }

    /// Mean negative log-likelihood of `tokens[1...]` given their prefixes (HF's shifted causal LM loss).
    public func meanNLL(_ tokens: [Int]) -> Double {
        guard tokens.count > 1 else { return .nan }
        var cache = KVCache(config: config, capacity: tokens.count)
        let logits = forward(tokens, cache: &cache, allLogits: true)
        let v = config.vocabSize
        var total = 0.0
        for t in 0..<(tokens.count - 1) {
            let row = logits[(t * v)..<((t + 1) * v)]
            let m = row.max()!
            var sum = 0.0
            for z in row { sum += Foundation.exp(Double(z - m)) }
            total += Double(m) + Foundation.log(sum) - Double(row[row.startIndex + tokens[t + 1]])
        }
        return total / Double(tokens.count - 1)
    }
}
