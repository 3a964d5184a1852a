import Foundation
import QLoRAFormats

/// Range and consistency checks that decoding cannot express. Every problem is reported (not just the
/// first), each pointing at the key it concerns.
extension JobSpec {
    /// Throws `SpecErrors` listing every problem, or returns when the spec can run.
    public func validate() throws {
        let problems = self.problems()
        if !problems.isEmpty { throw SpecErrors(problems) }
    }

    /// `missingInputs`, plus each input checked for its declared kind without reading it whole: the model is a
    /// GGUF file or a directory with `config.json` and safetensors weights; the tokenizer a `tokenizer.json`, a
    /// GGUF file or a directory holding one of them; dataset files and task files non-empty. (`qlora validate
    /// --strict`: a CI preflight that fails before a job is queued.)
    public func strictProblems() -> [SpecError] {
        var out = missingInputs()
        let missing = Set(out.map(\.keyPath))
        func isFile(_ url: URL) -> Bool {
            var d: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.path, isDirectory: &d) && !d.boolValue
        }
        func isDirectory(_ url: URL) -> Bool {
            var d: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.path, isDirectory: &d) && d.boolValue
        }
        func hasGGUFMagic(_ url: URL) -> Bool {
            guard let h = FileHandle(forReadingAtPath: url.path) else { return false }
            defer { try? h.close() }
            return (try? h.read(upToCount: 4)) == Data("GGUF".utf8)
        }
        func contents(_ url: URL) -> [String] { (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? [] }
        if let m = model, !missing.contains("model.path") {
            let url = resolve(m.path)
            if isFile(url) {
                if !hasGGUFMagic(url) { out.append(error("model.path", "\(url.path) is a file but not a GGUF model (no GGUF magic); give a .gguf file or an HF model directory")) }
            } else if isDirectory(url) {
                let names = contents(url)
                if !names.contains("config.json") { out.append(error("model.path", "\(url.path) has no config.json (an HF model directory needs one)")) }
                if !names.contains(where: { $0.hasSuffix(".safetensors") }) {
                    out.append(error("model.path", "\(url.path) has no .safetensors weights"))
                }
            }
        }
        if tokenizer != nil, let source = tokenizerSource, !missing.contains("tokenizer.path"), !missing.contains("model.path") {
            let url = resolve(source)
            let key = tokenizer?.path != nil ? "tokenizer.path" : "model.path"
            if isFile(url) {
                if !url.lastPathComponent.hasSuffix(".json") && !hasGGUFMagic(url) {
                    out.append(error(key, "\(url.path) is neither a tokenizer.json nor a GGUF file"))
                }
            } else if isDirectory(url) {
                let names = contents(url)
                if !names.contains("tokenizer.json") && !names.contains(where: { $0.hasSuffix(".gguf") }) {
                    out.append(error(key, "\(url.path) holds no tokenizer.json (nor a .gguf file)"))
                }
            }
        }
        let rowFiles = (dataset?.files ?? []).enumerated().map { ("dataset.files[\($0.offset)].path", $0.element.path) }
            + (evaluation?.tasks ?? []).enumerated().map { ("evaluation.tasks[\($0.offset)].path", $0.element.path) }
        for (key, path) in rowFiles where !missing.contains(key) {
            let url = resolve(path)
            if isFile(url), ((try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0) == 0 {
                out.append(error(key, "\(url.path) is empty"))
            }
        }
        return out
    }

    /// Input files named by the spec that do not exist, as errors at their `path` keys.
    public func missingInputs() -> [SpecError] {
        var out: [SpecError] = []
        for (i, file) in (dataset?.files ?? []).enumerated() {
            let url = resolve(file.path)
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) || isDirectory.boolValue {
                out.append(error("dataset.files[\(i)].path", "input file not found: \(url.path)"))
            } else if let what = RegularFile.irregularKind(atPath: url.path) {
                out.append(error("dataset.files[\(i)].path", "not a regular file: \(url.path) (\(what))"))
            }
        }
        for (i, task) in (evaluation?.tasks ?? []).enumerated() {
            let url = resolve(task.path)
            var isDirectory: ObjCBool = false
            if !FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) || isDirectory.boolValue {
                var message = "task file not found: \(url.path)"
                if task.path.contains("datasets/fetched/") { message += " (run `python3 scripts/fetch_datasets.py` to fetch it)" }
                out.append(error("evaluation.tasks[\(i)].path", message))
            } else if let what = RegularFile.irregularKind(atPath: url.path) {
                out.append(error("evaluation.tasks[\(i)].path", "not a regular file: \(url.path) (\(what))"))
            }
        }
        if let baseline = evaluation?.baseline {
            let url = resolve(baseline)
            if !FileManager.default.fileExists(atPath: url.path) {
                out.append(error("evaluation.baseline", "baseline summary not found: \(url.path)"))
            } else if let what = RegularFile.irregularKind(atPath: url.path) {
                out.append(error("evaluation.baseline", "not a regular file: \(url.path) (\(what))"))
            }
        }
        if let t = tokenizer {
            if let source = tokenizerSource {
                let key = t.path != nil ? "tokenizer.path" : "model.path"
                if !FileManager.default.fileExists(atPath: resolve(source).path) {
                    out.append(error(key, "tokenizer not found: \(resolve(source).path)"))
                } else if let what = RegularFile.irregularKind(atPath: resolve(source).path, allowDirectory: true),
                    !(key == "model.path" && model != nil)
                {
                    out.append(error(key, "not a regular file: \(resolve(source).path) (\(what))"))
                }
            }
        }
        // The model is a directory or a regular file (a FIFO would block its open, a device never ends).
        if let m = model {
            let url = resolve(m.path)
            if !FileManager.default.fileExists(atPath: url.path) {
                var message = "model not found: \(url.path)"
                if m.path.contains("models/SmolLM2") { message += " (run `python3 scripts/fetch_model.py` to fetch it)" }
                out.append(error("model.path", message))
            } else if let what = RegularFile.irregularKind(atPath: url.path, allowDirectory: true) {
                out.append(error("model.path", "not a regular file: \(url.path) (\(what))"))
            }
        }
        return out
    }

    func problems() -> [SpecError] {
        var v = Checks(spec: self)
        v.check(name.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", options: .regularExpression) != nil, "name",
                "`\(name)` must be 1-128 characters of letters, digits, `.`, `_` or `-` (it names the run directory)")
        v.check(seed >= 0, "seed", "must be >= 0, got \(seed)")
        if let d = dataset { v.checkDataset(d) }
        if let t = tokenizer {
            v.check((8...1_048_576).contains(t.maxSeqLen), "tokenizer.max_seq_len", "must be in 8...1048576, got \(t.maxSeqLen)")
            v.check((0...1).contains(t.maxDroppedFraction), "tokenizer.max_dropped_fraction", "must be in [0, 1], got \(t.maxDroppedFraction)")
            v.oneOf(t.chatTemplate, ["model", "chatml", "llama3", "alpaca"], "tokenizer.chat_template")
            v.check(t.path != nil || model != nil, "tokenizer", "give `tokenizer.path` (a tokenizer.json, model directory or .gguf) or a `model` section")
        }
        if let q = quantization {
            v.check(model != nil, "quantization", "quantizing needs a base model: add a `model` section with `path`")
            v.check(q.blocksize >= 32 && q.blocksize <= 4096 && q.blocksize & (q.blocksize - 1) == 0,
                    "quantization.blocksize", "must be a power of two in 32...4096, got \(q.blocksize)")
        }
        v.checkBackendSupport(backendCapabilities)
        if let l = lora { v.checkLoRA(l) }
        if let t = training { v.checkTraining(t) }
        if let e = evaluation { v.checkEvaluation(e) }
        v.checkStageGraph()
        return v.errors
    }

    func error(_ keyPath: String, _ message: String) -> SpecError {
        let mark = JobSpec.mark(for: keyPath, in: marks)
        return SpecError(file: sourceFile, line: mark?.line ?? 1, column: mark?.column ?? 1, keyPath: keyPath, message: message)
    }

    /// The recorded position of `keyPath`, or of its nearest recorded ancestor.
    static func mark(for keyPath: String, in marks: [String: Mark]) -> Mark? {
        var path = keyPath
        while true {
            if let m = marks[path] { return m }
            guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { return marks[""] }
            path = String(path[..<cut])
        }
    }
}

import Yams

private struct Checks {
    let spec: JobSpec
    var errors: [SpecError] = []

    init(spec: JobSpec) { self.spec = spec }

    mutating func check(_ condition: Bool, _ keyPath: String, _ message: @autoclosure () -> String) {
        if !condition { errors.append(spec.error(keyPath, message())) }
    }

    mutating func oneOf(_ value: String, _ allowed: [String], _ keyPath: String) {
        guard !allowed.contains(value) else { return }
        var message = "`\(value)` is not one of \(allowed.map { "`\($0)`" }.joined(separator: ", "))"
        if let s = Suggestion.closest(to: value, in: allowed) { message += "; did you mean `\(s)`?" }
        errors.append(spec.error(keyPath, message))
    }

    mutating func checkDataset(_ d: DatasetSection) {
        check(!d.files.isEmpty, "dataset.files", "must list at least one file")
        if let f = d.evalFraction { check(f >= 0 && f < 1, "dataset.eval_fraction", "must be in [0, 1), got \(f)") }
        if let n = d.evalSize {
            check(n >= 0, "dataset.eval_size", "must be >= 0, got \(n)")
            check(spec.marks["dataset.eval_fraction"] == nil, "dataset.eval_size",
                  "give either `eval_fraction` or `eval_size`, not both")
        }
        check((0...1).contains(d.maxRejectedFraction), "dataset.max_rejected_fraction",
              "must be in [0, 1], got \(d.maxRejectedFraction)")
        for (i, file) in d.files.enumerated() {
            let base = "dataset.files[\(i)]"
            guard let kind = RowFileKind(path: file.path) else {
                errors.append(spec.error("\(base).path",
                    "cannot tell the file type of `\(file.path)`: expected .jsonl, .json or .csv (optionally .gz)"))
                continue
            }
            if kind == .csv && file.format == .chat {
                errors.append(spec.error("\(base).format", "`chat` rows hold a list of messages; use JSONL or JSON, not CSV"))
            }
            let fields = ExampleNormalizer.schemaFields(file.format)
            for key in file.fieldMap.keys.sorted() where !fields.contains(key) {
                var message = "`\(key)` is not a field of the `\(file.format.rawValue)` format (fields: \(fields.joined(separator: ", ")))"
                if let s = Suggestion.closest(to: key, in: fields) { message += "; did you mean `\(s)`?" }
                errors.append(spec.error("\(base).field_map.\(key)", message))
            }
        }
    }

    mutating func checkLoRA(_ l: LoRASection) {
        check((1...1024).contains(l.loraRank), "lora.lora_rank", "must be in 1...1024, got \(l.loraRank)")
        check(l.loraAlpha > 0, "lora.lora_alpha", "must be > 0, got \(l.loraAlpha)")
        check(l.loraDropout >= 0 && l.loraDropout < 1, "lora.lora_dropout", "must be in [0, 1), got \(l.loraDropout)")
        check(!l.targetModules.isEmpty, "lora.target_modules", "must name at least one module")
        for (i, module) in l.targetModules.enumerated() {
            oneOf(module, LoRASection.allTargetModules, "lora.target_modules[\(i)]")
        }
        check(Set(l.targetModules).count == l.targetModules.count, "lora.target_modules", "lists a module twice")
    }

    mutating func checkTraining(_ t: TrainingSection) {
        let p = "training."
        check(t.learningRate > 0 && t.learningRate <= 1, p + "learning_rate", "must be in (0, 1], got \(t.learningRate)")
        check(t.warmupSteps >= 0, p + "warmup_steps", "must be >= 0, got \(t.warmupSteps)")
        if let m = t.maxSteps { check(m >= 1, p + "max_steps", "must be >= 1, got \(m)") }
        check(t.epochs > 0, p + "epochs", "must be > 0, got \(t.epochs)")
        check(t.batchSize >= 1, p + "batch_size", "must be >= 1, got \(t.batchSize)")
        check(t.gradientAccumulationSteps >= 1, p + "gradient_accumulation_steps", "must be >= 1, got \(t.gradientAccumulationSteps)")
        check(t.maxGradNorm >= 0, p + "max_grad_norm", "must be >= 0 (0 disables clipping), got \(t.maxGradNorm)")
        check(t.weightDecay >= 0, p + "weight_decay", "must be >= 0, got \(t.weightDecay)")
        check(t.adamBeta1 >= 0 && t.adamBeta1 < 1, p + "adam_beta1", "must be in [0, 1), got \(t.adamBeta1)")
        check(t.adamBeta2 >= 0 && t.adamBeta2 < 1, p + "adam_beta2", "must be in [0, 1), got \(t.adamBeta2)")
        check(t.adamEpsilon > 0, p + "adam_epsilon", "must be > 0, got \(t.adamEpsilon)")
        check(t.saveEvery >= 1, p + "save_every", "must be >= 1, got \(t.saveEvery)")
        check(t.keepCheckpoints >= 1, p + "keep_checkpoints", "must be >= 1, got \(t.keepCheckpoints)")
        if let budget = t.pagedOptimizerBudgetMB {
            check(budget >= 1, p + "paged_optimizer_budget_mb", "must be >= 1, got \(budget)")
            check(t.optimizer == .pagedAdamW32bit, p + "paged_optimizer_budget_mb",
                  "applies only to optimizer paged_adamw_32bit (the optimizer is \(t.optimizer.rawValue))")
        }
    }

    /// Values the spec accepts as names but the backend would not honour: refused here, at their key, instead
    /// of running something else (e.g. float32 compute for `bfloat16`).
    mutating func checkBackendSupport(_ backend: BackendCapabilities) {
        if let q = spec.quantization, !backend.computeDtypes.contains(q.computeDtype) {
            errors.append(spec.error("quantization.compute_dtype",
                "`\(q.computeDtype.rawValue)` is not supported by the \(backend.name) backend (it computes in "
                + "\(backend.computeDtypes.map { "`\($0.rawValue)`" }.joined(separator: ", ")) only"
                + (backend.computeDtypes.contains(.bfloat16) ? ")" : "; bfloat16 needs `backend: cuda`)")))
        }
        if let t = spec.training, !backend.optimizers.contains(t.optimizer) {
            errors.append(spec.error("training.optimizer",
                "`\(t.optimizer.rawValue)` is not supported by the \(backend.name) backend (supported: "
                + "\(backend.optimizers.map { "`\($0.rawValue)`" }.joined(separator: ", ")); no backend has 8-bit AdamW yet)"))
        }
    }

    mutating func checkEvaluation(_ e: EvaluationSection) {
        let p = "evaluation."
        check((1...4096).contains(e.maxNewTokens), p + "max_new_tokens", "must be in 1...4096, got \(e.maxNewTokens)")
        check(e.maxEvalSequences >= 0, p + "max_eval_sequences", "must be >= 0 (0 skips the eval loss), got \(e.maxEvalSequences)")
        check((16...65536).contains(e.batchRows), p + "batch_rows", "must be in 16...65536, got \(e.batchRows)")
        var names: [String: Int] = [:]
        for (i, task) in e.tasks.enumerated() {
            let base = "\(p)tasks[\(i)]"
            let lower = task.path.lowercased()
            check(lower.hasSuffix(".jsonl") || lower.hasSuffix(".jsonl.gz"), base + ".path",
                  "`\(task.path)` is not a JSONL file (.jsonl or .jsonl.gz)")
            check(task.name.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", options: .regularExpression) != nil, base + ".name",
                  "`\(task.name)` must be 1-64 letters, digits, `.`, `_` or `-` (it names report entries and files)")
            if let first = names[task.name] {
                errors.append(spec.error(base + ".name", "`\(task.name)` is also the name of tasks[\(first)]; give one of them a `name`"))
            } else {
                names[task.name] = i
            }
            if let limit = task.limit { check(limit >= 1, base + ".limit", "must be >= 1, got \(limit)") }
        }
        for (i, prompt) in e.prompts.enumerated() {
            check(!prompt.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(p)prompts[\(i)]", "is empty")
        }
        check(!e.tasks.isEmpty || !e.prompts.isEmpty || e.maxEvalSequences > 0, "evaluation",
              "has nothing to do: give `tasks`, `prompts` or `max_eval_sequences` > 0")
        let taskMetrics = e.tasks.flatMap { ["\($0.name)_acc", "\($0.name)_acc_norm"] }
        let lossMetrics = e.maxEvalSequences > 0 ? ["eval_loss", "perplexity"] : []
        for (i, gate) in e.gates.enumerated() {
            let key = "\(p)gates[\(i)]"
            let known = lossMetrics + taskMetrics
            if !known.contains(gate.metric) {
                var message = "`\(gate.metric)` is not a metric this evaluation reports (it reports: "
                    + "\(known.isEmpty ? "none" : known.map { "`\($0)`" }.joined(separator: ", ")))"
                if ["eval_loss", "perplexity"].contains(gate.metric) { message += "; the eval loss needs `max_eval_sequences` > 0" }
                if let s = Suggestion.closest(to: gate.metric, in: known) { message += "; did you mean `\(s)`?" }
                errors.append(spec.error(key + ".metric", message))
            }
            check(!gate.bounds.isEmpty, key, "has no bound: give `min`, `max`, `min_vs_base`, `max_vs_base`, `min_vs_baseline` or `max_vs_baseline`")
            for (bound, value) in gate.bounds { check(value.isFinite, "\(key).\(bound)", "must be a finite number, got \(value)") }
            if gate.needsBaseline {
                check(e.baseline != nil, key, "compares with a baseline: give `evaluation.baseline` (another run's summary.json)")
            }
        }
    }

    /// Sections must form a prefix-closed graph (training needs data and a model), and every stage they
    /// enable must exist in this build.
    mutating func checkStageGraph() {
        let enabled = StageID.enabled(by: spec)
        for stage in enabled {
            for upstream in stage.upstream where !enabled.contains(upstream) {
                errors.append(spec.error(stage.sectionKeys[0],
                    "the \(stage.rawValue) stage needs the \(upstream.rawValue) stage: add a `\(upstream.sectionKeys[0])` section"))
            }
        }
        for stage in enabled where !StageID.available.contains(stage) {
            let keys = stage.sectionKeys.filter { spec.marks[$0] != nil }
            errors.append(spec.error(keys.first ?? stage.sectionKeys[0],
                "stage not available yet: `\(stage.rawValue)` (configured by `\(keys.joined(separator: "`, `"))`) is not implemented in qlora \(ToolInfo.version)"))
        }
    }
}
