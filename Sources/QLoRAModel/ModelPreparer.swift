import Foundation
import QLoRACore
import QLoRAFormats

/// What to quantize and how.
public struct PrepareOptions: Sendable, Equatable {
    public var quant: FourBitOptions
    /// Storage dtype of the tensors kept unquantized (embeddings, norms, lm_head).
    public var keptDType: FloatStorage
    /// `bnb_4bit_compute_dtype` recorded in config.json.
    public var computeDType: FloatStorage
    /// Projections to quantize (PEFT names); default all seven.
    public var targetModules: Set<String>

    public static let allProjections: Set<String> = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    public init(quant: FourBitOptions = FourBitOptions(), keptDType: FloatStorage = .float32,
                computeDType: FloatStorage = .float32, targetModules: Set<String> = allProjections) {
        self.quant = quant
        self.keptDType = keptDType
        self.computeDType = computeDType
        self.targetModules = targetModules
    }
}

/// Bytes and parameters per component of a prepared model.
public struct PrepareReport: Sendable {
    public struct Component: Sendable {
        public var name: String
        public var parameters: Int
        public var bytes: Int
        public var dtype: String
    }

    public var components: [Component]
    /// Parameters and storage bits of the 4-bit part (codes + block scales, what "4.127 bits" counts).
    public var quantizedParameters: Int
    public var quantizedBits: Int
    public var fileBytes: Int
    public var sourceBytes: Int
    public var seconds: Double
    public var peakRSSBytes: Int

    public var bitsPerQuantizedParameter: Double { Double(quantizedBits) / Double(max(1, quantizedParameters)) }

    public var json: JSONObject {
        JSONObject([
            ("components", .array(components.map {
                .object(JSONObject([("name", .string($0.name)), ("parameters", .number(Double($0.parameters))),
                                    ("bytes", .number(Double($0.bytes))), ("dtype", .string($0.dtype))]))
            })),
            ("quantized_parameters", .number(Double(quantizedParameters))),
            ("bits_per_quantized_parameter", .number((bitsPerQuantizedParameter * 10000).rounded() / 10000)),
            ("file_bytes", .number(Double(fileBytes))),
            ("source_bytes", .number(Double(sourceBytes))),
            ("seconds", .number((seconds * 1000).rounded() / 1000)),
            ("peak_rss_bytes", .number(Double(peakRSSBytes))),
        ])
    }
}

/// Turns a base model (HF directory or GGUF) into a bitsandbytes-layout 4-bit checkpoint directory:
/// `config.json` (with `quantization_config`), `model.safetensors`, and the tokenizer files when the source
/// has them. Streams one tensor at a time: peak memory ≈ the largest source tensor in fp32 + its quantized
/// form + constants, whatever the model size (source pages are released after each tensor).
public enum ModelPreparer {
    /// One tensor of the source in HF naming.
    struct SourceTensor {
        let name: String
        let shape: [Int]
        let load: () throws -> [Float]
        let release: () -> Void
    }

    public static let modelFileName = "model.safetensors"
    /// Tokenizer and generation files copied along with a model's weights.
    public static let tokenizerFiles = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                                 "chat_template.jinja"]

    /// Prepares `source` into the directory `output` (created; files written atomically).
    public static func prepare(source: String, into output: URL, options: PrepareOptions,
                               progress: (_ done: Int, _ total: Int, _ tensor: String) -> Void = { _, _, _ in }) throws -> PrepareReport {
        let started = Date()
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let (config, baseConfig, tensors, sourceBytes) = try openSource(source)

        func isQuantized(_ name: String) -> Bool {
            guard name.hasPrefix("model.layers."), name.hasSuffix("_proj.weight") else { return false }
            let module = name.split(separator: ".").dropLast().last.map(String.init) ?? ""
            return options.targetModules.contains(module)
        }
        let kept: SafetensorsDType = switch options.keptDType {
        case .float32: .f32
        case .bfloat16: .bf16
        case .float16: .f16
        }
        for t in tensors where isQuantized(t.name) && t.shape.count != 2 {
            throw ModelError(file: source, "\(t.name): expected a 2-D weight, got \(t.shape)")
        }
        let items = tensors.map { t in
            BitsAndBytesStreamQuantizer.Item(
                name: t.name, shape: t.shape,
                action: isQuantized(t.name) ? .quantize(dtype: options.computeDType, load: t.load) : .keepFloats(dtype: kept, load: t.load),
                release: t.release)
        }
        let modelURL = output.appendingPathComponent(modelFileName)
        let written = try BitsAndBytesStreamQuantizer.write(items, options: options.quant, to: modelURL, metadata: ["format": "pt"],
                                                            progress: progress)

        var components: [String: PrepareReport.Component] = [:]
        func account(_ component: String, _ params: Int, _ bytes: Int, _ dtype: String) {
            components[component, default: .init(name: component, parameters: 0, bytes: 0, dtype: dtype)].parameters += params
            components[component]!.bytes += bytes
        }
        var quantizedParameters = 0, quantizedBits = 0
        for w in written {
            if let bits = w.bitsPerParameter {
                quantizedParameters += w.parameters
                quantizedBits += Int((bits * Double(w.parameters)).rounded())
                account("linear weights (4-bit)", w.parameters, w.bytes, options.quant.type.rawValue)
            } else {
                let component = w.name.contains("embed") ? "embeddings" : w.name.hasPrefix("lm_head") ? "lm_head"
                    : w.name.hasSuffix("norm.weight") ? "norms" : "other"
                account(component, w.parameters, w.bytes, options.keptDType.rawValue)
            }
        }

        var configJSON = baseConfig ?? config.hfConfigJSON(dtype: options.keptDType.rawValue)
        configJSON["torch_dtype"] = .string(options.keptDType.rawValue)
        configJSON["quantization_config"] = nil
        var configBytes: [UInt8] = []
        JSONWriter.write(configJSON, into: &configBytes)
        configBytes = BitsAndBytesFormat.addingQuantizationConfig(
            to: configBytes, type: options.quant.type, doubleQuant: options.quant.doubleQuant,
            computeDType: options.computeDType.rawValue)
        try AtomicFile.write(Data(configBytes), to: output.appendingPathComponent("config.json"))

        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory), isDirectory.boolValue {
            for name in tokenizerFiles {
                let from = URL(fileURLWithPath: source).appendingPathComponent(name)
                if let data = FileManager.default.contents(atPath: from.path) {
                    try AtomicFile.write(data, to: output.appendingPathComponent(name))
                }
            }
        }
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: modelURL.path)[.size] as? Int) ?? 0
        let order = ["linear weights (4-bit)", "embeddings", "lm_head", "norms", "other"]
        return PrepareReport(components: order.compactMap { components[$0] }, quantizedParameters: quantizedParameters,
                             quantizedBits: quantizedBits, fileBytes: fileBytes, sourceBytes: sourceBytes,
                             seconds: Date().timeIntervalSince(started), peakRSSBytes: ResourceUsage.peakRSSBytes)
    }

    /// The source's config, its config.json (HF sources), its tensors in HF naming, and its size on disk.
    static func openSource(_ path: String) throws -> (LlamaConfig, JSONObject?, [SourceTensor], Int) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError(file: path, "no such file or directory")
        }
        if isDirectory.boolValue {
            let configURL = URL(fileURLWithPath: path).appendingPathComponent("config.json")
            let bytes = try readModelFile(configURL.path, missing: "missing: an HF model directory needs config.json")
            let config = try LlamaConfig.fromHF(Array(bytes), file: configURL.path)
            guard let object = try JSONParser.parse(Array(bytes)).objectValue else {
                throw ModelError(file: configURL.path, "not a JSON object")
            }
            if object["quantization_config"] != nil {
                throw ModelError(file: configURL.path, "this model is already quantized (quantization_config is set); prepare needs the unquantized base")
            }
            let checkpoint = try SafetensorsCheckpoint(path: path)
            try LlamaConfig.checkNoExtraLayers(checkpoint.names, layers: config.layers, declaredBy: "config.json num_hidden_layers", file: path)
            var tensors: [SourceTensor] = []
            for name in checkpoint.names {
                guard let (file, info) = checkpoint.tensor(named: name) else { continue }
                if name == "lm_head.weight", config.tieWordEmbeddings { continue }
                if name.hasSuffix(".rotary_emb.inv_freq") { continue }
                tensors.append(SourceTensor(name: name, shape: info.shape, load: { try file.floats(info) },
                                            release: { file.releasePages(info) }))
            }
            let size = checkpoint.files.reduce(0) { $0 + $1.fileSize }
            return (config, object, sortedForWriting(tensors), size)
        }
        guard path.lowercased().hasSuffix(".gguf") else { throw ModelError(file: path, "expected an HF model directory or a .gguf file") }
        let file = try GGUFFile(path: path)
        var config = try LlamaConfig.fromGGUF(file.metadata, file: path)
        // GGUF marks a tied lm_head by leaving `output.weight` out.
        let output = LlamaTensorNames.model.first { $0.hf == "lm_head.weight" }!.gguf
        config.tieWordEmbeddings = file.tensor(named: output) == nil
        try LlamaConfig.checkNoExtraLayers(file.tensors.map(\.name), layers: config.layers, declaredBy: "llama.block_count", file: path)
        var tensors: [SourceTensor] = []
        for e in LlamaTensorNames.entries(layers: config.layers) where !(config.tieWordEmbeddings && e.gguf == output) {
            guard let info = file.tensor(named: e.gguf) else { throw ModelError(file: path, "tensor `\(e.gguf)` is missing") }
            let shape = Array(info.dims.reversed())
            let heads = e.permutedHeads.map { $0 == .query ? config.heads : config.kvHeads }
            tensors.append(SourceTensor(name: e.hf, shape: shape, load: {
                var values = try file.floats(info)
                if let heads { GGUFDequantizer.unpermuteRows(&values, rows: shape[0], columns: shape[1], heads: heads) }
                return values
            }, release: { file.releasePages(info) }))
        }
        return (config, nil, sortedForWriting(tensors), file.fileSize)
    }

    /// Embeddings first, then layers in numeric order, then the final norm and lm_head (so the file reads in
    /// model order and a streaming reader touches it front to back).
    static func sortedForWriting(_ tensors: [SourceTensor]) -> [SourceTensor] {
        func key(_ name: String) -> (Int, Int, String) {
            if name.hasPrefix("model.embed_tokens") { return (0, 0, name) }
            if name.hasPrefix("model.layers.") {
                let layer = Int(name.split(separator: ".")[2]) ?? 0
                return (1, layer, name)
            }
            if name.hasPrefix("lm_head") { return (3, 0, name) }
            return (2, 0, name)
        }
        return tensors.sorted { key($0.name) < key($1.name) }
    }
}

/// Process resource figures for reports (Linux `/proc/self/status`; 0 where unavailable).
public enum ResourceUsage {
    /// Peak resident set size of this process so far (VmHWM), in bytes.
    public static var peakRSSBytes: Int { statusKilobytes("VmHWM:") * 1024 }

    /// Current resident set size (VmRSS), in bytes.
    public static var currentRSSBytes: Int { statusKilobytes("VmRSS:") * 1024 }

    static func statusKilobytes(_ key: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(key) {
            return line.split(separator: " ").compactMap { Int($0) }.first ?? 0
        }
        return 0
    }
}
