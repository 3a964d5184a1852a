import Foundation
import QLoRAFormats

/// Reads a PEFT LoRA adapter directory (spec lora-and-peft-format §8): `adapter_config.json` and
/// `adapter_model.safetensors`, as `PeftModel.save_pretrained` and our train stage write them.
///
/// From the config: `r`, `lora_alpha`, `use_rslora` (scaling `alpha/r` or `alpha/√r`), `target_modules`
/// (a list, or `"all-linear"`). Refused with an error naming the field: `peft_type` other than LORA,
/// `use_dora`, `fan_in_fan_out`, `bias` other than `none`, a non-empty `rank_pattern`/`alpha_pattern`,
/// `modules_to_save`, a regex `target_modules`. The tensors must be exactly
/// `base_model.model.model.layers.{i}.{self_attn|mlp}.{proj}.lora_{A|B}.weight` (PEFT's `.default` adapter name
/// is accepted and ignored) for every layer and target, A `[r, in]` and B `[out, r]`, in any float dtype
/// (F32, BF16, F16; converted to fp32). Errors name the file and the tensor.
public enum AdapterLoader {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"

    /// The adapter's hyperparameters as read from `adapter_config.json`.
    public struct Settings: Sendable, Equatable {
        public var rank: Int
        public var alpha: Double
        public var useRSLoRA: Bool
        /// nil: every projection that has tensors (`"all-linear"`).
        public var targets: [Projection]?

        /// `alpha / r`, or `alpha / √r` with rsLoRA; Float as PEFT's fp32 layers multiply by it.
        public var scaling: Float { Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)) }
    }

    /// Loads the adapter in `directory` for a model with `config`.
    public static func load(directory: String, config: LlamaConfig) throws -> LlamaAdapter {
        let dir = URL(fileURLWithPath: directory)
        let settings = try readSettings(dir.appendingPathComponent(configFile).path)
        return try readTensors(dir.appendingPathComponent(weightsFile).path, settings: settings, config: config,
                               source: directory)
    }

    /// Parses and checks `adapter_config.json`.
    public static func readSettings(_ path: String) throws -> Settings {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelError(file: path, "cannot read the adapter config (an adapter directory needs \(configFile))")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(Array(data)) } catch { throw ModelError(file: path, "not valid JSON: \(error)") }
        guard let o = json.objectValue else { throw ModelError(file: path, "expected a JSON object, got \(json.typeName)") }
        func field(_ key: String) -> JSONValue? {
            guard let v = o[key], !v.isNull else { return nil }
            return v
        }
        func number(_ key: String) throws -> Double {
            guard let v = field(key) else { throw ModelError(file: path, "`\(key)` is missing") }
            guard let n = v.numberValue, n.isFinite else { throw ModelError(file: path, "`\(key)` must be a number, got \(v.typeName)") }
            return n
        }
        func flag(_ key: String) throws -> Bool {
            guard let v = field(key) else { return false }
            guard let b = v.boolValue else { throw ModelError(file: path, "`\(key)` must be true or false, got \(v.typeName)") }
            return b
        }
        func mustBeEmpty(_ key: String) throws {
            guard let v = field(key) else { return }
            let empty = v.objectValue?.isEmpty ?? v.arrayValue?.isEmpty ?? false
            if !empty { throw ModelError(file: path, "`\(key)` is not supported (per-module overrides); it must be empty") }
        }
        if let type = field("peft_type"), type.stringValue != "LORA" {
            throw ModelError(file: path, "`peft_type` is \(type.stringValue.map { "`\($0)`" } ?? type.typeName); only LORA adapters load")
        }
        let rankValue = try number("r")
        guard rankValue >= 1, rankValue == rankValue.rounded(), rankValue <= 65536 else {
            throw ModelError(file: path, "`r` must be a positive integer, got \(rankValue)")
        }
        let alpha = try number("lora_alpha")
        guard alpha > 0 else { throw ModelError(file: path, "`lora_alpha` must be > 0, got \(alpha)") }
        if try flag("use_dora") { throw ModelError(file: path, "`use_dora` is true: DoRA adapters are not supported") }
        if try flag("fan_in_fan_out") { throw ModelError(file: path, "`fan_in_fan_out` is true: only nn.Linear layouts are supported") }
        if let bias = field("bias"), bias.stringValue != "none" {
            throw ModelError(file: path, "`bias` is \(bias.stringValue.map { "`\($0)`" } ?? bias.typeName); only `none` is supported")
        }
        try mustBeEmpty("rank_pattern")
        try mustBeEmpty("alpha_pattern")
        try mustBeEmpty("modules_to_save")
        var targets: [Projection]?
        switch field("target_modules") {
        case .string("all-linear")?: targets = nil
        case .string(let s)?: throw ModelError(file: path, "`target_modules` is the pattern `\(s)`; give a list of module names")
        case .array(let items)?:
            targets = []
            for item in items {
                guard let name = item.stringValue, let p = Projection(rawValue: name) else {
                    throw ModelError(file: path, "`target_modules` lists \(item.stringValue.map { "`\($0)`" } ?? item.typeName), not one of \(Projection.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                targets!.append(p)
            }
            guard !targets!.isEmpty else { throw ModelError(file: path, "`target_modules` is empty") }
        case nil: targets = nil
        case let v?: throw ModelError(file: path, "`target_modules` must be a list of names, got \(v.typeName)")
        }
        return Settings(rank: Int(rankValue), alpha: alpha, useRSLoRA: try flag("use_rslora"),
                        targets: targets.map { t in Projection.allCases.filter(t.contains) })
    }

    /// Reads and shape-checks the tensors of `adapter_model.safetensors`.
    public static func readTensors(_ path: String, settings: Settings, config: LlamaConfig, source: String) throws -> LlamaAdapter {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: path) } catch { throw ModelError(file: path, "\(error)") }
        // Key → (layer, projection, isA), with PEFT's in-memory adapter name `.default` tolerated.
        var found: [String: (layer: Int, projection: Projection, isA: Bool)] = [:]
        let prefix = "base_model.model.model.layers."
        for info in file.tensors {
            let name = info.name.replacingOccurrences(of: ".default.weight", with: ".weight")
            guard name.hasPrefix(prefix) else {
                throw ModelError(file: path, "tensor `\(info.name)` is not a LoRA weight of a decoder layer (expected \(prefix)…)")
            }
            let parts = name.dropFirst(prefix.count).split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 5, let layer = Int(parts[0]), layer >= 0, layer < config.layers,
                  let p = Projection(rawValue: String(parts[2])), p.modulePath == "\(parts[1]).\(parts[2])",
                  parts[3] == "lora_A" || parts[3] == "lora_B", parts[4] == "weight" else {
                throw ModelError(file: path, "unexpected tensor `\(info.name)` (expected \(prefix){0..<\(config.layers)}.{self_attn|mlp}.{projection}.lora_{A|B}.weight)")
            }
            if let t = settings.targets, !t.contains(p) {
                throw ModelError(file: path, "tensor `\(info.name)`: \(p.rawValue) is not in target_modules of \(configFile)")
            }
            guard found.updateValue((layer, p, parts[3] == "lora_A"), forKey: name) == nil else {
                throw ModelError(file: path, "tensor `\(info.name)` appears twice")
            }
        }
        let targets = settings.targets ?? Projection.allCases.filter { p in found.values.contains { $0.projection == p } }
        guard !targets.isEmpty else { throw ModelError(file: path, "no LoRA tensors") }
        let r = settings.rank
        var layers: [[Projection: LowRankDelta]] = Array(repeating: [:], count: config.layers)
        for l in 0..<config.layers {
            for p in targets {
                let (out, inFeatures) = p.shape(config)
                func tensor(_ isA: Bool, _ shape: [Int]) throws -> [Float] {
                    let key = "\(prefix)\(l).\(p.modulePath).lora_\(isA ? "A" : "B").weight"
                    guard let info = file.tensor(named: key) ?? file.tensor(named: key.replacingOccurrences(of: ".weight", with: ".default.weight")) else {
                        throw ModelError(file: path, "tensor `\(key)` is missing (target_modules has \(p.rawValue), the model \(config.layers) layers)")
                    }
                    guard info.shape == shape else {
                        throw ModelError(file: path, "tensor `\(info.name)` has shape \(info.shape), expected \(shape) (r = \(r), \(p.rawValue) maps \(inFeatures) → \(out))")
                    }
                    do { return try file.floats(info) } catch { throw ModelError(file: path, "tensor `\(info.name)`: \(error)") }
                }
                let a = try tensor(true, [r, inFeatures]), b = try tensor(false, [out, r])
                guard a.allSatisfy(\.isFinite), b.allSatisfy(\.isFinite) else {
                    throw ModelError(file: path, "layer \(l) \(p.rawValue): the adapter holds NaN or infinite values")
                }
                layers[l][p] = LowRankDelta(rank: r, inFeatures: inFeatures, outFeatures: out, a: a, b: b, scale: settings.scaling)
            }
        }
        return LlamaAdapter(layers: layers, source: source)
    }
}
