import Foundation

/// The file format of a PEFT LoRA adapter directory (spec lora-and-peft-format §8), as
/// `PeftModel.save_pretrained` writes it: `adapter_config.json` and `adapter_model.safetensors` with tensors
/// `base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_A.weight` (`A [r, in]`) and `….lora_B.weight`
/// (`B [out, r]`). This is the one place that knows the names, the keys and the rules; `PEFTAdapter`
/// (QLoRAModel) reads and writes the tensors with it, and `AdapterVerifier` checks packages with it.
///
/// The rules, from what PEFT itself writes (checked against the adapter PEFT 0.21.2 saved in
/// `Tests/QLoRAGradTests/Fixtures/lora/adapter`):
/// - `peft_type` must be `LORA`; `r` (a positive integer) and `lora_alpha` (> 0) are required: `save_pretrained`
///   writes the whole `LoraConfig`, so a file without them was not written by PEFT, and guessing PEFT's
///   constructor defaults (8) would silently change the adapter's scale.
/// - `lora_dropout` (default 0) and `use_rslora` (default false) are optional.
/// - Settings that change what the adapter computes and that we do not implement (DoRA, `fan_in_fan_out`, a
///   `lora_bias`, per-module `rank_pattern`/`alpha_pattern`, `layers_to_transform`, `modules_to_save`, …) are
///   refused rather than ignored; `bias` must be `none`.
/// - `target_modules` is a list of the seven LLaMA projection names (a dotted path counts by its last part),
///   `"all-linear"` (all seven), or another string, a regex we do not evaluate: then the tensors decide.
/// - Tensor keys are exactly the form above. Keys with PEFT's in-memory adapter name (`….lora_A.default.weight`)
///   are refused: `save_pretrained` strips the adapter name, so such a file is a raw `state_dict()` dump.
public enum PEFTAdapterFormat {
    public static let configFileName = "adapter_config.json"
    public static let weightsFileName = "adapter_model.safetensors"
    /// The prefix of every tensor key: the PEFT wrapper around an HF causal LM's decoder layers.
    public static let keyPrefix = "base_model.model.model.layers."

    /// The seven LLaMA projections in PEFT `target_modules` naming, in the order tensors are written.
    public static let modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    /// The module path inside a decoder layer (`self_attn.q_proj`, `mlp.down_proj`).
    public static func modulePath(_ module: String) -> String {
        ["q_proj", "k_proj", "v_proj", "o_proj"].contains(module) ? "self_attn.\(module)" : "mlp.\(module)"
    }

    /// `base_model.model.model.layers.{layer}.{modulePath}.lora_{A|B}.weight`.
    public static func key(layer: Int, module: String, isA: Bool) -> String {
        "\(keyPrefix)\(layer).\(modulePath(module)).lora_\(isA ? "A" : "B").weight"
    }

    /// The layer, module and side of a tensor key, or nil when it is not a LoRA key of a LLaMA projection.
    public static func parseKey(_ name: String) -> (layer: Int, module: String, isA: Bool)? {
        guard name.hasPrefix(keyPrefix) else { return nil }
        let rest = name.dropFirst(keyPrefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0, layer < 1 << 16 else { return nil }
        let tail = rest[rest.index(after: dot)...]
        for m in modules {
            if tail == "\(modulePath(m)).lora_A.weight" { return (layer, m, true) }
            if tail == "\(modulePath(m)).lora_B.weight" { return (layer, m, false) }
        }
        return nil
    }

    /// Why `name` is not a key `parseKey` accepts, for error messages.
    public static func whyNotAKey(_ name: String) -> String {
        if name.contains(".default.weight") {
            return "unexpected tensor: `.default` is PEFT's in-memory adapter name, which save_pretrained strips (re-save with save_pretrained)"
        }
        return "unexpected tensor: only lora_A/lora_B weights of the seven LLaMA projections are read"
    }

    /// What `adapter_config.json` says.
    public struct Config: Sendable, Equatable {
        public var rank: Int
        public var alpha: Double
        public var dropout: Double
        public var useRSLoRA: Bool
        /// Module names from `modules`, in that order; nil when `target_modules` is a regex or absent (then the
        /// tensors decide).
        public var targetModules: [String]?
        public var baseModelNameOrPath: String?

        public init(rank: Int, alpha: Double, dropout: Double = 0, useRSLoRA: Bool = false, targetModules: [String]?,
                    baseModelNameOrPath: String? = nil) {
            self.rank = rank
            self.alpha = alpha
            self.dropout = dropout
            self.useRSLoRA = useRSLoRA
            self.targetModules = targetModules
            self.baseModelNameOrPath = baseModelNameOrPath
        }

        /// `alpha / r`, or `alpha / √r` with rsLoRA; Float as PEFT's fp32 layers multiply by it.
        public var scaling: Float { Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)) }
    }

    /// Parses and checks `adapter_config.json` by the rules above (`file` labels errors).
    public static func parseConfig(_ bytes: [UInt8], file: String) throws -> Config {
        let root: JSONObject
        do {
            guard let o = try JSONParser.parse(bytes).objectValue else { throw PEFTAdapterError(file: file, "not a JSON object") }
            root = o
        } catch let e as PEFTAdapterError { throw e } catch { throw PEFTAdapterError(file: file, "invalid JSON: \(error)") }
        func fail(_ key: String, _ why: String) -> PEFTAdapterError { PEFTAdapterError(file: file, key: key, why) }
        func set(_ key: String) -> Bool {
            guard let v = root[key] else { return false }
            switch v {
            case .null, .bool(false): return false
            case .array(let a): return !a.isEmpty
            case .object(let o): return !o.isEmpty
            case .string(let s): return !s.isEmpty
            default: return true
            }
        }
        guard let type = root["peft_type"]?.stringValue else { throw fail("peft_type", "missing") }
        guard type == "LORA" else { throw fail("peft_type", "is \(type); only LORA adapters are read") }
        func number(_ key: String, default d: Double?) throws -> Double {
            guard let v = root[key], !v.isNull else {
                guard let d else { throw fail(key, "missing (PEFT's save_pretrained always writes it)") }
                return d
            }
            guard let n = v.numberValue, n.isFinite else { throw fail(key, "must be a number, got \(v.typeName)") }
            return n
        }
        let r = try number("r", default: nil)
        guard r >= 1, r == r.rounded(), r < 1_048_576 else { throw fail("r", "must be a positive integer, got \(r)") }
        let alpha = try number("lora_alpha", default: nil)
        guard alpha > 0 else { throw fail("lora_alpha", "must be > 0, got \(alpha)") }
        let dropout = try number("lora_dropout", default: 0)
        guard dropout >= 0, dropout < 1 else { throw fail("lora_dropout", "must be in [0, 1), got \(dropout)") }
        var rslora = false
        if let v = root["use_rslora"], !v.isNull {
            guard let b = v.boolValue else { throw fail("use_rslora", "must be a boolean") }
            rslora = b
        }
        // Settings that change what the adapter computes and that this reader does not implement.
        let unsupported: [(key: String, what: String)] = [
            ("use_dora", "DoRA (magnitude vectors)"), ("fan_in_fan_out", "fan_in_fan_out (Conv1D layout)"),
            ("lora_bias", "a bias on lora_B"), ("modules_to_save", "fully trained extra modules"),
            ("rank_pattern", "per-module ranks"), ("alpha_pattern", "per-module alphas"),
            ("layers_to_transform", "adapters on a subset of layers"), ("layer_replication", "layer replication"),
            ("use_qalora", "QA-LoRA"), ("trainable_token_indices", "trainable token embeddings"),
            ("target_parameters", "adapters on parameters"), ("alora_invocation_tokens", "activated LoRA"),
        ]
        for u in unsupported where set(u.key) { throw fail(u.key, "\(u.what) is not supported") }
        if let bias = root["bias"], !bias.isNull, bias.stringValue != "none" {
            throw fail("bias", "is \(bias.stringValue ?? bias.typeName); only \"none\" is supported (no base biases are trained)")
        }
        var targets: [String]?
        switch root["target_modules"] {
        case .array(let items)?:
            var list: [String] = []
            for item in items {
                guard let s = item.stringValue else { throw fail("target_modules", "entries must be strings") }
                let name = String(s.split(separator: ".").last ?? "")
                guard modules.contains(name) else {
                    throw fail("target_modules", "`\(s)` is not one of the seven LLaMA projections (\(modules.joined(separator: ", ")))")
                }
                list.append(name)
            }
            guard !list.isEmpty else { throw fail("target_modules", "is empty") }
            targets = modules.filter(list.contains)
        case .string(let s)?:
            targets = s == "all-linear" ? modules : nil
        case nil, .null?:
            targets = nil
        case let other?:
            throw fail("target_modules", "must be a list of names or a string, got \(other.typeName)")
        }
        return Config(rank: Int(r), alpha: alpha, dropout: dropout, useRSLoRA: rslora, targetModules: targets,
                      baseModelNameOrPath: root["base_model_name_or_path"]?.stringValue)
    }

    /// `adapter_config.json` for `config` (the field set spec §8.1 recommends, keys sorted, then a newline).
    /// `targetModules` nil writes `"all-linear"`.
    public static func encodeConfig(_ config: Config) -> [UInt8] {
        let json = JSONValue.object(JSONObject([
            ("alpha_pattern", .object(JSONObject())),
            ("base_model_name_or_path", config.baseModelNameOrPath.map { .string($0) } ?? .null), ("bias", .string("none")),
            ("fan_in_fan_out", .bool(false)), ("inference_mode", .bool(true)), ("init_lora_weights", .bool(true)),
            ("layers_pattern", .null), ("layers_to_transform", .null),
            ("lora_alpha", .number(config.alpha)), ("lora_dropout", .number(config.dropout)),
            ("modules_to_save", .null), ("peft_type", .string("LORA")), ("r", .number(Double(config.rank))),
            ("rank_pattern", .object(JSONObject())), ("revision", .null),
            ("target_modules", config.targetModules.map { .array($0.map { .string($0) }) } ?? .string("all-linear")),
            ("task_type", .string("CAUSAL_LM")),
            ("use_dora", .bool(false)), ("use_rslora", .bool(config.useRSLoRA)),
        ]))
        return JSONWriter.encode(json) + [UInt8(ascii: "\n")]
    }
}

/// An adapter directory that cannot be read; names the file and, when one is at fault, the tensor or key.
public struct PEFTAdapterError: Error, Sendable, CustomStringConvertible {
    public let file: String
    public let tensor: String?
    public let key: String?
    public let reason: String

    public init(file: String, tensor: String? = nil, key: String? = nil, _ reason: String) {
        self.file = file
        self.tensor = tensor
        self.key = key
        self.reason = reason
    }

    public var description: String {
        if let tensor { return "\(file): tensor `\(tensor)`: \(reason)" }
        if let key { return "\(file): `\(key)`: \(reason)" }
        return "\(file): \(reason)"
    }
}
