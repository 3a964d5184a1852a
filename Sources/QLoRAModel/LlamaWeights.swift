import QLoRACore

/// The weights of a LLaMA-family model in HF layout (linear weights `[out, in]`, row-major): the seven
/// projections of every block as `LinearWeight` (fp32 or 4-bit), everything else fp32. GGUF weights are
/// dequantized and their Q/K rows un-permuted on load, so one forward pass (HF rotate-half RoPE) serves
/// every source.
public struct LlamaWeights: Sendable {
    public struct Layer: Sendable {
        public var attnNorm: [Float]
        public var wq: LinearWeight, wk: LinearWeight, wv: LinearWeight, wo: LinearWeight
        public var bq: [Float]?, bk: [Float]?, bv: [Float]?
        public var ffnNorm: [Float]
        public var wGate: LinearWeight, wUp: LinearWeight, wDown: LinearWeight

        /// The seven projections in PEFT's `target_modules` naming.
        public var projections: [(name: String, weight: LinearWeight)] {
            [("q_proj", wq), ("k_proj", wk), ("v_proj", wv), ("o_proj", wo),
             ("gate_proj", wGate), ("up_proj", wUp), ("down_proj", wDown)]
        }

        public init(attnNorm: [Float], wq: [Float], wk: [Float], wv: [Float], wo: [Float], bq: [Float]? = nil,
                    bk: [Float]? = nil, bv: [Float]? = nil, ffnNorm: [Float], wGate: [Float], wUp: [Float], wDown: [Float]) {
            self.init(attnNorm: attnNorm, wq: .dense(wq), wk: .dense(wk), wv: .dense(wv), wo: .dense(wo), bq: bq, bk: bk, bv: bv,
                      ffnNorm: ffnNorm, wGate: .dense(wGate), wUp: .dense(wUp), wDown: .dense(wDown))
        }

        public init(attnNorm: [Float], wq: LinearWeight, wk: LinearWeight, wv: LinearWeight, wo: LinearWeight,
                    bq: [Float]? = nil, bk: [Float]? = nil, bv: [Float]? = nil, ffnNorm: [Float],
                    wGate: LinearWeight, wUp: LinearWeight, wDown: LinearWeight) {
            self.attnNorm = attnNorm
            self.wq = wq
            self.wk = wk
            self.wv = wv
            self.wo = wo
            self.bq = bq
            self.bk = bk
            self.bv = bv
            self.ffnNorm = ffnNorm
            self.wGate = wGate
            self.wUp = wUp
            self.wDown = wDown
        }
    }

    /// `[vocab, hidden]`.
    public var embedding: [Float]
    public var layers: [Layer]
    public var finalNorm: [Float]
    /// `[vocab, hidden]`; nil when tied to the embedding.
    public var lmHead: [Float]?

    public init(embedding: [Float], layers: [Layer], finalNorm: [Float], lmHead: [Float]?) {
        self.embedding = embedding
        self.layers = layers
        self.finalNorm = finalNorm
        self.lmHead = lmHead
    }

    /// These weights with the projections in `modules` quantized to 4 bits (in memory; the prepare stage
    /// writes the same thing to disk).
    public func quantized(_ options: FourBitOptions, dtype: FloatStorage = .float32,
                          modules: Set<String> = PrepareOptions.allProjections) -> LlamaWeights {
        var copy = self
        func q(_ w: LinearWeight, _ name: String, rows: Int, columns: Int) -> LinearWeight {
            guard modules.contains(name), case .dense(let values) = w else { return w }
            return .fourBit(FourBitQuantizer.quantize(values, shape: [rows, columns], dtype: dtype, options: options))
        }
        for i in copy.layers.indices {
            let l = copy.layers[i]
            let h = l.attnNorm.count
            let qOut = l.wq.count / h, kvOut = l.wk.count / h, f = l.wGate.count / h
            copy.layers[i].wq = q(l.wq, "q_proj", rows: qOut, columns: h)
            copy.layers[i].wk = q(l.wk, "k_proj", rows: kvOut, columns: h)
            copy.layers[i].wv = q(l.wv, "v_proj", rows: kvOut, columns: h)
            copy.layers[i].wo = q(l.wo, "o_proj", rows: h, columns: qOut)
            copy.layers[i].wGate = q(l.wGate, "gate_proj", rows: f, columns: h)
            copy.layers[i].wUp = q(l.wUp, "up_proj", rows: f, columns: h)
            copy.layers[i].wDown = q(l.wDown, "down_proj", rows: h, columns: f)
        }
        return copy
    }

    /// Bytes held by the weights.
    public var bytes: Int {
        var total = 4 * (embedding.count + finalNorm.count + (lmHead?.count ?? 0))
        for l in layers {
            total += 4 * (l.attnNorm.count + l.ffnNorm.count + (l.bq?.count ?? 0) + (l.bk?.count ?? 0) + (l.bv?.count ?? 0))
            total += l.projections.reduce(0) { $0 + $1.weight.bytes }
        }
        return total
    }

    /// Checks every array's size against the config (errors name the tensor).
    func validate(_ c: LlamaConfig, file: String) throws {
        func check(_ name: String, _ a: [Float]?, _ count: Int) throws {
            guard let a else { throw ModelError(file: file, "\(name) is missing") }
            if a.count != count { throw ModelError(file: file, "\(name) has \(a.count) values, expected \(count)") }
        }
        func check(_ name: String, _ w: LinearWeight, _ rows: Int, _ columns: Int) throws {
            switch w {
            case .dense(let a): try check(name, a, rows * columns)
            case .fourBit(let t):
                if t.shape != [rows, columns] {
                    throw ModelError(file: file, "\(name) has shape \(t.shape), expected [\(rows), \(columns)]")
                }
            }
        }
        let h = c.hiddenSize, q = c.heads * c.headDim, kv = c.kvHeads * c.headDim, f = c.intermediateSize
        try check("embedding", embedding, c.vocabSize * h)
        try check("final norm", finalNorm, h)
        if let lmHead { try check("lm_head", lmHead, c.vocabSize * h) }
        for (i, l) in layers.enumerated() {
            try check("layer \(i) attention norm", l.attnNorm, h)
            try check("layer \(i) q_proj", l.wq, q, h)
            try check("layer \(i) k_proj", l.wk, kv, h)
            try check("layer \(i) v_proj", l.wv, kv, h)
            try check("layer \(i) o_proj", l.wo, h, q)
            try check("layer \(i) mlp norm", l.ffnNorm, h)
            try check("layer \(i) gate_proj", l.wGate, f, h)
            try check("layer \(i) up_proj", l.wUp, f, h)
            try check("layer \(i) down_proj", l.wDown, h, f)
            if c.attentionBias {
                try check("layer \(i) q_proj.bias", l.bq, q)
                try check("layer \(i) k_proj.bias", l.bk, kv)
                try check("layer \(i) v_proj.bias", l.bv, kv)
            }
        }
        if layers.count != c.layers { throw ModelError(file: file, "\(layers.count) layers, config says \(c.layers)") }
    }
}
