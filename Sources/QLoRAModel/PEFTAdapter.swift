import Foundation
import QLoRAFormats

/// A LoRA adapter for a LLaMA model: its hyperparameters and its pairs, as one PEFT adapter directory holds
/// them. The one reader and writer of adapter directories (train writes; evaluate, generate, logits, export,
/// package and verify read), with the rules of `PEFTAdapterFormat` (QLoRAFormats).
///
/// Reading is strict: every tensor must be a `lora_A`/`lora_B` of one of the seven LLaMA projections, every
/// adapted projection of every layer needs both, shapes must agree with `r` and (when given) the model, values
/// must be finite. Errors (`PEFTAdapterError`) name the file and the tensor or key. Tensors may be F32, BF16 or
/// F16; they are read as fp32.
public struct PEFTAdapter: Sendable, Equatable {
    public static let configFileName = PEFTAdapterFormat.configFileName
    public static let weightsFileName = PEFTAdapterFormat.weightsFileName

    /// r, alpha, dropout, rsLoRA and the adapted projections (those with tensors).
    public var lora: LoRAConfig
    public var weights: LoRAWeights
    /// `base_model_name_or_path` from the config, when set.
    public var baseModelNameOrPath: String?
    /// Where the adapter came from (a directory, or a description), for messages and reports.
    public var source: String

    public init(lora: LoRAConfig, weights: LoRAWeights, baseModelNameOrPath: String? = nil, source: String = "<memory>") {
        self.lora = lora
        self.weights = weights
        self.baseModelNameOrPath = baseModelNameOrPath
        self.source = source
    }

    /// The projections adapted in at least one layer, in `Projection.allCases` order.
    public var targets: [Projection] { weights.targets }

    /// Number of adapter parameters (A and B of every pair).
    public var parameterCount: Int { weights.parameterCount }

    // MARK: Reading

    /// Reads `directory`. With `model`, the layer count and every tensor's `in`/`out` are checked against it.
    public static func load(directory: URL, model: LlamaConfig? = nil) throws -> PEFTAdapter {
        let configURL = directory.appendingPathComponent(configFileName)
        guard let bytes = FileManager.default.contents(atPath: configURL.path) else {
            throw PEFTAdapterError(file: configURL.path, "missing or unreadable (a PEFT adapter directory needs adapter_config.json)")
        }
        let parsed = try PEFTAdapterFormat.parseConfig(Array(bytes), file: configURL.path)
        let weightsURL = directory.appendingPathComponent(weightsFileName)
        guard FileManager.default.fileExists(atPath: weightsURL.path) else {
            let bin = FileManager.default.fileExists(atPath: directory.appendingPathComponent("adapter_model.bin").path)
            throw PEFTAdapterError(file: weightsURL.path, bin ? "missing; adapter_model.bin (pickle) is not read: re-save with safe_serialization=True"
                                                           : "missing")
        }
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: weightsURL.path) } catch { throw PEFTAdapterError(file: weightsURL.path, "\(error)") }
        return try read(file, config: parsed, model: model, source: directory.path)
    }

    static func read(_ file: SafetensorsFile, config: PEFTAdapterFormat.Config, model: LlamaConfig?, source: String) throws -> PEFTAdapter {
        let path = file.path
        func fail(_ tensor: String?, _ why: String) -> PEFTAdapterError { PEFTAdapterError(file: path, tensor: tensor, why) }
        var a: [Int: [Projection: SafetensorsTensorInfo]] = [:], b = a
        for info in file.tensors {
            guard let key = PEFTAdapterFormat.parseKey(info.name), let p = Projection(rawValue: key.module) else {
                throw fail(info.name, PEFTAdapterFormat.whyNotAKey(info.name))
            }
            guard info.dtype.convertsToFloat else { throw fail(info.name, "dtype \(info.dtype) is not a float type") }
            if key.isA { a[key.layer, default: [:]][p] = info } else { b[key.layer, default: [:]][p] = info }
        }
        guard !file.tensors.isEmpty else { throw fail(nil, "holds no tensors") }
        let present = Projection.allCases.filter { p in a.values.contains { $0[p] != nil } || b.values.contains { $0[p] != nil } }
        if let listed = config.targetModules?.compactMap(Projection.init(rawValue:)) {
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
        var layers: [[Projection: LoRAPair]] = []
        for i in 0..<layerCount {
            var layer: [Projection: LoRAPair] = [:]
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
                layer[p] = LoRAPair(rank: r, inFeatures: found.in, outFeatures: found.out, a: va, b: vb)
            }
            layers.append(layer)
        }
        let lora = LoRAConfig(rank: r, alpha: config.alpha, dropout: config.dropout, useRSLoRA: config.useRSLoRA, targets: present)
        return PEFTAdapter(lora: lora, weights: LoRAWeights(layers: layers), baseModelNameOrPath: config.baseModelNameOrPath,
                           source: source)
    }

    // MARK: Writing

    /// Writes `adapter_config.json` (`PEFTAdapterFormat.encodeConfig`) and `adapter_model.safetensors` (F32,
    /// metadata `format: pt`, tensors in `LoRAWeights.tensorNames` order) into `directory` (created), each atomically.
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let names = weights.tensorNames, values = weights.tensors
        try SafetensorsWriter.write(floats: names.enumerated().map { (name: $1.name, shape: $1.shape, values: values[$0]) },
                                    metadata: ["format": "pt"], to: directory.appendingPathComponent(Self.weightsFileName))
        let config = PEFTAdapterFormat.Config(rank: lora.rank, alpha: lora.alpha, dropout: lora.dropout, useRSLoRA: lora.useRSLoRA,
                                              targetModules: lora.targets.map(\.rawValue), baseModelNameOrPath: baseModelNameOrPath)
        try AtomicFile.write(Data(PEFTAdapterFormat.encodeConfig(config)), to: directory.appendingPathComponent(Self.configFileName))
    }
}
