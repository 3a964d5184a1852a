import Crypto
import Foundation

/// `manifest.json` inside an adapter package: what every other file is (sha256 and size), and where the
/// adapter came from: the base model's files and architecture, the datasets, the tokenizer and chat
/// template, the full job spec, the metrics, and the tool that made it.
///
/// The manifest carries no timestamps or host names, so packaging the same adapter twice gives the same
/// bytes. It protects itself too: `manifest_sha256` is the SHA-256 of the manifest's own bytes with that
/// field's value replaced by 64 zeros (``selfDigest(of:)``), so flipping any byte of any member, the
/// manifest included, fails verification and names the member.
public struct AdapterManifest: Codable, Sendable, Equatable {
    public static let formatName = "qlora-adapter"
    public static let currentFormatVersion = 1
    public static let fileName = "manifest.json"

    public struct File: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var size: Int64
        public init(path: String, sha256: String, size: Int64) {
            self.path = path
            self.sha256 = sha256
            self.size = size
        }
    }

    /// The base model's shape: enough to check an adapter's tensor shapes without the model at hand.
    public struct Architecture: Codable, Sendable, Equatable {
        public var modelType: String
        public var hiddenSize: Int
        public var intermediateSize: Int
        public var layers: Int
        public var heads: Int
        public var kvHeads: Int
        public var headDim: Int
        public var vocabSize: Int

        public init(modelType: String, hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int, kvHeads: Int,
                    headDim: Int, vocabSize: Int) {
            self.modelType = modelType
            self.hiddenSize = hiddenSize
            self.intermediateSize = intermediateSize
            self.layers = layers
            self.heads = heads
            self.kvHeads = kvHeads
            self.headDim = headDim
            self.vocabSize = vocabSize
        }

        /// `[out, in]` of a LLaMA projection by its PEFT module name, nil for an unknown name.
        public func shape(of module: String) -> (out: Int, in: Int)? {
            let q = heads * headDim, kv = kvHeads * headDim
            switch module {
            case "q_proj": return (q, hiddenSize)
            case "k_proj", "v_proj": return (kv, hiddenSize)
            case "o_proj": return (hiddenSize, q)
            case "gate_proj", "up_proj": return (intermediateSize, hiddenSize)
            case "down_proj": return (hiddenSize, intermediateSize)
            default: return nil
            }
        }

        enum CodingKeys: String, CodingKey {
            case modelType = "model_type", hiddenSize = "hidden_size", intermediateSize = "intermediate_size"
            case layers = "num_hidden_layers", heads = "num_attention_heads", kvHeads = "num_key_value_heads"
            case headDim = "head_dim", vocabSize = "vocab_size"
        }
    }

    public struct BaseModel: Codable, Sendable, Equatable {
        /// The model path as the job spec names it.
        public var source: String
        /// Content hashes of the source files (the identity of the base weights).
        public var files: [File]
        public var architecture: Architecture
        /// The 4-bit quantization the adapter was trained over (quant_type, blocksize, double_quant, compute_dtype).
        public var quantization: [String: String]
        /// Digest of the prepare stage's outputs (the exact quantized weights trained against).
        public var preparedDigest: String

        public init(source: String, files: [File], architecture: Architecture, quantization: [String: String],
                    preparedDigest: String) {
            self.source = source
            self.files = files
            self.architecture = architecture
            self.quantization = quantization
            self.preparedDigest = preparedDigest
        }

        enum CodingKeys: String, CodingKey {
            case source, files, architecture, quantization, preparedDigest = "prepared_digest"
        }
    }

    public struct Dataset: Codable, Sendable, Equatable {
        public var path: String
        public var format: String
        public var sha256: String
        public var size: Int64
        public var rows: Int
        public var accepted: Int

        public init(path: String, format: String, sha256: String, size: Int64, rows: Int, accepted: Int) {
            self.path = path
            self.format = format
            self.sha256 = sha256
            self.size = size
            self.rows = rows
            self.accepted = accepted
        }
    }

    public struct Tokenizer: Codable, Sendable, Equatable {
        public var source: String
        public var files: [File]
        /// The chat template the training examples were rendered with (Jinja source), nil for none.
        public var chatTemplate: String?
        public var eosToken: String?
        public var eosTokenID: Int?
        public var bosToken: String?

        public init(source: String, files: [File], chatTemplate: String?, eosToken: String?, eosTokenID: Int?,
                    bosToken: String?) {
            self.source = source
            self.files = files
            self.chatTemplate = chatTemplate
            self.eosToken = eosToken
            self.eosTokenID = eosTokenID
            self.bosToken = bosToken
        }

        enum CodingKeys: String, CodingKey {
            case source, files, chatTemplate = "chat_template", eosToken = "eos_token", eosTokenID = "eos_token_id"
            case bosToken = "bos_token"
        }
    }

    public struct Adapter: Codable, Sendable, Equatable {
        public var peftType: String
        public var rank: Int
        public var alpha: Double
        public var dropout: Double
        public var useRSLoRA: Bool
        public var targetModules: [String]
        public var trainableParameters: Int

        public init(rank: Int, alpha: Double, dropout: Double, useRSLoRA: Bool, targetModules: [String],
                    trainableParameters: Int) {
            self.peftType = "LORA"
            self.rank = rank
            self.alpha = alpha
            self.dropout = dropout
            self.useRSLoRA = useRSLoRA
            self.targetModules = targetModules
            self.trainableParameters = trainableParameters
        }

        enum CodingKeys: String, CodingKey {
            case peftType = "peft_type", rank = "r", alpha = "lora_alpha", dropout = "lora_dropout"
            case useRSLoRA = "use_rslora", targetModules = "target_modules", trainableParameters = "trainable_parameters"
        }
    }

    public struct Tool: Codable, Sendable, Equatable {
        public var name: String
        public var version: String
        /// Compiler, configuration and platform of the build that wrote the package.
        public var build: [String: String]

        public init(name: String, version: String, build: [String: String]) {
            self.name = name
            self.version = version
            self.build = build
        }
    }

    public var format: String
    public var formatVersion: Int
    public var name: String
    /// Every other member of the package, sorted by path.
    public var files: [File]
    public var baseModel: BaseModel
    public var datasets: [Dataset]
    /// Example, sequence and token counts of the train and eval splits.
    public var data: [String: Int]
    public var tokenizer: Tokenizer
    public var adapter: Adapter
    /// Training and evaluation metrics (final loss, eval loss base vs adapter, accuracy…).
    public var metrics: [String: Double]
    /// The job spec as run (normalized YAML).
    public var jobSpec: String
    public var tool: Tool
    public var manifestSHA256: String

    public init(name: String, files: [File], baseModel: BaseModel, datasets: [Dataset], data: [String: Int],
                tokenizer: Tokenizer, adapter: Adapter, metrics: [String: Double], jobSpec: String, tool: Tool) {
        self.format = Self.formatName
        self.formatVersion = Self.currentFormatVersion
        self.name = name
        self.files = files.sorted { $0.path < $1.path }
        self.baseModel = baseModel
        self.datasets = datasets
        self.data = data
        self.tokenizer = tokenizer
        self.adapter = adapter
        self.metrics = metrics
        self.jobSpec = jobSpec
        self.tool = tool
        self.manifestSHA256 = Self.placeholder
    }

    enum CodingKeys: String, CodingKey {
        case format, formatVersion = "format_version", name, files, baseModel = "base_model", datasets, data
        case tokenizer, adapter, metrics, jobSpec = "job_spec", tool, manifestSHA256 = "manifest_sha256"
    }

    static let placeholder = String(repeating: "0", count: 64)

    /// The manifest's bytes (sorted keys, pretty, trailing newline) with `manifest_sha256` filled in.
    public func encoded() throws -> Data {
        var copy = self
        copy.manifestSHA256 = Self.placeholder
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var data = try encoder.encode(copy)
        data.append(0x0A)
        guard let digest = Self.selfDigest(of: data) else { preconditionFailure("manifest lacks its own digest field") }
        return Self.replacingDigest(in: data, with: digest)!
    }

    /// SHA-256 of `bytes` with the value of `"manifest_sha256"` replaced by zeros; nil if the field is missing.
    public static func selfDigest(of bytes: Data) -> String? {
        guard let blanked = replacingDigest(in: bytes, with: placeholder) else { return nil }
        return SHA256.hash(data: blanked).hexString
    }

    /// `bytes` with the 64-character value of `"manifest_sha256"` replaced by `digest`.
    static func replacingDigest(in bytes: Data, with digest: String) -> Data? {
        let key = Array("\"manifest_sha256\" : \"".utf8)
        let raw = [UInt8](bytes)
        guard raw.count >= key.count + 64 else { return nil }
        var found: Int?
        for start in 0...(raw.count - key.count - 64) where raw[start] == key[0] {
            if Array(raw[start..<(start + key.count)]) == key {
                guard found == nil else { return nil }  // the field must be unique
                found = start + key.count
            }
        }
        guard let at = found, raw[at + 64] == UInt8(ascii: "\"") else { return nil }
        var out = raw
        out.replaceSubrange(at..<(at + 64), with: Array(digest.utf8))
        return Data(out)
    }
}
