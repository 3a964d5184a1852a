import Foundation
import QLoRAFormats
import QLoRAModel
import QLoRATraining

/// Writes a PEFT LoRA adapter as a llama.cpp LoRA adapter GGUF, the file `convert_lora_to_gguf.py` produces and
/// `llama_adapter_lora_init` loads (spec safetensors-and-gguf §4):
///
/// - metadata `general.architecture` (the base's), `general.type = "adapter"`, `adapter.type = "lora"`,
///   `adapter.lora.alpha` (FLOAT32), `general.file_type`, `general.quantization_version`;
/// - per adapted projection `blk.N.<base tensor>.weight.lora_a` with ne `[in, r]` and `.lora_b` with ne `[r, out]`:
///   PEFT's `A [r, in]` and `B [out, r]` bytes unchanged, dims reversed as for every GGUF tensor (llama.cpp checks
///   `base.ne0 == a.ne0`, `base.ne1 == b.ne1`, `a.ne1 == b.ne0`);
/// - for the `llama` architecture, the rows of `lora_b` of `attn_q` / `attn_k` permuted exactly as the converter
///   permutes the base's q_proj/k_proj rows (HF rotate-half pairs → llama.cpp's adjacent pairs, n_head for Q,
///   n_head_kv for K). `lora_a` is untouched: permuting the rows of `B·A` is permuting the rows of `B`. This is
///   what `LoraTorchTensor.permute` does when the converter's `LlamaModel.modify_tensors` runs on a LoRA pair.
///
/// llama.cpp scales by `alpha / r`; for an rsLoRA adapter (`alpha / √r`) the written alpha is `alpha·√r` so the
/// applied scale is the trained one (the upstream converter ignores `use_rslora`).
public enum GGUFLoRAExport {
    public struct Parameters: Sendable {
        public var adapter: URL
        public var output: URL
        /// The base model (a GGUF file, an HF or prepared directory): architecture, head counts, and, for a GGUF
        /// base, the tensors the adapter must fit. Default: the adapter's `base_model_name_or_path` when that is
        /// a local path.
        public var base: String?
        /// F32 (the converter's default), F16 or BF16.
        public var type: GGUFTensorType

        public init(adapter: URL, output: URL, base: String? = nil, type: GGUFTensorType = .f32) {
            self.adapter = adapter
            self.output = output
            self.base = base
            self.type = type
        }
    }

    public struct Report: Sendable {
        public var output: URL
        public var architecture: String
        public var tensors: Int
        public var rank: Int
        /// `adapter.lora.alpha` as written.
        public var alpha: Float
        public var permutedQK: Bool
        public var base: String?
        public var notes: [String]
    }

    /// llama.cpp's module name for a projection (`attn_q`, as in `blk.N.attn_q.weight`), from `LlamaTensorNames`.
    public static func ggufName(_ p: Projection) -> String {
        LlamaTensorNames.ggufModule(ofHFModule: p.modulePath)!
    }

    /// What the base tells us.
    public struct Base: Sendable {
        public var path: String
        public var architecture: String
        public var config: LlamaConfig
        /// Tensor name → ggml dims, for a GGUF base.
        public var ggufDims: [String: [Int]]?
    }

    public static func run(_ p: Parameters) throws -> Report {
        var notes: [String] = []
        var basePath = p.base
        let configBytes = FileManager.default.contents(atPath: p.adapter.appendingPathComponent(PEFTAdapter.configFileName).path)
        if basePath == nil, let configBytes, let parsed = try? PEFTAdapterFormat.parseConfig(Array(configBytes), file: ""),
           let named = parsed.baseModelNameOrPath, !named.isEmpty {
            for candidate in [named, p.adapter.appendingPathComponent(named).path] where FileManager.default.fileExists(atPath: candidate) {
                basePath = candidate
                notes.append("base from adapter_config.json's base_model_name_or_path: \(candidate)")
                break
            }
        }
        let base = try basePath.map(openBase)
        let adapter: PEFTAdapter
        do { adapter = try PEFTAdapter.load(directory: p.adapter, model: base?.config) } catch let e as PEFTAdapterError {
            throw ExportError("adapter: \(e)")
        }
        if base == nil {
            if adapter.lora.targets.contains(.q) || adapter.lora.targets.contains(.k) {
                throw ExportError("the adapter changes q_proj/k_proj, whose lora_b rows must be permuted with the base's head counts: pass --base (the base GGUF, or its HF directory)")
            }
            notes.append("no base given: architecture assumed to be llama")
        }
        if adapter.lora.useRSLoRA {
            notes.append("rsLoRA: adapter.lora.alpha is written as alpha·√r so llama.cpp's alpha/r equals the trained alpha/√r")
        }
        let (metadata, tensors) = try build(adapter, architecture: base?.architecture ?? "llama", config: base?.config, type: p.type)
        if let dims = base?.ggufDims {
            for t in tensors where t.name.hasSuffix(".lora_a") {
                let name = String(t.name.dropLast(".lora_a".count))
                guard let d = dims[name] else { throw ExportError("\(base!.path): the base has no tensor `\(name)` for the adapter's `\(t.name)`") }
                guard d.count == 2, d[0] == t.dims[0] else {
                    throw ExportError("\(base!.path): `\(name)` has ne \(d), which does not fit lora_a ne \(t.dims)")
                }
            }
            for t in tensors where t.name.hasSuffix(".lora_b") {
                let d = dims[String(t.name.dropLast(".lora_b".count))]!
                guard d[1] == t.dims[1] else { throw ExportError("\(base!.path): `\(t.name)` ne \(t.dims) does not fit the base's ne \(d)") }
            }
        }
        try FileManager.default.createDirectory(at: p.output.deletingLastPathComponent(), withIntermediateDirectories: true)
        do { try GGUFWriter.write(metadata: metadata, tensors: tensors, to: p.output) } catch let e as GGUFWriteError {
            throw ExportError("\(p.output.path): \(e)")
        }
        let architecture = base?.architecture ?? "llama"
        let alpha = Float(metadata.first { $0.key == "adapter.lora.alpha" }?.value.double ?? 0)
        return Report(output: p.output, architecture: architecture, tensors: tensors.count, rank: adapter.lora.rank, alpha: alpha,
                      permutedQK: architecture == "llama" && (adapter.lora.targets.contains(.q) || adapter.lora.targets.contains(.k)),
                      base: base?.path, notes: notes)
    }

    /// Reads the base's architecture and config (and tensor dims, for a GGUF file).
    public static func openBase(_ path: String) throws -> Base {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ExportError("\(path): no such file or directory")
        }
        if isDirectory.boolValue {
            let url = URL(fileURLWithPath: path).appendingPathComponent("config.json")
            guard let bytes = FileManager.default.contents(atPath: url.path) else { throw ExportError("\(url.path): missing") }
            let config = try LlamaConfig.fromHF(Array(bytes), file: url.path)
            let modelType = (try? JSONParser.parse(Array(bytes)))?["model_type"]?.stringValue ?? "llama"
            // convert_hf_to_gguf.py writes Llama, Mistral and SmolLM checkpoints as `llama`, Qwen2 as `qwen2`.
            let architecture = modelType == "qwen2" ? "qwen2" : "llama"
            return Base(path: path, architecture: architecture, config: config, ggufDims: nil)
        }
        let file: GGUFFile
        do { file = try GGUFFile(path: path) } catch { throw ExportError("\(error)") }
        let config = try LlamaConfig.fromGGUF(file.metadata, file: path)
        let architecture = file.metadata["general.architecture"]?.string ?? "llama"
        return Base(path: path, architecture: architecture, config: config,
                    ggufDims: Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.dims) }))
    }

    /// The adapter file's metadata and tensors. `config` (needed when Q or K are adapted under `llama`) supplies
    /// the head counts for the lora_b permutation.
    public static func build(_ adapter: PEFTAdapter, architecture: String, config: LlamaConfig?,
                             type: GGUFTensorType) throws -> (metadata: [GGUFMetadata.Entry], tensors: [GGUFWriter.Tensor]) {
        guard [.f32, .f16, .bf16].contains(type) else { throw ExportError("adapter tensors are written as F32, F16 or BF16, not \(type)") }
        guard ["llama", "qwen2"].contains(architecture) else {
            throw ExportError("architecture `\(architecture)` is not supported (llama, qwen2)")
        }
        let lora = adapter.lora
        let alpha = lora.useRSLoRA ? lora.alpha * Double(lora.rank).squareRoot() : lora.alpha
        let fileType: UInt32 = switch type {
        case .f16: 1
        case .bf16: 32
        default: 0
        }
        let metadata: [GGUFMetadata.Entry] = [
            .init(key: "general.architecture", value: .string(architecture)),
            .init(key: "general.type", value: .string("adapter")),
            .init(key: "adapter.type", value: .string("lora")),
            .init(key: "adapter.lora.alpha", value: .float32(Float(alpha))),
            .init(key: "general.file_type", value: .uint32(fileType)),
            .init(key: "general.quantization_version", value: .uint32(2)),
        ]
        var tensors: [GGUFWriter.Tensor] = []
        for (i, layer) in adapter.weights.layers.enumerated() {
            for p in Projection.allCases {
                guard let ad = layer[p] else { continue }
                var b = ad.b
                if architecture == "llama", p == .q || p == .k {
                    guard let c = config else { throw ExportError("permuting \(p.rawValue)'s lora_b needs the base's head counts") }
                    let heads = p == .q ? c.heads : c.kvHeads
                    guard ad.outFeatures == heads * c.headDim else {
                        throw ExportError("\(p.rawValue) has \(ad.outFeatures) outputs, the base has \(heads) heads of \(c.headDim)")
                    }
                    GGUFDequantizer.permuteRows(&b, rows: ad.outFeatures, columns: ad.rank, heads: heads)
                }
                let name = LlamaTensorNames.ggufLayerPrefix(i) + ggufName(p) + ".weight"
                do {
                    tensors.append(try GGUFWriter.Tensor(name: name + ".lora_a", hfShape: [ad.rank, ad.inFeatures], values: ad.a, type: type))
                    tensors.append(try GGUFWriter.Tensor(name: name + ".lora_b", hfShape: [ad.outFeatures, ad.rank], values: b, type: type))
                } catch { throw ExportError("\(error)") }
            }
        }
        return (metadata, tensors)
    }
}
