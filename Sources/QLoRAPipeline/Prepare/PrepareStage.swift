import Foundation
import QLoRACore
import QLoRAFormats
import QLoRAModel

/// Stage 3: quantize the base model once, into an artifact every later stage (and every retry) reuses.
///
/// Outputs (in `<run>/prepare/`):
/// - `model/`: a directory transformers + bitsandbytes load unchanged: `config.json` with
///   `quantization_config`, `model.safetensors` with the seven projections of every block in bitsandbytes'
///   4-bit layout (NF4 + double quantization by default) and embeddings, norms and lm_head in `model.dtype`,
///   plus the source's tokenizer files when it has them;
/// - `memory.json`: bytes and parameters per component, bits per parameter of the 4-bit part, file and
///   source sizes, time and peak RSS.
///
/// Depends on the model files and the `model` + `quantization` sections only, so a data change never
/// re-quantizes. Streams one tensor at a time (see `ModelPreparer`).
public struct PrepareStage: Stage {
    public let id = StageID.prepare
    public let formatVersion = 1

    public init() {}

    public func configuration(of spec: JobSpec) throws -> Data {
        struct Config: Encodable {
            var model: ModelSection?
            var quantization: QuantizationSection
        }
        return try canonicalJSON(Config(model: spec.model, quantization: spec.quantizationOrDefault))
    }

    public func inputFiles(of spec: JobSpec) -> [URL] {
        guard let path = spec.model?.path else { return [] }
        return ModelFiles.files(for: spec.resolve(path))
    }

    public func run(_ context: StageContext) throws -> StageReport {
        guard let model = context.spec.model else { throw StageFailure("the spec has no `model` section") }
        let q = context.spec.quantizationOrDefault
        let options = PrepareOptions(
            quant: FourBitOptions(type: q.quantType == .nf4 ? .nf4 : .fp4, blocksize: q.blocksize, doubleQuant: q.doubleQuant),
            keptDType: FloatStorage(rawValue: model.dtype.rawValue) ?? .float32,
            computeDType: FloatStorage(rawValue: q.computeDtype.rawValue) ?? .float32)
        let source = context.spec.resolve(model.path).path
        let report: PrepareReport
        do {
            var started = false, tensors = 0
            report = try ModelPreparer.prepare(source: source, into: context.output.appendingPathComponent("model"),
                                               options: options) { done, total, _ in
                tensors = total
                if !started {
                    context.progress.start("quantizing \(URL(fileURLWithPath: source).lastPathComponent)", total: Int64(total),
                                           unit: .items)
                    started = true
                }
                context.progress.update(Int64(done))
            }
            context.progress.finish(Int64(tensors))
        } catch {
            throw StageFailure("cannot prepare \(source): \(error)")
        }
        var bytes: [UInt8] = []
        JSONWriter.write(report.json, into: &bytes)
        try AtomicFile.write(Data(bytes + [UInt8(ascii: "\n")]), to: context.output.appendingPathComponent("memory.json"))
        let mb = { (b: Int) in String(format: "%.1f MB", Double(b) / 1e6) }
        return StageReport(metrics: [
            "quantized_parameters": Double(report.quantizedParameters),
            "bits_per_quantized_parameter": report.bitsPerQuantizedParameter,
            "file_bytes": Double(report.fileBytes),
            "source_bytes": Double(report.sourceBytes),
            "peak_rss_bytes": Double(report.peakRSSBytes),
        ], notes: [
            "\(report.quantizedParameters) parameters in 4-bit \(options.quant.type.rawValue) "
                + String(format: "(%.3f bits/parameter)", report.bitsPerQuantizedParameter)
                + "; prepared checkpoint \(mb(report.fileBytes)) from \(mb(report.sourceBytes)); peak RSS \(mb(report.peakRSSBytes))",
        ])
    }
}

extension JobSpec {
    /// The quantization section, or its defaults when the spec has a model but no quantization section.
    public var quantizationOrDefault: QuantizationSection {
        quantization ?? QuantizationSection(quantType: .nf4, blocksize: 64, doubleQuant: true, computeDtype: .float32)
    }
}

/// The files of a model source whose content the prepare stage depends on.
enum ModelFiles {
    static func files(for url: URL) -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else { return [url] }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []).filter {
            $0 == "config.json" || $0.hasSuffix(".safetensors") || $0 == "model.safetensors.index.json"
        }.sorted()
        return names.map { url.appendingPathComponent($0) }
    }
}
