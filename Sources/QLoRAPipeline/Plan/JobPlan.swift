import Foundation

/// `qlora plan`: before anything runs, each stage's predicted peak memory (MemoryPlan.swift), which stages would run
/// or be skipped and why (Pipeline.plan), and a verdict against the memory available: does the training step fit,
/// and the largest micro-batch that does. `qlora run` plans first and refuses a job whose training cannot fit.
public struct JobPlan: Sendable, Encodable {
    public struct StageMemory: Sendable, Encodable {
        public var stage: String
        public var peakBytes: Int64
        public var components: [String: Int64]
    }

    public var model: ModelShape
    public var backend: String
    /// Host RAM on CPU, device memory on a GPU: what the training step must fit in.
    public var limitBytes: Int64
    public var limitSource: String
    public var sequenceLength: Int
    public var microBatch: Int
    public var gradientCheckpointing: Bool
    public var memory: [StageMemory]
    public var stages: [Pipeline.PlannedStage]
    /// The training estimate × the margin is within the limit (true without a train stage).
    public var fits: Bool
    /// The largest micro-batch that fits at this sequence length and checkpointing (0: none).
    public var largestMicroBatch: Int
    public var verdict: String

    /// Plans `spec`. `shape` overrides the model's (`--model-shape`, for a model not on disk); `limitBytes` overrides
    /// the machine's memory (`--memory`); `backend` is the backend name the stages would run on.
    /// `stageDecisions: false` skips hashing the inputs (the stages list is then empty): `qlora run` checks the memory
    /// verdict that way first and decides the stages only when training does not fit.
    public static func make(spec: JobSpec, options: Pipeline.Options = .init(), backend: String, shape: ModelShape? = nil,
                            limitBytes: Int64? = nil, deviceMemoryBytes: Int64? = nil, stageDecisions: Bool = true) throws -> JobPlan {
        guard let model = try shape ?? spec.model.map({ try ModelShape.of(path: spec.resolve($0.path).path) }) else {
            throw PipelineArgumentError("nothing to plan: the spec has no `model` section (give --model-shape to plan one)")
        }
        let lora = spec.lora ?? .defaults
        let training = spec.training
        let sequenceLength = spec.tokenizer?.maxSeqLen ?? 512
        let microBatch = training?.batchSize ?? 1
        let checkpointing = training?.gradientCheckpointing ?? true
        let paged = training?.pagedOptimizerBudgetMB.map { Int64($0) << 20 }
        let limit: Int64, source: String
        if let limitBytes {
            limit = limitBytes
            source = "--memory"
        } else if backend == "cuda", let device = deviceMemoryBytes {
            limit = device
            source = "GPU memory"
        } else {
            limit = Int64(ProcessInfo.processInfo.physicalMemory)
            source = "this machine's RAM"
        }
        var memory: [StageMemory] = []
        let enabled = StageID.enabled(by: spec)
        func add(_ stage: StageID, _ e: MemoryEstimate) { if enabled.contains(stage) { memory.append(StageMemory(stage: stage.rawValue, peakBytes: e.total, components: e.components)) } }
        add(.prepare, MemoryPlanner.prepare(model))
        let trainEstimate = MemoryPlanner.train(model, rank: lora.loraRank, targets: lora.targetModules, microBatch: microBatch,
                                                sequenceLength: sequenceLength, checkpointing: checkpointing, pagedBudgetBytes: paged)
        add(.train, trainEstimate)
        if let e = spec.evaluation {
            add(.evaluate, MemoryPlanner.evaluate(model, rank: lora.loraRank, targets: lora.targetModules, batchRows: e.batchRows))
        }
        let hasTrain = enabled.contains(.train)
        let fits = !hasTrain || Double(trainEstimate.total) * MemoryEstimate.margin <= Double(limit)
        let largest = MemoryPlanner.largestMicroBatch(model, rank: lora.loraRank, targets: lora.targetModules, sequenceLength: sequenceLength,
                                                      checkpointing: checkpointing, pagedBudgetBytes: paged, limit: limit)
        let verdict: String
        if !hasTrain {
            verdict = "no train stage"
        } else if fits {
            verdict = "fits: training needs about \(formatBytes(trainEstimate.total)) of \(formatBytes(limit)) (\(source)); "
                + "up to \(largest) sequence(s) of \(sequenceLength) tokens per micro-batch would fit"
        } else {
            var advice = largest > 0 ? "set training.batch_size to \(largest) (with gradient_accumulation_steps for the same effective batch)"
                : "shorten tokenizer.max_seq_len"
            if !checkpointing { advice += ", or enable training.gradient_checkpointing" }
            verdict = "does not fit: training needs about \(formatBytes(trainEstimate.total)) (+15% margin) of \(formatBytes(limit)) "
                + "(\(source)); \(advice)"
        }
        return JobPlan(model: model, backend: backend, limitBytes: limit, limitSource: source, sequenceLength: sequenceLength,
                       microBatch: microBatch, gradientCheckpointing: checkpointing, memory: memory,
                       stages: stageDecisions ? try Pipeline.plan(spec: spec, options: options, backendName: backend) : [], fits: fits,
                       largestMicroBatch: largest, verdict: verdict)
    }

    /// The plan for people.
    public var text: String {
        var lines = ["model \(model.name): \(model.layers) layers, hidden \(model.hidden), MLP \(model.intermediate), "
            + "\(model.heads)/\(model.kvHeads) heads, vocabulary \(model.vocab); backend \(backend)"]
        lines.append("stages:")
        for s in stages {
            lines.append("  \(s.stage.padding(toLength: 9, withPad: " ", startingAt: 0)) \(s.willRun ? "would run" : "skipped  ")  "
                + "\(s.reason)  (fingerprint \(s.fingerprint.prefix(16)))")
        }
        lines.append("memory (peak, estimated; seq \(sequenceLength) × micro-batch \(microBatch), checkpointing \(gradientCheckpointing ? "on" : "off")):")
        for m in memory {
            lines.append("  \(m.stage.padding(toLength: 9, withPad: " ", startingAt: 0)) \(formatBytes(m.peakBytes))")
            for (k, v) in m.components.sorted(by: { $0.value > $1.value }) where v > 0 {
                lines.append("      \(formatBytes(v).padding(toLength: 10, withPad: " ", startingAt: 0)) \(k)")
            }
        }
        lines.append("verdict: \(verdict)")
        return lines.joined(separator: "\n")
    }
}
