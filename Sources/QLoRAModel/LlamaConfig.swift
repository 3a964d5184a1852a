import Foundation
import QLoRAFormats

/// Hyperparameters of a LLaMA-family model (Llama 2/3, Mistral, Qwen2, SmolLM), from an HF config.json
/// or GGUF `llama.*` metadata (spec llama-architecture §1, safetensors-and-gguf §3.1).
public struct LlamaConfig: Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var maxPositions: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    public var tieWordEmbeddings: Bool
    /// q/k/v projections have biases (Qwen2).
    public var attentionBias: Bool
    public var bosTokenID: Int?
    public var eosTokenIDs: [Int]

    public enum RopeScaling: Sendable, Equatable {
        case linear(factor: Double)
        case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalMaxPositions: Double)
    }

    public init(hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int? = nil,
                vocabSize: Int, maxPositions: Int = 2048, rmsNormEps: Float = 1e-6, ropeTheta: Double = 10000,
                ropeScaling: RopeScaling? = nil, tieWordEmbeddings: Bool = false, attentionBias: Bool = false,
                bosTokenID: Int? = nil, eosTokenIDs: [Int] = []) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim ?? (heads > 0 ? hiddenSize / heads : 0)
        self.vocabSize = vocabSize
        self.maxPositions = maxPositions
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.bosTokenID = bosTokenID
        self.eosTokenIDs = eosTokenIDs
    }

    /// The names a config's fields have in the file they came from (errors name them).
    struct FieldNames {
        var hiddenSize = "hidden_size", intermediateSize = "intermediate_size", layers = "num_hidden_layers"
        var heads = "num_attention_heads", kvHeads = "num_key_value_heads", headDim = "head_dim"
        var vocabSize = "vocab_size", maxPositions = "max_position_embeddings", rmsNormEps = "rms_norm_eps"
        var ropeTheta = "rope_theta", ropeFactor = "rope_scaling.factor", lowFreqFactor = "rope_scaling.low_freq_factor"
        var highFreqFactor = "rope_scaling.high_freq_factor"
        var originalMaxPositions = "rope_scaling.original_max_position_embeddings"

        static let hf = FieldNames()
        static let gguf = FieldNames(
            hiddenSize: "llama.embedding_length", intermediateSize: "llama.feed_forward_length", layers: "llama.block_count",
            heads: "llama.attention.head_count", kvHeads: "llama.attention.head_count_kv",
            headDim: "llama.attention.key_length (or llama.rope.dimension_count)", vocabSize: "llama.vocab_size",
            maxPositions: "llama.context_length", rmsNormEps: "llama.attention.layer_norm_rms_epsilon",
            ropeTheta: "llama.rope.freq_base", ropeFactor: "llama.rope.scaling.factor")
    }

    /// Checks every field that sizes a tensor or enters RoPE/RMSNorm (errors name the file and the field).
    func validate(file: String, fields f: FieldNames = .hf) throws {
        func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
            if !ok { throw ModelError(file: file, message()) }
        }
        for (name, value, bound) in [(f.hiddenSize, hiddenSize, 1 << 20), (f.intermediateSize, intermediateSize, 1 << 22),
                                     (f.layers, layers, 1024), (f.vocabSize, vocabSize, 1 << 24), (f.heads, heads, 4096),
                                     (f.kvHeads, kvHeads, 4096), (f.maxPositions, maxPositions, 1 << 30)] {
            try check(value > 0, "\(name) is \(value); it must be positive")
            try check(value < bound, "\(name) is \(value); this build supports less than \(bound)")
        }
        try check(heads % kvHeads == 0, "\(f.heads) (\(heads)) must be a multiple of \(f.kvHeads) (\(kvHeads))")
        try check(headDim > 0 && headDim % 2 == 0 && headDim < 1 << 16, "\(f.headDim) is \(headDim); it must be positive and even")
        // Float32 subnormals and below would make RMSNorm's epsilon vanish or divide by zero.
        try check(rmsNormEps.isFinite && rmsNormEps >= Float.leastNormalMagnitude,
                  "\(f.rmsNormEps) is \(rmsNormEps); it must be a finite positive number")
        try check(ropeTheta.isFinite && ropeTheta > 0 && Float(ropeTheta).isFinite,
                  "\(f.ropeTheta) is \(ropeTheta); it must be a finite positive number")
        func positive(_ value: Double, _ name: String) throws {
            try check(value.isFinite && value > 0, "\(name) is \(value); it must be a finite positive number")
        }
        switch ropeScaling {
        case nil: break
        case .linear(let factor): try positive(factor, f.ropeFactor)
        case .llama3(let factor, let low, let high, let original):
            try positive(factor, f.ropeFactor)
            try positive(low, f.lowFreqFactor)
            try positive(high, f.highFreqFactor)
            try positive(original, f.originalMaxPositions)
            try check(high > low, "\(f.highFreqFactor) (\(high)) must be greater than \(f.lowFreqFactor) (\(low))")
        }
    }

    /// Reads an HF config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM and friends).
    public static func fromHF(_ bytes: [UInt8], file: String) throws -> LlamaConfig {
        let root: JSONObject
        do {
            guard case .object(let o) = try JSONParser.parse(bytes) else { throw ModelError(file: file, "not a JSON object") }
            root = o
        } catch let e as ModelError { throw e } catch { throw ModelError(file: file, "invalid JSON: \(error)") }
        func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
            if case .number(let d)? = root[key], d == d.rounded(), abs(d) < 1e12 { return Int(d) }
            if root[key] == nil || root[key] == .null, let fallback { return fallback }
            throw ModelError(file: file, "`\(key)` is missing or not an integer")
        }
        func double(_ key: String, _ fallback: Double, in object: JSONObject? = nil) -> Double {
            if case .number(let d)? = (object ?? root)[key] { return d }
            return fallback
        }
        let archs: [String] = { if case .array(let a)? = root["architectures"] { return a.compactMap { if case .string(let s) = $0 { return s }; return nil } }; return [] }()
        let modelType: String = { if case .string(let s)? = root["model_type"] { return s }; return "llama" }()
        let supported = ["llama", "mistral", "qwen2", "smollm", "smollm2"]
        guard supported.contains(modelType) else {
            throw ModelError(file: file, "model_type `\(modelType)` is not a LLaMA-family model this build supports (\(supported.joined(separator: ", ")))")
        }
        let heads = try int("num_attention_heads")
        let hidden = try int("hidden_size")
        guard heads > 0 else { throw ModelError(file: file, "num_attention_heads is \(heads); it must be positive") }
        // v5 folds rope_theta and rope_scaling into rope_parameters.
        var ropeObject: JSONObject?
        if case .object(let o)? = root["rope_scaling"] { ropeObject = o }
        if case .object(let o)? = root["rope_parameters"] { ropeObject = o }
        var theta = double("rope_theta", 10000)
        if let ropeObject, case .number(let t)? = ropeObject["rope_theta"] { theta = t }
        var scaling: RopeScaling?
        if let r = ropeObject {
            var type = "default"
            if case .string(let s)? = r["rope_type"] { type = s } else if case .string(let s)? = r["type"] { type = s }
            switch type {
            case "default": scaling = nil
            case "linear": scaling = .linear(factor: double("factor", 1, in: r))
            case "llama3":
                scaling = .llama3(factor: double("factor", 8, in: r), lowFreqFactor: double("low_freq_factor", 1, in: r),
                                  highFreqFactor: double("high_freq_factor", 4, in: r),
                                  originalMaxPositions: double("original_max_position_embeddings", 8192, in: r))
            default: throw ModelError(file: file, "rope scaling type `\(type)` is not supported (default, linear, llama3)")
            }
        }
        var eos: [Int] = []
        switch root["eos_token_id"] {
        case .number(let d)?: eos = [Int(d)]
        case .array(let a)?: eos = a.compactMap { if case .number(let d) = $0 { return Int(d) }; return nil }
        default: break
        }
        let bos: Int? = { if case .number(let d)? = root["bos_token_id"] { return Int(d) }; return nil }()
        let tie: Bool = { if case .bool(let b)? = root["tie_word_embeddings"] { return b }; return false }()
        var bias = false
        if case .bool(let b)? = root["attention_bias"] { bias = b }
        if modelType == "qwen2" || archs.contains("Qwen2ForCausalLM") { bias = true }
        let config = LlamaConfig(
            hiddenSize: hidden, intermediateSize: try int("intermediate_size"), layers: try int("num_hidden_layers"),
            heads: heads, kvHeads: try int("num_key_value_heads", heads), headDim: try int("head_dim", hidden / heads),
            vocabSize: try int("vocab_size"), maxPositions: try int("max_position_embeddings", 2048),
            rmsNormEps: Float(double("rms_norm_eps", 1e-6)), ropeTheta: theta, ropeScaling: scaling,
            tieWordEmbeddings: tie, attentionBias: bias, bosTokenID: bos, eosTokenIDs: eos)
        try config.validate(file: file)
        return config
    }

    /// Reads GGUF `llama.*` metadata (any integer type accepted, range-checked).
    public static func fromGGUF(_ m: GGUFMetadata, file: String) throws -> LlamaConfig {
        guard let arch = m["general.architecture"]?.string else { throw ModelError(file: file, "general.architecture is missing") }
        guard arch == "llama" else { throw ModelError(file: file, "general.architecture `\(arch)` is not supported (llama)") }
        func int(_ key: String, _ fallback: Int? = nil) throws -> Int {
            if let v = m["llama.\(key)"]?.int { return v }
            if let fallback { return fallback }
            throw ModelError(file: file, "llama.\(key) is missing or not an integer")
        }
        let heads = try int("attention.head_count")
        let hidden = try int("embedding_length")
        guard heads > 0 else { throw ModelError(file: file, "llama.attention.head_count is \(heads); it must be positive") }
        let vocab = try m["llama.vocab_size"]?.int ?? m["tokenizer.ggml.tokens"]?.array?.count
            ?? { throw ModelError(file: file, "llama.vocab_size is missing") }()
        var scaling: RopeScaling?
        if m["llama.rope.scaling.type"]?.string == "linear", let f = m["llama.rope.scaling.factor"]?.double {
            scaling = .linear(factor: f)
        }
        let config = LlamaConfig(
            hiddenSize: hidden, intermediateSize: try int("feed_forward_length"), layers: try int("block_count"),
            heads: heads, kvHeads: try int("attention.head_count_kv", heads),
            headDim: try int("attention.key_length", try int("rope.dimension_count", hidden / heads)),
            vocabSize: vocab, maxPositions: try int("context_length", 2048),
            rmsNormEps: Float(m["llama.attention.layer_norm_rms_epsilon"]?.double ?? 1e-5),
            ropeTheta: m["llama.rope.freq_base"]?.double ?? 10000, ropeScaling: scaling,
            tieWordEmbeddings: false, attentionBias: false,
            bosTokenID: m["tokenizer.ggml.bos_token_id"]?.int,
            eosTokenIDs: m["tokenizer.ggml.eos_token_id"]?.int.map { [$0] } ?? [])
        try config.validate(file: file, fields: .gguf)
        return config
    }

    /// Throws when `names` (a model file's tensors) include a layer beyond `layers`: the file holds more
    /// layers than its config declares (`declaredBy`: the field). Missing layers fail where their first
    /// tensor is looked up.
    public static func checkNoExtraLayers(_ names: [String], layers: Int, declaredBy field: String, file: String) throws {
        if let extra = LlamaTensorNames.firstExtraLayerTensor(names, layers: layers) {
            let index = LlamaTensorNames.layerIndex(of: extra) ?? layers
            throw ModelError(
                file: file,
                "tensor `\(extra)` belongs to layer \(index), but \(field) declares \(layers) layer(s): the file holds more layers than its config")
        }
    }

    /// RoPE inverse frequencies (HF `_compute_default_rope_parameters` / llama3 scaling), length headDim/2.
    public var inverseFrequencies: [Double] {
        let half = headDim / 2
        var inv = (0..<half).map { i -> Double in
            // HF: base ** (arange(0, D, 2).float() / D), in float32.
            let exponent = Float(2 * i) / Float(headDim)
            return Double(1 / Float(pow(Double(Float(ropeTheta)), Double(exponent))))
        }
        switch ropeScaling {
        case .none: break
        case .linear(let factor): inv = inv.map { $0 / factor }
        case .llama3(let factor, let low, let high, let old):
            let lowWavelen = old / low, highWavelen = old / high
            inv = inv.map { f in
                let wavelen = 2 * Double.pi / f
                if wavelen < highWavelen { return f }
                if wavelen > lowWavelen { return f / factor }
                let smooth = (old / wavelen - low) / (high - low)
                return (1 - smooth) * f / factor + smooth * f
            }
        }
        return inv
    }
}

/// The bytes of a model's small file (config.json): a clear error when it is missing (`missing` says
/// what needs it) or is not a regular file (a FIFO would block the read, a device would never end).
func readModelFile(_ path: String, missing: String) throws -> [UInt8] {
    guard FileManager.default.fileExists(atPath: path) else { throw ModelError(file: path, missing) }
    do { return try RegularFile.read(path) } catch { throw ModelError(file: path, "cannot read: \(error)") }
}

/// A model file problem, naming the file.
public struct ModelError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var message: String
    public init(file: String, _ message: String) {
        self.file = file
        self.message = message
    }
    public var description: String { "\(file): \(message)" }
}
