import Crypto
import Foundation
import QLoRACore
import QLoRADistributed
import QLoRAFormats
import QLoRAModel
import QLoRATraining

/// Stage 4: LoRA adapters on the frozen 4-bit base, trained on the tokenize stage's sequences.
///
/// Outputs (in `<run>/train/`):
/// - `adapter_model.safetensors`: the adapters under PEFT's key names
///   (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`, fp32), `adapter_config.json`;
/// - `metrics.jsonl`: one line per optimizer step: step, loss, lr, grad_norm, tokens, tokens_per_s, rss_bytes.
///
/// Eval loss (base vs base + adapter) is not computed here: the evaluate stage reports it, through the
/// inference path, once.
///
/// Checkpoints live outside the stage directory, in `<run>/train.checkpoints/`, so they survive a crash or
/// a kill: a later `qlora run` resumes from the newest one that verifies (falling back past a corrupt one,
/// and saying so) if it was made by the same configuration and data; SIGINT/SIGTERM save one and stop.
/// They are removed only once the stage's outputs are committed (`removeRecoveryState`): a kill after the last
/// step but before the commit resumes at the last step and just writes the adapter.
public struct TrainStage: Stage {
    public let id = StageID.train
    public let formatVersion = 1
    public let usesBackend = true

    public init() {}

    public func configuration(of spec: JobSpec) throws -> Data {
        struct Config: Encodable {
            var lora: LoRASection?
            var training: TrainingSection?
            var seed: Int?
        }
        return try canonicalJSON(Config(lora: spec.lora, training: spec.training, seed: spec.seed))
    }

    public func inputFiles(of spec: JobSpec) -> [URL] { [] }

    /// What the stage builds before its first step (on every rank of a data-parallel job).
    struct Setup {
        var trainer: Trainer
        var model: LlamaModel
        var lora: LoRAConfig
        var layers: Int
        var maxSteps: Int
        var stateDirectory: URL
    }

    /// The model with fresh adapters, the data and the trainer, from the committed tokenize and prepare outputs.
    static func setUp(spec: JobSpec, runDirectory: URL, tokenize: URL, prepare: URL, backend: any Backend, pagedStatePath: String,
                      collective: any Collective) throws -> Setup {
        let loraSection = spec.lora ?? .defaults
        guard let t = spec.training else { throw StageFailure("the spec has no `training` section") }
        let targets = loraSection.targetModules.compactMap { Projection(rawValue: $0) }
        let base: LlamaModel
        do { base = try ModelLoader.loadModel(path: prepare.appendingPathComponent("model").path, backend: backend) } catch {
            throw StageFailure("cannot load the prepared model: \(error)")
        }
        let reader: TokenFile.Reader
        do { reader = try TokenFile.Reader(path: tokenize.appendingPathComponent("train.tokens").path) } catch {
            throw StageFailure("cannot read the training tokens: \(error)")
        }
        guard reader.sequenceCount > 0 else { throw StageFailure("the training split has no sequences") }
        guard reader.vocabularySize <= base.config.vocabSize else {
            throw StageFailure("the tokenizer's vocabulary (\(reader.vocabularySize)) is larger than the model's (\(base.config.vocabSize))")
        }
        var order: [Int]?
        if let bytes = FileManager.default.contents(atPath: tokenize.appendingPathComponent("train.order").path) {
            let raw = [UInt8](bytes)
            var indices: [Int] = []
            indices.reserveCapacity(raw.count / 4)
            for i in stride(from: 0, to: raw.count - 3, by: 4) {
                var word = UInt32(raw[i])
                word |= UInt32(raw[i + 1]) << 8
                word |= UInt32(raw[i + 2]) << 16
                word |= UInt32(raw[i + 3]) << 24
                indices.append(Int(word))
            }
            if let bad = indices.firstIndex(where: { $0 >= reader.sequenceCount }) {
                throw StageFailure("tokenize/train.order: entry \(bad) is sequence \(indices[bad]), but train.tokens has \(reader.sequenceCount); rerun from the tokenize stage (qlora run --from tokenize)")
            }
            order = indices
        }
        let seed = UInt64(spec.seed)
        let data = TrainingData(reader: reader, baseOrder: order, seed: seed)
        let lora = LoRAConfig(rank: loraSection.loraRank, alpha: loraSection.loraAlpha, dropout: loraSection.loraDropout,
                              useRSLoRA: loraSection.useRslora, targets: targets)
        var rng = SeededGenerator(seed: seed)
        let model = try base.withAdapter(LoRAWeights.peftInit(base.config, lora, rng: &rng), lora: lora)
        model.gradientCheckpointing = t.gradientCheckpointing
        let perStep = t.batchSize * t.gradientAccumulationSteps
        let maxSteps = t.maxSteps ?? max(1, Int((t.epochs * Double(reader.sequenceCount) / Double(perStep)).rounded(.up)))
        let kind: LearningRateSchedule.Kind = switch t.lrScheduler {
        case .constant: .constant
        case .linear: .linear
        case .cosine: .cosine
        }
        let stateDir = runDirectory.appendingPathComponent("train.checkpoints")
        try FileManager.default.createDirectory(at: stateDir, withIntermediateDirectories: true)
        let options = TrainerOptions(
            schedule: LearningRateSchedule(kind: kind, peak: t.learningRate, warmupSteps: t.warmupSteps, totalSteps: maxSteps),
            maxSteps: maxSteps, batchSize: t.batchSize, gradientAccumulation: t.gradientAccumulationSteps,
            maxGradNorm: t.maxGradNorm,
            adam: AdamW.Parameters(learningRate: t.learningRate, beta1: t.adamBeta1, beta2: t.adamBeta2, epsilon: t.adamEpsilon,
                                   weightDecay: t.weightDecay),
            pagedStatePath: t.optimizer == .pagedAdamW32bit ? pagedStatePath : nil,
            pagedBudgetBytes: t.pagedOptimizerBudgetMB.map { $0 << 20 },
            saveEvery: t.saveEvery, seed: seed)
        let trainer = try Trainer(model: model, data: data, options: options,
                                  checkpoints: CheckpointStore(directory: stateDir, keep: t.keepCheckpoints), collective: collective)
        return Setup(trainer: trainer, model: model, lora: lora, layers: base.config.layers, maxSteps: maxSteps, stateDirectory: stateDir)
    }

    public func run(_ context: StageContext) throws -> StageReport {
        guard let tokenize = context.upstream[.tokenize], let prepare = context.upstream[.prepare] else {
            throw StageFailure("the train stage needs the tokenize and prepare stages")
        }
        let spec = context.spec
        let collective = context.collective
        let pagedPath = context.output.appendingPathComponent(".optimizer.pages").path
        let setup = try Self.agree(collective) {
            try Self.setUp(spec: spec, runDirectory: context.runDirectory, tokenize: tokenize, prepare: prepare,
                           backend: context.backend.backend, pagedStatePath: pagedPath, collective: collective)
        }
        let (trainer, model, lora, maxSteps, stateDir) = (setup.trainer, setup.model, setup.lora, setup.maxSteps, setup.stateDirectory)
        let t = spec.training!
        let identity = try self.identity(context)
        for note in try trainer.resume(identity: identity) { context.logger.notice("\(note)") }

        let metricsURL = context.output.appendingPathComponent("metrics.jsonl")
        let metricsFile = try BufferedFileWriter(path: metricsURL.path)
        for m in trainer.metrics { try metricsFile.write(Array((m.jsonLine + "\n").utf8)) }
        let ranks = collective.size > 1 ? ", data-parallel over \(collective.size) ranks" : ""
        context.progress.start("training \(lora.targets.count) projections × \(setup.layers) layers, rank \(lora.rank)\(ranks)",
                               total: Int64(maxSteps), unit: .steps)
        if trainer.step > 0 { context.progress.resume(at: Int64(trainer.step)) }
        let finished = try trainer.run(identity: identity, cancellation: context.cancellation) { m in
            try metricsFile.write(Array((m.jsonLine + "\n").utf8))
            try metricsFile.flush()  // one line per step, readable while training runs
            context.progress.update(Int64(m.step), detail: String(format: "loss %.4f, %.0f tokens/s", m.loss, m.tokensPerSecond))
        }
        try metricsFile.close()
        guard finished else {
            throw StageFailure("interrupted at step \(trainer.step) of \(maxSteps); a checkpoint was saved in \(stateDir.path): run again to resume",
                               interrupted: true)
        }
        context.progress.finish(Int64(maxSteps))
        try? FileManager.default.removeItem(atPath: context.output.appendingPathComponent(".optimizer.pages").path)

        // The adapter, under PEFT's names, with the config PEFT writes.
        let trained = model.adapters
        try PEFTAdapter(lora: lora, weights: trained, baseModelNameOrPath: spec.model?.path).write(to: context.output)

        let first = trainer.metrics.first?.loss ?? .nan, last = trainer.metrics.last?.loss ?? .nan
        let speeds = trainer.metrics.map(\.tokensPerSecond).sorted()
        let median = speeds.isEmpty ? 0 : speeds[speeds.count / 2]
        var metrics: [String: Double] = ["steps": Double(trainer.step), "first_loss": first, "final_loss": last,
                                         "tokens_per_s_median": median, "trainable_parameters": Double(trained.parameterCount)]
        var notes = [String(format: "%ld steps, loss %.4f → %.4f, median %.0f tokens/s, %ld trainable parameters",
                            trainer.step, first, last, median, trained.parameterCount)]
        if let budget = t.pagedOptimizerBudgetMB {
            let stateMB = Double(2 * 4 * trained.parameterCount) / 1_048_576
            metrics["optimizer_page_evictions"] = Double(trainer.optimizer.pageEvictions)
            notes.append(String(format: "paged optimizer: %.1f MB of state under a %ld MB budget, %ld evictions", stateMB, budget,
                                trainer.optimizer.pageEvictions))
        }
        return StageReport(metrics: metrics, notes: notes)
    }

    /// A rank other than 0 in the train stage: the same setup and steps, no files written (rank 0 writes the
    /// checkpoints and outputs). Throws what rank 0's stage also fails with, or a `CollectiveError`.
    static func follow(spec: JobSpec, runDirectory: URL, backend: any Backend, collective: any Collective,
                       cancellation: Cancellation) throws {
        let run = RunDirectory(url: runDirectory)
        let paged = FileManager.default.temporaryDirectory.appendingPathComponent("qlora-optimizer-\(getpid()).pages").path
        defer { unlink(paged) }
        let trainer = try agree(collective) {
            try setUp(spec: spec, runDirectory: runDirectory, tokenize: run.stageURL(.tokenize), prepare: run.stageURL(.prepare),
                      backend: backend, pagedStatePath: paged, collective: collective)
        }.trainer
        _ = try trainer.resume(identity: "")
        guard try trainer.run(identity: "", cancellation: cancellation) else {
            throw StageFailure("interrupted at step \(trainer.step)", interrupted: true)
        }
    }

    /// Runs `setUp` on every rank, then the ranks agree: one that could not fails the stage on all of them (with its
    /// own error there), instead of leaving the others waiting in the first step.
    static func agree(_ collective: any Collective, _ setUp: () throws -> Setup) throws -> Setup {
        let setup = Result(catching: setUp)
        let failedHere: Bool = if case .failure = setup { true } else { false }
        if collective.size > 1, try collective.any(failedHere), !failedHere {
            throw StageFailure("another rank could not set up training (its own error is in its output)")
        }
        return try setup.get()
    }

    public func removeRecoveryState(runDirectory: URL) {
        try? FileManager.default.removeItem(at: runDirectory.appendingPathComponent("train.checkpoints"))
    }

    /// What a checkpoint must match to be resumed: this stage's configuration and its upstream outputs.
    func identity(_ context: StageContext) throws -> String {
        let run = RunDirectory(url: context.runDirectory)
        var text = String(decoding: try configuration(of: context.spec), as: UTF8.self)
        for stage in [StageID.tokenize, .prepare] { text += "\n\(stage.rawValue) \(run.manifest(stage)?.outputsDigest ?? "")" }
        return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
