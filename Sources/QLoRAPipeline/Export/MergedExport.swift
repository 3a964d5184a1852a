import Foundation
import QLoRACore
import QLoRAFormats
import QLoRAModel
import QLoRATraining

/// An export failed; the message names the file, tensor or setting at fault.
public struct ExportError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Merges a PEFT LoRA adapter into its base model and writes a plain HF checkpoint (spec lora-and-peft-format §9,
/// option 2): `config.json` (no `quantization_config`, `torch_dtype` = the export dtype), `model.safetensors` with
/// HF names, the tokenizer files, and `fidelity.json`.
///
/// Every adapted projection becomes `W' = W + s·B·A` (fp32, PEFT's merge arithmetic), where `W` is the base
/// weight as the adapter was trained against it: for a prepared 4-bit base, the NF4 weight dequantized with its
/// stored block scales. Merging into the dequantized weights reproduces the trained function; merging into an
/// original 16-bit checkpoint would differ from it by the quantization error of `W`. All tensors are then
/// rounded to the export dtype.
///
/// Streaming: one source tensor is loaded (and dequantized) at a time, merged, encoded and written at its final
/// offset, so peak memory is about the largest tensor, never a second copy of the model. The checkpoint is
/// built in a temporary sibling directory and renamed into place only when complete (fidelity included).
public enum MergedExport {
    public enum DType: String, CaseIterable, Sendable {
        case bf16, fp16, fp32

        var safetensors: SafetensorsDType {
            switch self {
            case .bf16: .bf16
            case .fp16: .f16
            case .fp32: .f32
            }
        }

        /// The `torch_dtype` name in config.json.
        public var torchName: String {
            switch self {
            case .bf16: "bfloat16"
            case .fp16: "float16"
            case .fp32: "float32"
            }
        }
    }

    public struct Parameters: Sendable {
        /// An HF directory, a GGUF file or a prepared 4-bit directory.
        public var model: String
        /// A PEFT adapter directory.
        public var adapter: URL
        /// The checkpoint directory to create.
        public var output: URL
        public var dtype: DType
        /// Tokenizer for the fidelity prompts (and whose files are copied when it is a directory); default: the model's.
        public var tokenizer: String?
        /// Fidelity prompts; nil: `ExportFidelity.defaultPrompts`.
        public var prompts: [String]?
        /// Measure fidelity (loads the base + adapter, then the export: one model in memory at a time).
        public var fidelity: Bool
        /// Replace an existing `output`.
        public var force: Bool

        public init(model: String, adapter: URL, output: URL, dtype: DType, tokenizer: String? = nil, prompts: [String]? = nil,
                    fidelity: Bool = true, force: Bool = false) {
            self.model = model
            self.adapter = adapter
            self.output = output
            self.dtype = dtype
            self.tokenizer = tokenizer
            self.prompts = prompts
            self.fidelity = fidelity
            self.force = force
        }
    }

    public enum Event: Sendable {
        case tensor(done: Int, total: Int, name: String)
        case fidelity(String)
    }

    public struct Report: Sendable {
        public var output: URL
        public var tensors: Int
        /// Projections that received an adapter delta.
        public var mergedProjections: Int
        public var modelBytes: Int
        public var fidelity: ExportFidelity.Report?
        public var seconds: Double
        public var peakRSSBytes: Int
    }

    public static func run(_ p: Parameters, backend: any Backend, progress: (Event) -> Void = { _ in }) throws -> Report {
        let started = Date()
        let source = try ModelTensorSource.open(p.model)
        let adapter: PEFTAdapter
        do { adapter = try PEFTAdapter.load(directory: p.adapter, model: source.config) } catch let e as PEFTAdapterError {
            throw ExportError("adapter: \(e)")
        }
        let fm = FileManager.default
        if fm.fileExists(atPath: p.output.path), !p.force {
            throw ExportError("\(p.output.path) already exists (use --force to replace it)")
        }
        let parent = p.output.deletingLastPathComponent()
        try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        let tmp = parent.appendingPathComponent(".\(p.output.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try fm.createDirectory(at: tmp, withIntermediateDirectories: false)
        var done = false
        defer { if !done { try? fm.removeItem(at: tmp) } }

        // Which tensors get a delta.
        var deltas: [String: LoRAPair] = [:]
        for (i, layer) in adapter.weights.layers.enumerated() {
            for (projection, a) in layer { deltas["model.layers.\(i).\(projection.modulePath).weight"] = a }
        }
        let names = Set(source.tensors.map(\.name))
        if let missing = deltas.keys.sorted().first(where: { !names.contains($0) }) {
            throw ExportError("\(p.model): the adapter targets `\(missing)`, which the model does not have")
        }
        let scaling = adapter.lora.scaling
        let modelURL = tmp.appendingPathComponent(ModelPreparer.modelFileName)
        let writer = try SafetensorsStreamWriter(url: modelURL, fixed: source.tensors.map { ($0.name, p.dtype.safetensors, $0.shape) },
                                                 metadata: ["format": "pt"])
        for (i, t) in source.tensors.enumerated() {
            progress(.tensor(done: i, total: source.tensors.count, name: t.name))
            var values = try t.load()
            t.release()
            if let delta = deltas[t.name] {
                guard values.count == delta.outFeatures * delta.inFeatures else {
                    throw ExportError("\(t.name): shape \(t.shape) does not match the adapter's [\(delta.outFeatures), \(delta.inFeatures)]")
                }
                delta.merge(scale: scaling, into: &values)
                if !values.allSatisfy(\.isFinite) { throw ExportError("\(t.name): the merged weight has non-finite values") }
            }
            if p.dtype == .fp32 {
                try writer.write(t.name, floats: values)
            } else {
                if p.dtype == .fp16, let bad = values.firstIndex(where: { abs($0) > 65504 }) {
                    throw ExportError("\(t.name): value \(values[bad]) overflows fp16; export bf16 or fp32")
                }
                try writer.write(t.name, SafetensorsWriter.encode(values, as: p.dtype.safetensors)!)
            }
        }
        progress(.tensor(done: source.tensors.count, total: source.tensors.count, name: ""))
        try writer.finish(trailing: [:])

        try writeConfig(source, dtype: p.dtype, to: tmp)
        try copyTokenizerFiles(from: [p.model] + (p.tokenizer.map { [$0] } ?? []), to: tmp)

        var fidelity: ExportFidelity.Report?
        if p.fidelity {
            progress(.fidelity("adapter on base (fp32, unmerged) vs the export loaded back"))
            let sequences = ExportFidelity.sequences(prompts: p.prompts ?? ExportFidelity.defaultPrompts,
                                                     tokenizer: p.tokenizer ?? p.model, vocabSize: source.config.vocabSize)
            let report = try ExportFidelity.measure(model: p.model, adapter: adapter, merged: tmp.path, dtype: p.dtype.torchName,
                                                    sequences: sequences, backend: backend)
            try AtomicFile.write(Data(JSONWriter.encode(.object(report.json)) + [UInt8(ascii: "\n")]),
                                 to: tmp.appendingPathComponent("fidelity.json"))
            fidelity = report
        }

        // Into place: the old directory (with --force) moves aside first, so a failure never loses both.
        if fm.fileExists(atPath: p.output.path) {
            let old = parent.appendingPathComponent(".\(p.output.lastPathComponent).old-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
            try fm.moveItem(at: p.output, to: old)
            try fm.moveItem(at: tmp, to: p.output)
            try? fm.removeItem(at: old)
        } else {
            try fm.moveItem(at: tmp, to: p.output)
        }
        done = true
        let bytes = (try? fm.attributesOfItem(atPath: p.output.appendingPathComponent(ModelPreparer.modelFileName).path)[.size] as? Int) ?? 0
        return Report(output: p.output, tensors: source.tensors.count, mergedProjections: deltas.count, modelBytes: bytes,
                      fidelity: fidelity, seconds: Date().timeIntervalSince(started), peakRSSBytes: ResourceUsage.peakRSSBytes)
    }

    /// The source's config.json (or one made from GGUF metadata) without `quantization_config`, with the export dtype.
    static func writeConfig(_ source: ModelTensorSource, dtype: DType, to dir: URL) throws {
        var json = source.configJSON ?? source.config.hfConfigJSON(dtype: dtype.torchName)
        json["quantization_config"] = nil
        json["torch_dtype"] = .string(dtype.torchName)
        if json["dtype"] != nil { json["dtype"] = .string(dtype.torchName) }  // transformers 5's name for it
        var bytes: [UInt8] = []
        JSONWriter.write(json, into: &bytes)
        try AtomicFile.write(Data(bytes + [UInt8(ascii: "\n")]), to: dir.appendingPathComponent("config.json"))
    }

    /// Copies the tokenizer files found in each directory of `paths` (later ones win; files are skipped).
    static func copyTokenizerFiles(from paths: [String], to dir: URL) throws {
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            for name in ModelPreparer.tokenizerFiles {
                if let data = FileManager.default.contents(atPath: URL(fileURLWithPath: path).appendingPathComponent(name).path) {
                    try AtomicFile.write(data, to: dir.appendingPathComponent(name))
                }
            }
        }
    }
}
