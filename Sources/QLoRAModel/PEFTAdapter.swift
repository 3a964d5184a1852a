import Foundation
import QLoRAFormats
import QLoRAModel

/// A PEFT LoRA adapter directory (spec lora-and-peft-format §8): `adapter_config.json` and
/// `adapter_model.safetensors` with tensors `base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`
/// (`A [r, in]`) and `….lora_B.weight` (`B [out, r]`), as `PeftModel.save_pretrained` and our train stage write it.
///
/// Reading is strict: every tensor must be a `lora_A`/`lora_B` of one of the seven LLaMA projections, every
/// adapted projection of every layer needs both, shapes must agree with `r` and (when given) the model, and
/// config features that change the adapter's function but that we do not implement (DoRA, per-module rank or
/// alpha patterns, trained biases, extra saved modules, …) are refused rather than ignored. Errors name the file
/// and the tensor or key.
public struct PEFTAdapter: Sendable {
    public static let configFileName = "adapter_config.json"
    public static let weightsFileName = "adapter_model.safetensors"

    /// r, alpha, dropout, rsLoRA and the adapted projections (those with tensors).
    public var lora: LoRAConfig
    public var weights: LoRAWeights
    /// `base_model_name_or_path` from the config, when set.
    public var baseModelNameOrPath: String?

    public init(lora: LoRAConfig, weights: LoRAWeights, baseModelNameOrPath: String? = nil) {
        self.lora = lora
        self.weights = weights
        self.baseModelNameOrPath = baseModelNameOrPath
    }

    /// `W' = W + s·B·A` of one projection's adapter, as PEFT's `get_delta_weight` + merge computes it: `B·A`
    /// in fp32, then scaled by `s` and added (`weight` is `[out, in]` row-major).
    public static func merge(_ adapter: LoRAAdapter, scaling s: Float, into weight: inout [Float]) {
        precondition(weight.count == adapter.outFeatures * adapter.inFeatures, "weight and adapter shapes differ")
        let out = adapter.outFeatures, n = adapter.inFeatures, r = adapter.rank
        var delta = [Float](repeating: 0, count: n)
        for i in 0..<out {
            for j in 0..<n { delta[j] = 0 }
            for k in 0..<r {
                let b = adapter.b[i * r + k]
                if b == 0 { continue }
                adapter.a.withUnsafeBufferPointer { a in
                    let row = a.baseAddress! + k * n
                    for j in 0..<n { delta[j] += b * row[j] }
                }
            }
            weight.withUnsafeMutableBufferPointer { w in
                let row = w.baseAddress! + i * n
                for j in 0..<n { row[j] += s * delta[j] }
            }
        }
    }

    // MARK: Reading

    /// Reads `directory`. With `model`, the layer count and every tensor's `in`/`out` are checked against it.
    public static func load(directory: URL, model: LlamaConfig? = nil) throws -> PEFTAdapter {
        let configURL = directory.appendingPathComponent(configFileName)
        guard let bytes = FileManager.default.contents(atPath: configURL.path) else {
            throw PEFTAdapterError(file: configURL.path, "missing or unreadable (a PEFT adapter directory needs adapter_config.json)")
        }
        let parsed = try parseConfig(Array(bytes), file: configURL.path)
        let weightsURL = directory.appendingPathComponent(weightsFileName)
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            let bin = FileManager.default.fileExists(atPath: directory.appendingPathComponent("adapter_model.bin").path)
            throw PEFTAdapterError(file: weightsURL.path, bin ? "missing; adapter_model.bin (pickle) is not read: re-save with safe_serialization=True"
                                                           : "missing")
        }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: weightsURL.path) } catch { throw PEFTAdapterError(file: weightsURL.path, "\(error)") }
        return try read(file, config: parsed, model: model)
    }

    /// What `adapter_config.json` says, before the tensors are seen.
    public struct ParsedConfig: Sendable, Equatable {
        public var rank: Int
        public var alpha: Double
        public var dropout: Double
        public var useRSLoRA: Bool
        /// The projections `target_modules` names, or nil when it is a regex (then the tensors decide).
        public var targets: [Projection]?
        public var baseModelNameOrPath: String?
    }

    /// Parses and checks `adapter_config.json` (`file` labels errors). Missing `r`/`lora_alpha` take PEFT's
    /// defaults (8), as PEFT does when loading.
    public static func parseConfig(_ bytes: [UInt8], file: String) throws -> ParsedConfig {
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
        func number(_ key: String, default d: Double) throws -> Double {
            guard let v = root[key], !v.isNull else { return d }
            guard let n = v.numberValue, n.isFinite else { throw fail(key, "must be a number, got \(v.typeName)") }
            return n
        }
        let r = try number("r", default: 8)
        guard r >= 1, r == r.rounded(), r < 1_048_576 else { throw fail("r", "must be a positive integer, got \(r)") }
        let alpha = try number("lora_alpha", default: 8)
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
        if let bias = root["bias"]?.stringValue, bias != "none" {
            throw fail("bias", "is \(bias); only \"none\" is supported (no base biases are trained)")
        }
        var targets: [Projection]?
        switch root["target_modules"] {
        case .array(let items)?:
            var list: [Projection] = []
            for item in items {
                guard let s = item.stringValue else { throw fail("target_modules", "entries must be strings") }
                guard let p = Projection(rawValue: String(s.split(separator: ".").last ?? "")) else {
                    throw fail("target_modules", "`\(s)` is not one of the seven LLaMA projections (\(Projection.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                list.append(p)
            }
            targets = Projection.allCases.filter(list.contains)
        case .string(let s)?:
            targets = s == "all-linear" ? Projection.allCases : nil
        case nil, .null?:
            targets = nil
        case let other?:
            throw fail("target_modules", "must be a list of names or a string, got \(other.typeName)")
        }
        return ParsedConfig(rank: Int(r), alpha: alpha, dropout: dropout, useRSLoRA: rslora, targets: targets,
                            baseModelNameOrPath: root["base_model_name_or_path"]?.stringValue)
    }

    /// The tensor key's layer, projection and side, or nil when it is not a LoRA key of a LLaMA projection.
    static func parseKey(_ name: String) -> (layer: Int, projection: Projection, isA: Bool)? {
        let prefix = "base_model.model.model.layers."
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0, layer < 1 << 16 else { return nil }
        let tail = rest[rest.index(after: dot)...]
        for p in Projection.allCases {
            if tail == "\(p.modulePath).lora_A.weight" { return (layer, p, true) }
            if tail == "\(p.modulePath).lora_B.weight" { return (layer, p, false) }
        }
        return nil
    }

    static func read(_ file: SafetensorsFile, config: ParsedConfig, model: LlamaConfig?) throws -> PEFTAdapter {
        let path = file.path
        func fail(_ tensor: String?, _ why: String) -> PEFTAdapterError { PEFTAdapterError(file: path, tensor: tensor, why) }
        var a: [Int: [Projection: SafetensorsTensorInfo]] = [:], b = a
        for info in file.tensors {
            guard let key = parseKey(info.name) else {
                throw fail(info.name, "unexpected tensor: only lora_A/lora_B weights of the seven LLaMA projections are read")
            }
            guard info.dtype.convertsToFloat else { throw fail(info.name, "dtype \(info.dtype) is not a float type") }
            if key.isA { a[key.layer, default: [:]][key.projection] = info } else { b[key.layer, default: [:]][key.projection] = info }
        }
        guard !file.tensors.isEmpty else { throw fail(nil, "holds no tensors") }
        let present = Projection.allCases.filter { p in a.values.contains { $0[p] != nil } || b.values.contains { $0[p] != nil } }
        if let listed = config.targets {
            for p in present where !listed.contains(p) {
                throw fail(nil, "has \(p.rawValue) tensors, but target_modules does not list \(p.rawValue)")
            }
            for p in listed where !present.contains(p) {
                throw fail(nil, "target_modules lists \(p.rawValue), but there are no \(p.rawValue) tensors")
            }
        }
        let maxLayer = Set(a.keys).union(b.keys).max() ?? 0
        let layerCount = model?.layers ?? (maxLayer + 1)
        if maxLayer >= layerCount {
            throw fail(LoRAWeights.peftKey(layer: maxLayer, projection: present[0], isA: true),
                       "layer \(maxLayer) does not exist: the model has \(layerCount) layers")
        }
        let r = config.rank
        var shapes: [Projection: (out: Int, in: Int)] = [:]
        var layers: [[Projection: LoRAAdapter]] = []
        for i in 0..<layerCount {
            var layer: [Projection: LoRAAdapter] = [:]
            for p in present {
                let nameA = LoRAWeights.peftKey(layer: i, projection: p, isA: true)
                let nameB = LoRAWeights.peftKey(layer: i, projection: p, isA: false)
                guard let infoA = a[i]?[p] else { throw fail(nameA, "missing (every adapted projection of every layer needs lora_A and lora_B)") }
                guard let infoB = b[i]?[p] else { throw fail(nameB, "missing (every adapted projection of every layer needs lora_A and lora_B)") }
                guard infoA.shape.count == 2, infoA.shape[0] == r else { throw fail(nameA, "shape \(infoA.shape), expected [r = \(r), in]") }
                guard infoB.shape.count == 2, infoB.shape[1] == r else { throw fail(nameB, "shape \(infoB.shape), expected [out, r = \(r)]") }
                let found = (out: infoB.shape[0], in: infoA.shape[1])
                let expected = model.map { p.shape($0) } ?? shapes[p] ?? found
                if found.in != expected.in { throw fail(nameA, "shape \(infoA.shape), expected [\(r), \(expected.in)]") }
                if found.out != expected.out { throw fail(nameB, "shape \(infoB.shape), expected [\(expected.out), \(r)]") }
                shapes[p] = found
                let va: [Float], vb: [Float]
                do { va = try file.floats(infoA) } catch { throw fail(nameA, "\(error)") }
                do { vb = try file.floats(infoB) } catch { throw fail(nameB, "\(error)") }
                for (name, v) in [(nameA, va), (nameB, vb)] where !v.allSatisfy(\.isFinite) {
                    throw fail(name, "holds a non-finite value")
                }
                layer[p] = LoRAAdapter(rank: r, inFeatures: found.in, outFeatures: found.out, a: va, b: vb)
            }
            layers.append(layer)
        }
        let lora = LoRAConfig(rank: r, alpha: config.alpha, dropout: config.dropout, useRSLoRA: config.useRSLoRA, targets: present)
        return PEFTAdapter(lora: lora, weights: LoRAWeights(layers: layers), baseModelNameOrPath: config.baseModelNameOrPath)
    }

    // MARK: Writing

    /// Writes `adapter_config.json` (the field set spec §8.1 recommends, keys sorted) and
    /// `adapter_model.safetensors` (F32, metadata `format: pt`) into `directory` (created), each atomically.
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let names = weights.tensorNames, values = weights.tensors
        try SafetensorsWriter.write(floats: names.enumerated().map { (name: $1.name, shape: $1.shape, values: values[$0]) },
                                    metadata: ["format": "pt"], to: directory.appendingPathComponent(Self.weightsFileName))
        let config = JSONValue.object(JSONObject([
            ("alpha_pattern", .object(JSONObject())),
            ("base_model_name_or_path", baseModelNameOrPath.map { .string($0) } ?? .null), ("bias", .string("none")),
            ("fan_in_fan_out", .bool(false)), ("inference_mode", .bool(true)), ("init_lora_weights", .bool(true)),
            ("layers_pattern", .null), ("layers_to_transform", .null),
            ("lora_alpha", .number(lora.alpha)), ("lora_dropout", .number(lora.dropout)),
            ("modules_to_save", .null), ("peft_type", .string("LORA")), ("r", .number(Double(lora.rank))),
            ("rank_pattern", .object(JSONObject())), ("revision", .null),
            ("target_modules", .array(lora.targets.map { .string($0.rawValue) })), ("task_type", .string("CAUSAL_LM")),
            ("use_dora", .bool(false)), ("use_rslora", .bool(lora.useRSLoRA)),
        ]))
        try AtomicFile.write(Data(JSONWriter.encode(config) + [UInt8(ascii: "\n")]),
                             to: directory.appendingPathComponent(Self.configFileName))
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
