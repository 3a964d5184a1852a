import Foundation
import QLoRACore
import QLoRAFormats

/// A model's tensors in HF naming, each loaded to fp32 only when asked for, so a whole checkpoint can be
/// rewritten one tensor at a time (peak memory ≈ the largest tensor, not the model).
///
/// Sources: an HF directory (safetensors, single or sharded), a GGUF file (dequantized, Q/K rows un-permuted to
/// HF order), or a directory written by `ModelPreparer` (bitsandbytes 4-bit projections are dequantized with
/// their stored block scales: the exact weights a QLoRA forward multiplies by). A tied `lm_head` is left out.
public struct ModelTensorSource {
    public struct Tensor {
        public let name: String
        /// HF shape (`[out, in]` for linear weights).
        public let shape: [Int]
        /// The values as fp32, row-major.
        public let load: () throws -> [Float]
        /// Lets the OS drop the tensor's mapped pages once it has been used.
        public let release: () -> Void
    }

    public let path: String
    public let config: LlamaConfig
    /// The source's `config.json` (HF and prepared directories); nil for GGUF files.
    public let configJSON: JSONObject?
    /// True for a prepared 4-bit directory.
    public let isFourBit: Bool
    /// In model order: embeddings, layers, final norm, lm_head.
    public let tensors: [Tensor]

    /// Opens `path` (nothing is loaded yet beyond headers).
    public static func open(_ path: String) throws -> ModelTensorSource {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError(file: path, "no such file or directory")
        }
        if isDirectory.boolValue {
            let configURL = URL(fileURLWithPath: path).appendingPathComponent("config.json")
            let bytes = try readModelFile(configURL.path, missing: "missing: an HF model directory needs config.json")
            let object = try? JSONParser.parse(Array(bytes)).objectValue
            if let object, object["quantization_config"] != nil {
                return try openPrepared(path, configBytes: Array(bytes), configJSON: object)
            }
        }
        let (config, json, tensors, _) = try ModelPreparer.openSource(path)
        return ModelTensorSource(path: path, config: config, configJSON: json, isFourBit: false,
                                 tensors: tensors.map { Tensor(name: $0.name, shape: $0.shape, load: $0.load, release: $0.release) })
    }

    private static func openPrepared(_ path: String, configBytes: [UInt8], configJSON: JSONObject) throws -> ModelTensorSource {
        let configPath = URL(fileURLWithPath: path).appendingPathComponent("config.json").path
        let config = try LlamaConfig.fromHF(configBytes, file: configPath)
        let checkpoint = try SafetensorsCheckpoint(path: path)
        var tensors: [ModelPreparer.SourceTensor] = []
        for name in checkpoint.names where !BitsAndBytesFormat.isAuxiliary(name) {
            guard let (file, info) = checkpoint.tensor(named: name) else { continue }
            if name == "lm_head.weight", config.tieWordEmbeddings { continue }
            if name.hasSuffix(".rotary_emb.inv_freq") { continue }
            let fourBit: FourBitTensor?
            do { fourBit = try BitsAndBytesFormat.read(checkpoint, weightName: name) } catch let e as BitsAndBytesError {
                throw ModelError(file: e.path, "\(e.tensor): \(e.reason)")
            }
            if let fourBit {
                tensors.append(.init(name: name, shape: fourBit.shape, load: { FourBitQuantizer.dequantizeReference(fourBit) },
                                     release: { file.releasePages(info) }))
            } else {
                tensors.append(.init(name: name, shape: info.shape, load: { try file.floats(info) }, release: { file.releasePages(info) }))
            }
        }
        return ModelTensorSource(path: path, config: config, configJSON: configJSON, isFourBit: true,
                                 tensors: ModelPreparer.sortedForWriting(tensors).map {
                                     Tensor(name: $0.name, shape: $0.shape, load: $0.load, release: $0.release)
                                 })
    }
}
