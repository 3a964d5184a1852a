/// The weights of a LLaMA-family model as fp32 arrays in HF layout (linear weights `[out, in]`,
/// row-major). GGUF weights are dequantized and their Q/K rows un-permuted on load, so one forward
/// pass (HF rotate-half RoPE) serves both sources.
public struct LlamaWeights: Sendable {
    public struct Layer: Sendable {
        public var attnNorm: [Float]
        public var wq: [Float], wk: [Float], wv: [Float], wo: [Float]
        public var bq: [Float]?, bk: [Float]?, bv: [Float]?
        public var ffnNorm: [Float]
        public var wGate: [Float], wUp: [Float], wDown: [Float]

        public init(attnNorm: [Float], wq: [Float], wk: [Float], wv: [Float], wo: [Float], bq: [Float]? = nil,
                    bk: [Float]? = nil, bv: [Float]? = nil, ffnNorm: [Float], wGate: [Float], wUp: [Float], wDown: [Float]) {
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

    /// Checks every array's size against the config (errors name the tensor).
    func validate(_ c: LlamaConfig, file: String) throws {
        func check(_ name: String, _ a: [Float]?, _ count: Int) throws {
            guard let a else { throw ModelError(file: file, "\(name) is missing") }
            if a.count != count { throw ModelError(file: file, "\(name) has \(a.count) values, expected \(count)") }
        }
        let h = c.hiddenSize, q = c.heads * c.headDim, kv = c.kvHeads * c.headDim, f = c.intermediateSize
        try check("embedding", embedding, c.vocabSize * h)
        try check("final norm", finalNorm, h)
        if let lmHead { try check("lm_head", lmHead, c.vocabSize * h) }
        for (i, l) in layers.enumerated() {
            try check("layer \(i) attention norm", l.attnNorm, h)
            try check("layer \(i) q_proj", l.wq, q * h)
            try check("layer \(i) k_proj", l.wk, kv * h)
            try check("layer \(i) v_proj", l.wv, kv * h)
            try check("layer \(i) o_proj", l.wo, h * q)
            try check("layer \(i) mlp norm", l.ffnNorm, h)
            try check("layer \(i) gate_proj", l.wGate, f * h)
            try check("layer \(i) up_proj", l.wUp, f * h)
            try check("layer \(i) down_proj", l.wDown, h * f)
            if c.attentionBias {
                try check("layer \(i) q_proj.bias", l.bq, q)
                try check("layer \(i) k_proj.bias", l.bk, kv)
                try check("layer \(i) v_proj.bias", l.bv, kv)
            }
        }
        if layers.count != c.layers { throw ModelError(file: file, "\(layers.count) layers, config says \(c.layers)") }
    }
}
