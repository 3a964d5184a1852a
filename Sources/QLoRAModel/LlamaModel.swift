import Foundation
import QLoRACore

/// The LLaMA model (spec in docs/ARCHITECTURE.md): embedding, per layer RMSNorm → GQA attention with RoPE →
/// residual → RMSNorm → SwiGLU MLP → residual, final norm, lm_head. One model for everything: generation (KV
/// cache held by the backend, `forward`), scoring (`logProbabilities`), evaluation and training (`loss`,
/// `lossAndGradients`, recording what backward needs, with gradient checkpointing). Its weights live on the
/// backend (uploaded once at init; a host backend keeps the arrays without copying) and every op is the backend's.
///
/// With an adapter, every adapted projection is a `Linear` with a LoRA pair (`y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ`); the frozen
/// weights are never changed, so a plain and an adapted model share one set of them (`withAdapter`, `base`).
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let backend: any Backend
    /// The frozen weights as loaded, in host memory (exports, `quantized` copies, benches); the model computes on
    /// its backend tensors.
    public let weights: LlamaWeights
    /// The LoRA pairs on the backend: the trainable parameters (nil: the base model).
    public let parameters: AdapterTensors?
    /// The adapter's hyperparameters (nil: the base model).
    public let lora: LoRAConfig?
    /// Where the adapter came from (for errors), when it was read from files.
    public let adapterSource: String?
    /// Keep only each block's input during a training forward and recompute the block in backward (QLoRA's
    /// default): activation memory O(layers·R·H) instead of O(layers·R·(H+F+attention)).
    public var gradientCheckpointing = true
    /// When set, every op's wall time is added to its part (see `StepProfile`).
    public var profile: StepProfile?

    /// One decoder block's frozen tensors and its seven projections (in `Projection.allCases` order).
    struct Block: Sendable {
        var attnNorm: Tensor, ffnNorm: Tensor
        var bq: Tensor?, bk: Tensor?, bv: Tensor?
        var linears: [Linear]
    }

    let blocks: [Block]
    let embeddingTable: Tensor
    let head: Tensor
    let finalNorm: Tensor
    let inverseFrequencies: [Float]
    /// The head's resident form for decode steps, built on first use (shared with adapted views).
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

    /// Uploads `weights` to `backend`.
    public init(config: LlamaConfig, weights: LlamaWeights, backend: any Backend) {
        self.config = config
        self.weights = weights
        self.backend = backend
        parameters = nil
        lora = nil
        adapterSource = nil
        let h = config.hiddenSize, v = config.vocabSize
        func frozen(_ values: [Float], _ shape: [Int]) -> Tensor { backend.upload(frozen: values, shape: shape) }
        func upload(_ w: LinearWeight, _ p: Projection) -> Tensor {
            switch w {
            case .dense(let values):
                let s = p.shape(config)
                return frozen(values, [s.out, s.in])
            case .fourBit(let t): return backend.upload(t)
            }
        }
        embeddingTable = frozen(weights.embedding, [v, h])
        head = weights.lmHead.map { frozen($0, [v, h]) } ?? embeddingTable
        finalNorm = frozen(weights.finalNorm, [h])
        blocks = weights.layers.map { l in
            Block(attnNorm: frozen(l.attnNorm, [h]), ffnNorm: frozen(l.ffnNorm, [h]),
                  bq: l.bq.map { frozen($0, [$0.count]) }, bk: l.bk.map { frozen($0, [$0.count]) }, bv: l.bv.map { frozen($0, [$0.count]) },
                  linears: Projection.allCases.map { Linear(base: upload(l.weight($0), $0)) })
        }
        inverseFrequencies = config.inverseFrequencies.map { Float($0) }
        decodeHead = DecodeHead()
    }

    private init(_ base: LlamaModel, parameters: AdapterTensors?, lora: LoRAConfig?, source: String?) {
        config = base.config
        weights = base.weights
        backend = base.backend
        self.parameters = parameters
        self.lora = lora
        adapterSource = source
        gradientCheckpointing = base.gradientCheckpointing
        embeddingTable = base.embeddingTable
        head = base.head
        finalNorm = base.finalNorm
        inverseFrequencies = base.inverseFrequencies
        decodeHead = base.decodeHead
        blocks = base.blocks.enumerated().map { l, block in
            var b = block
            for p in Projection.allCases {
                b.linears[p.index].lora = parameters.flatMap { $0.layers[l][p] }.map { ($0, lora!.scaling) }
            }
            return b
        }
    }

    /// This model with `adapter` applied (nil: the base model again): its pairs uploaded to the backend, the frozen
    /// weights shared. Throws when the adapter's layers or shapes do not fit the model.
    public func withAdapter(_ adapter: PEFTAdapter?) throws -> LlamaModel {
        guard let adapter else { return base }
        try adapter.weights.validate(for: config, source: adapter.source)
        return LlamaModel(self, parameters: AdapterTensors(adapter.weights, backend: backend), lora: adapter.lora, source: adapter.source)
    }

    /// This model with LoRA pairs `weights` (training's initial adapters).
    public func withAdapter(_ weights: LoRAWeights, lora: LoRAConfig) throws -> LlamaModel {
        try withAdapter(PEFTAdapter(lora: lora, weights: weights))
    }

    /// This model with the PEFT adapter in `directory` (`adapter_config.json` + `adapter_model.safetensors`,
    /// see `PEFTAdapter`).
    public func withAdapter(directory: String) throws -> LlamaModel {
        try withAdapter(PEFTAdapter.load(directory: URL(fileURLWithPath: directory), model: config))
    }

    /// The model without its adapter.
    public var base: LlamaModel { parameters == nil ? self : LlamaModel(self, parameters: nil, lora: nil, source: nil) }

    /// The adapter's current values as a PEFT adapter in host memory (nil for the base model).
    public var adapter: PEFTAdapter? {
        guard let parameters, let lora else { return nil }
        return PEFTAdapter(lora: lora, weights: parameters.download(), source: adapterSource ?? "<memory>")
    }

    /// The adapter's pairs as host arrays; setting writes them to the backend (same shapes).
    public var adapters: LoRAWeights {
        get { parameters?.download() ?? LoRAWeights(layers: Array(repeating: [:], count: config.layers)) }
        set {
            guard let parameters else { preconditionFailure("the base model has no adapter to set") }
            parameters.write(newValue)
        }
    }

    /// The frozen projection `p` of layer `l` with its LoRA pair (if adapted).
    public func linear(_ p: Projection, layer l: Int) -> Linear { blocks[l].linears[p.index] }

    // MARK: Pieces every forward shares

    /// Token embeddings `[rows, H]` (ids checked against the vocabulary) and the ids on the backend.
    func embed(_ tokens: [Int32]) -> (x: Tensor, ids: Tensor) {
        precondition(tokens.allSatisfy { $0 >= 0 && Int($0) < config.vocabSize }, "token id out of range")
        let b = backend, h = config.hiddenSize
        let ids = b.upload(tokens, shape: [tokens.count])
        let x = b.allocate([tokens.count, h], .f32)
        timed(profile, .embedding) { b.embedding(embeddingTable, ids: ids, x, rows: tokens.count, dim: h) }
        return (x, ids)
    }

    /// RoPE tables `[rows, D/2]` for these positions on the backend: angle = position · inv_freq in fp32, as HF
    /// computes them.
    func ropeTables(_ positions: [Int32]) -> RopeTables {
        let half = config.headDim / 2
        var cosT = [Float](repeating: 0, count: positions.count * half), sinT = cosT
        for (r, p) in positions.enumerated() {
            for i in 0..<half {
                let angle = Float(p) * inverseFrequencies[i]
                cosT[r * half + i] = Foundation.cos(angle)
                sinT[r * half + i] = Foundation.sin(angle)
            }
        }
        return RopeTables(cos: backend.upload(cosT, shape: [positions.count, half]), sin: backend.upload(sinT, shape: [positions.count, half]))
    }

    struct RopeTables {
        let cos: Tensor, sin: Tensor
    }

    var attentionScale: Float { 1 / Float(config.headDim).squareRoot() }

    // MARK: Generation

    /// Runs `tokens` at positions `cache.length ..< cache.length + tokens.count`, appending to the cache (held by
    /// this model's backend). Returns logits `[rows, vocab]` for every position when `allLogits`, else for the last
    /// one only.
    public func forward(_ tokens: [Int], cache: inout KVCache, allLogits: Bool = false) -> [Float] {
        let c = config, b = backend
        let t = tokens.count, h = c.hiddenSize
        let start = cache.length
        precondition(start + t <= cache.capacity, "KV cache overflow: \(start + t) > \(cache.capacity)")
        cache.prepare(b)
        let kv = cache
        var x = embed(tokens.map { Int32($0) }).x
        let rope = ropeTables((start..<(start + t)).map { Int32($0) })
        for l in 0..<c.layers {
            x = forwardBlock(l, x, rows: t, rope: rope, dropoutSeed: nil) { l, q, k, v, out in
                let (keys, values) = kv.layer(l)
                b.copy(k, to: keys.rows(start..<(start + t)))
                b.copy(v, to: values.rows(start..<(start + t)))
                b.attention(q: q, k: keys, v: values, out: out, rows: t, start: start, heads: c.heads, kvHeads: c.kvHeads,
                            headDim: c.headDim, scale: attentionScale)
                return nil
            }.output
        }
        cache.advance(by: t)

        let rows = allLogits ? t : 1
        let normed = b.allocate([rows, h], .f32)
        b.rmsNorm(x.rows((t - rows)..<t), weight: finalNorm, normed, rows: rows, dim: h, eps: c.rmsNormEps)
        let logits = b.allocate([rows, c.vocabSize], .f32)
        headLogits(normed, rows: rows, decoding: t == 1, into: logits)
        return b.download(logits)
    }

    /// `logits[rows, vocab] = normed[rows, H] · headᵀ` (the LM head, or the tied embedding). A decode step
    /// (`decoding`, one row) reads the head in the backend's resident form when it has one (`Backend.makeResident`:
    /// the CPU's exact block-int8 copy holds the same weight values at 1.125 bytes each instead of 4, SmolLM2's tied
    /// head being a GGUF Q8_0 embedding); otherwise, and for prefill (whose logits stay those of the plain
    /// product), the fp32 head.
    public func headLogits(_ normed: Tensor, rows: Int, decoding: Bool, into logits: Tensor) {
        let c = config
        if decoding, rows == 1, let resident = decodeHead.get({ backend.makeResident(head) }) {
            backend.matrixVector(resident, normed, logits)
            return
        }
        backend.matmulTransposed(normed, head, logits, m: rows, n: c.vocabSize, k: c.hiddenSize, accumulate: false)
    }

    /// Mean negative log-likelihood of `tokens[1...]` given their prefixes (HF's shifted causal LM loss), through
    /// the one loss computation (`loss`).
    public func meanNLL(_ tokens: [Int]) -> Double {
        guard tokens.count > 1 else { return .nan }
        let ids = tokens.map { Int32($0) }
        let l = loss(TrainingBatch(sequences: [ids], labels: [ids]))
        return l.sum / Double(l.count)
    }
}
