import Foundation
import QLoRAFormats
import QLoRAModel
import QLoRATokenizer

/// Stage 6: the trained adapter as one archive that travels.
///
/// Output: `<run>/package/<name>.tar.gz` (or `.tar.zst`, `.zip` by `package.archive`), plus a copy of its
/// `manifest.json` next to it for quick reading, as `adapter-manifest.json` (`package/manifest.json` is the stage's
/// own manifest, as in every stage directory). The archive holds, flat:
/// - `adapter_config.json`, `adapter_model.safetensors`: the PEFT adapter exactly as the train stage wrote it
///   (`peft.PeftModel.from_pretrained(dir)` loads the unpacked directory);
/// - `manifest.json` (``AdapterManifest``): sha256 and size of every other member, the base model's file hashes,
///   architecture and quantization, the datasets' hashes and counts, the tokenizer, chat template and EOS,
///   the job spec, metrics, tool version and build;
/// - `README.md`: a model card rendered from the manifest;
/// - `chat_template.jinja` (when training used one), `metrics.jsonl` (per-step training metrics) and, when the
///   evaluate stage ran, `report.json`, `report.md`, `loss.svg`.
///
/// Archives are reproducible: sorted members, fixed times and owners, no timestamps in the manifest, so
/// packaging the same adapter twice gives byte-identical files. The stage verifies the finished archive
/// (unpacked to a scratch directory) before it counts as done.
public struct PackageStage: Stage {
    public let id = StageID.package
    /// 2: the adapter manifest's copy is `adapter-manifest.json` (it was overwritten by the stage manifest).
    public let formatVersion = 2

    public init() {}

    public func configuration(of spec: JobSpec) throws -> Data {
        try canonicalJSON(spec.package)
    }

    public func inputFiles(of spec: JobSpec) -> [URL] { [] }

    public func run(_ context: StageContext) throws -> StageReport {
        guard let train = context.upstream[.train] else { throw StageFailure("the package stage needs the train stage") }
        let section = context.spec.package ?? PackageSection(archive: .default)
        let spec = context.spec
        let run = RunDirectory(url: context.runDirectory)

        // Members taken as they are.
        var members: [(name: String, url: URL)] = []
        for name in ["adapter_config.json", "adapter_model.safetensors", "metrics.jsonl"] {
            let url = train.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { throw StageFailure("the train stage's \(name) is missing") }
            members.append((name, url))
        }
        let template = run.stageURL(.tokenize).appendingPathComponent("chat_template.jinja")
        if FileManager.default.fileExists(atPath: template.path) { members.append(("chat_template.jinja", template)) }
        if let evaluate = context.upstream[.evaluate] {
            for name in ["report.json", "report.md", "loss.svg"] {
                let url = evaluate.appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: url.path) { members.append((name, url)) }
            }
        }

        // The manifest and the model card, written into a scratch directory that becomes the archive's content.
        let staging = context.output.appendingPathComponent(".staging")
        try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: staging) }
        for m in members {
            let target = staging.appendingPathComponent(m.name)
            do { try FileManager.default.copyItem(at: m.url, to: target) } catch {
                throw FileError(path: target.path, operation: "copy", wrapping: error)
            }
        }

        let format = section.archive
        let archiveName = "\(spec.name).\(format.rawValue)"
        var manifest = try buildManifest(context, run: run, files: [])
        let card = ModelCard.render(manifest, archiveName: archiveName)
        try AtomicFile.write(Data(card.utf8), to: staging.appendingPathComponent("README.md"))
        var files: [AdapterManifest.File] = []
        for name in members.map(\.name) + ["README.md"] {
            let d = try FileDigest.of(file: staging.appendingPathComponent(name))
            files.append(AdapterManifest.File(path: name, sha256: d.sha256, size: d.size))
        }
        manifest.files = files.sorted { $0.path < $1.path }
        let manifestBytes = try manifest.encoded()
        try AtomicFile.write(manifestBytes, to: staging.appendingPathComponent(AdapterManifest.fileName))

        // The archive, then proof that it unpacks and verifies.
        let archive = context.output.appendingPathComponent(archiveName)
        let names = (members.map(\.name) + ["README.md", AdapterManifest.fileName]).sorted()
        context.progress.start("archiving \(names.count) files", total: 2, unit: .items)
        try AdapterPackage.write(directory: staging, members: names, to: archive)
        context.progress.update(1)
        let report: AdapterVerifier.Report
        do { report = try AdapterPackage.verify(archive: archive) } catch {
            throw StageFailure("the written archive does not verify: \(error)")
        }
        context.progress.finish(2)
        // Beside the archive for quick reading, under its own name: `manifest.json` in a stage directory is the
        // runner's stage manifest (it would replace this copy).
        try AtomicFile.write(manifestBytes, to: context.output.appendingPathComponent(Self.adapterManifestCopy))
        let size = try FileDigest.of(file: archive)
        return StageReport(
            metrics: ["archive_bytes": Double(size.size), "files": Double(names.count)],
            notes: ["\(archiveName): \(names.count) files, \(size.size) bytes, sha256 \(size.sha256.prefix(16))…; " + report.checks.joined(separator: "; ")])
    }

    /// The adapter manifest's copy beside the archive (`package/adapter-manifest.json`).
    public static let adapterManifestCopy = "adapter-manifest.json"

    /// Everything but `files`, from the spec and the upstream stages' manifests and artifacts.
    func buildManifest(_ context: StageContext, run: RunDirectory, files: [AdapterManifest.File]) throws -> AdapterManifest {
        let spec = context.spec
        guard let modelSection = spec.model else { throw StageFailure("the spec has no `model` section") }
        // Base model: its source files' hashes (as prepare recorded them) and architecture.
        guard let prepare = run.manifest(.prepare) else { throw StageFailure("the prepare stage's manifest is missing") }
        let configURL = run.stageURL(.prepare).appendingPathComponent("model/config.json")
        let config: LlamaConfig
        do { config = try LlamaConfig.fromHF([UInt8](try Data(contentsOf: configURL)), file: configURL.path) } catch {
            throw StageFailure("cannot read the prepared model's config: \(error)")
        }
        let q = spec.quantizationOrDefault
        let modelRoot = spec.resolve(modelSection.path)
        let base = AdapterManifest.BaseModel(
            source: modelSection.path,
            files: prepare.inputs.map { AdapterManifest.File(path: relative($0.path, to: modelRoot), sha256: $0.sha256, size: $0.size) },
            architecture: AdapterManifest.Architecture(
                modelType: "llama", hiddenSize: config.hiddenSize, intermediateSize: config.intermediateSize, layers: config.layers,
                heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim, vocabSize: config.vocabSize),
            quantization: ["quant_type": q.quantType.rawValue, "blocksize": String(q.blocksize),
                           "double_quant": String(q.doubleQuant), "compute_dtype": q.computeDtype.rawValue,
                           "storage_dtype": modelSection.dtype.rawValue],
            preparedDigest: prepare.outputsDigest)

        // Datasets: the ingest stage's per-file counts and the files' hashes.
        var datasets: [AdapterManifest.Dataset] = []
        let ingestInputs = run.manifest(.ingest)?.inputs ?? []
        let ingestStats = (try? JSONParser.parse([UInt8](Data(contentsOf: run.stageURL(.ingest).appendingPathComponent("stats.json"))))) ?? .null
        for file in spec.dataset?.files ?? [] {
            let resolved = spec.resolve(file.path).path
            let input = ingestInputs.first { $0.path == resolved }
            let stats = ingestStats["files"]?.arrayValue?.first { $0["path"]?.stringValue == file.path }
            datasets.append(AdapterManifest.Dataset(
                path: file.path, format: file.format.rawValue, sha256: input?.sha256 ?? "", size: input?.size ?? 0,
                rows: Int(stats?["rows"]?.numberValue ?? 0), accepted: Int(stats?["accepted"]?.numberValue ?? 0)))
        }
        var data: [String: Int] = [:]
        let tokenizeStats = (try? JSONParser.parse([UInt8](Data(contentsOf: run.stageURL(.tokenize).appendingPathComponent("stats.json"))))) ?? .null
        for key in ["train_examples", "eval_examples", "train_sequences", "eval_sequences", "tokens", "trained_tokens", "dropped", "truncated"] {
            if let v = tokenizeStats[key]?.numberValue { data[key] = Int(v) }
        }

        // Tokenizer, chat template and EOS, as training used them.
        guard let tokenizerSource = spec.tokenizerSource else { throw StageFailure("the spec has no tokenizer") }
        let tokenizerRoot = spec.resolve(tokenizerSource)
        let tokenizer: Tokenizer
        do { tokenizer = try Tokenizer.load(path: tokenizerRoot.path) } catch { throw StageFailure("cannot load the tokenizer: \(error)") }
        let template = try? String(contentsOf: run.stageURL(.tokenize).appendingPathComponent("chat_template.jinja"), encoding: .utf8)
        let tok = AdapterManifest.Tokenizer(
            source: tokenizerSource,
            files: (run.manifest(.tokenize)?.inputs ?? []).map { AdapterManifest.File(path: relative($0.path, to: tokenizerRoot), sha256: $0.sha256, size: $0.size) },
            chatTemplate: template, eosToken: tokenizer.eosToken, eosTokenID: tokenizer.eosTokenID, bosToken: tokenizer.bosToken)

        // Adapter hyperparameters and size, from the PEFT adapter the train stage wrote (read as every reader does).
        let written: PEFTAdapter
        do { written = try PEFTAdapter.load(directory: run.stageURL(.train), model: config) } catch {
            throw StageFailure("cannot read the adapter: \(error)")
        }
        let adapter = AdapterManifest.Adapter(
            rank: written.lora.rank, alpha: written.lora.alpha, dropout: written.lora.dropout, useRSLoRA: written.lora.useRSLoRA,
            targetModules: written.lora.targets.map(\.rawValue), trainableParameters: written.parameterCount)

        // Metrics: training's and evaluation's, as their manifests recorded them (speed figures left out: they
        // describe the machine, not the adapter).
        var metrics: [String: Double] = [:]
        for (k, v) in run.manifest(.train)?.metrics ?? [:] where !k.contains("per_s") { metrics["train." + k] = v }
        if context.upstream[.evaluate] != nil {
            for (k, v) in run.manifest(.evaluate)?.metrics ?? [:] where !k.contains("per_s") && !k.hasSuffix("seconds") { metrics["evaluate." + k] = v }
        }
        return AdapterManifest(
            name: spec.name, files: files, baseModel: base, datasets: datasets, data: data, tokenizer: tok, adapter: adapter,
            metrics: metrics, jobSpec: (try? spec.normalizedYAML()) ?? "", tool: AdapterManifest.Tool(name: "qlora", version: ToolInfo.version, build: ToolInfo.build))
    }

    /// `path` relative to `root` when inside it (or equal to it: the file name), else the path unchanged.
    func relative(_ path: String, to root: URL) -> String {
        let rootPath = root.standardizedFileURL.path
        if path == rootPath { return URL(fileURLWithPath: path).lastPathComponent }
        if path.hasPrefix(rootPath + "/") { return String(path.dropFirst(rootPath.count + 1)) }
        return URL(fileURLWithPath: path).lastPathComponent
    }
}
