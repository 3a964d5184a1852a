import Foundation
import QLoRAFormats
import QLoRAModel
import QLoRATokenizer

/// Stage 5: the trained adapter against the base model it was trained on.
///
/// Loads the prepared 4-bit base (`prepare/model`) and the train stage's PEFT adapter (`PEFTAdapter`), and
/// runs both through the inference path (`LlamaModel`, the adapter as low-rank deltas, KV cache for
/// generation, batched shared-prefix forwards for scoring):
/// - eval-split loss and perplexity (the first `max_eval_sequences` sequences of `tokenize/eval.tokens`,
///   targets as in training);
/// - multiple-choice accuracy per task (`acc`, `acc_norm`; see `ChoiceEvaluation`);
/// - greedy answers to `prompts`, rendered with the tokenize stage's chat template, stopping at EOS.
///
/// Outputs (in `<run>/evaluate/`): `report.json`, `report.md`, `loss.svg` (train loss per step from
/// `train/metrics.jsonl` with the two eval losses as levels), and `<task>.predictions.jsonl` per task (one
/// line per question: id, answer, each model's per-choice log-likelihoods and picks).
public struct EvaluateStage: Stage {
    public let id = StageID.evaluate
    public let formatVersion = 1
    public let usesBackend = true

    public init() {}

    public func configuration(of spec: JobSpec) throws -> Data {
        // Task file contents enter the fingerprint as input files; the chat template and tokenizer through
        // the tokenize stage's fingerprint.
        // The quality gates are checked by the runner after the stages: changing one reruns nothing.
        struct Config: Encodable { var evaluation: EvaluationSection? }
        var evaluation = spec.evaluation
        evaluation?.gates = []
        evaluation?.baseline = nil
        return try canonicalJSON(Config(evaluation: evaluation))
    }

    public func inputFiles(of spec: JobSpec) -> [URL] {
        (spec.evaluation?.tasks ?? []).map { spec.resolve($0.path) }
    }

    public func run(_ context: StageContext) throws -> StageReport {
        let spec = context.spec
        guard let section = spec.evaluation else { throw StageFailure("the spec has no `evaluation` section") }
        guard let tokenize = context.upstream[.tokenize], let prepare = context.upstream[.prepare],
              let train = context.upstream[.train] else {
            throw StageFailure("the evaluate stage needs the tokenize, prepare and train stages")
        }
        let started = Date()
        let backend = context.backend.backend
        context.progress.start("loading the model and the adapter", total: nil, unit: .items)
        let base: LlamaModel, adapted: LlamaModel, tokenizer: Tokenizer
        do { base = try ModelLoader.loadModel(path: prepare.appendingPathComponent("model").path, backend: backend) } catch {
            throw StageFailure("cannot load the prepared model: \(error)")
        }
        do { adapted = try base.withAdapter(directory: train.path) } catch {
            throw StageFailure("cannot load the adapter: \(error)")
        }
        guard let source = spec.tokenizerSource else { throw StageFailure("the spec names no tokenizer") }
        do { tokenizer = try Tokenizer.load(path: spec.resolve(source).path) } catch {
            throw StageFailure("cannot load the tokenizer: \(error)")
        }
        let loadSeconds = Date().timeIntervalSince(started)
        var notes: [String] = []
        var metrics: [String: Double] = [:]

        // Eval-split loss.
        var t0 = Date()
        var evalLoss: EvaluationReport.EvalLoss?
        let evalTokens = tokenize.appendingPathComponent("eval.tokens")
        if section.maxEvalSequences > 0, FileManager.default.fileExists(atPath: evalTokens.path) {
            let reader: TokenFile.Reader
            do { reader = try TokenFile.Reader(path: evalTokens.path) } catch { throw StageFailure("cannot read the eval tokens: \(error)") }
            if reader.sequenceCount == 0 { notes.append("the eval split is empty: no eval loss") }
            let n = min(section.maxEvalSequences, reader.sequenceCount)
            let runs = Self.evalRuns(reader, count: n)
            if let long = runs.first(where: { $0.tokens.count > base.config.maxPositions }) {
                throw StageFailure("an eval sequence has \(long.tokens.count) tokens, more than the model's \(base.config.maxPositions) positions")
            }
            var losses: [(sum: Double, count: Int)] = []
            for (label, model) in [("base", base), ("adapter", adapted)] {
                context.progress.start("eval loss (\(label)), \(runs.count) documents of \(n) sequences", total: Int64(runs.count), unit: .items)
                let l = Scoring.tokenLoss(model, runs, rowsPerForward: section.batchRows) { context.progress.update(Int64($0)) }
                context.progress.finish(Int64(runs.count))
                losses.append(l)
            }
            if losses[0].count > 0 {
                func loss(_ l: (sum: Double, count: Int)) -> EvaluationReport.Loss {
                    let mean = l.sum / Double(l.count)
                    return .init(loss: mean, perplexity: Foundation.exp(mean))
                }
                let e = EvaluationReport.EvalLoss(sequences: n, tokens: losses[0].count, base: loss(losses[0]), adapter: loss(losses[1]))
                evalLoss = e
                metrics["eval_loss_base"] = e.base.loss
                metrics["eval_loss_adapter"] = e.adapter.loss
                notes.append(String(format: "eval loss %.4f (base) → %.4f (adapter), perplexity %.2f → %.2f, on %ld tokens",
                                    e.base.loss, e.adapter.loss, e.base.perplexity, e.adapter.perplexity, e.tokens))
            }
        }
        let evalLossSeconds = Date().timeIntervalSince(t0)

        // Multiple-choice tasks.
        t0 = Date()
        var tasks: [EvaluationReport.Task] = []
        for task in section.tasks {
            let path = spec.resolve(task.path).path
            let questions: [MultipleChoiceQuestion]
            do { questions = try MultipleChoiceTask.read(path: path, limit: task.limit) } catch {
                throw StageFailure("task \(task.name): \(error)")
            }
            guard !questions.isEmpty else { throw StageFailure("task \(task.name): \(path) holds no questions") }
            let tokens = questions.map { ChoiceEvaluation.tokens($0, tokenizer: tokenizer) }
            for (i, t) in tokens.enumerated() {
                let length = t.context.count + (t.choices.map(\.count).max() ?? 0)
                if length > base.config.maxPositions {
                    throw StageFailure("task \(task.name): question \(questions[i].id ?? "#\(i + 1)") has \(length) tokens, more than the model's \(base.config.maxPositions) positions")
                }
            }
            var predictions: [[ChoiceEvaluation.Prediction]] = []
            for (label, model) in [("base", base), ("adapter", adapted)] {
                context.progress.start("\(task.name) (\(label)), \(questions.count) questions", total: Int64(questions.count), unit: .items)
                predictions.append(ChoiceEvaluation.predictions(model, questions, tokens, rowsPerForward: section.batchRows) {
                    context.progress.update(Int64($0))
                })
                context.progress.finish(Int64(questions.count))
            }
            let b = ChoiceEvaluation.scores(questions, predictions[0]), a = ChoiceEvaluation.scores(questions, predictions[1])
            let changed = zip(predictions[0], predictions[1]).filter { $0.pick != $1.pick }.count
            tasks.append(.init(name: task.name, path: task.path, questions: questions.count, base: b, adapter: a, changedPicks: changed))
            metrics["\(task.name)_acc_base"] = b.acc
            metrics["\(task.name)_acc_adapter"] = a.acc
            metrics["\(task.name)_acc_norm_base"] = b.accNorm
            metrics["\(task.name)_acc_norm_adapter"] = a.accNorm
            notes.append(String(format: "%@: acc %.1f%% → %.1f%%, acc_norm %.1f%% → %.1f%% (%ld questions)", task.name,
                                b.acc * 100, a.acc * 100, b.accNorm * 100, a.accNorm * 100, questions.count))
            try Self.writePredictions(questions, predictions, to: context.output.appendingPathComponent("\(task.name).predictions.jsonl"))
        }
        let tasksSeconds = Date().timeIntervalSince(t0)

        // Generation samples.
        t0 = Date()
        var samples: [EvaluationReport.Sample] = []
        if !section.prompts.isEmpty {
            let formatter: ChatFormatter
            do { formatter = try ChatFormatter(tokenizer: tokenizer, choice: spec.tokenizer?.chatTemplate ?? "model") } catch {
                throw StageFailure("chat template: \(error)")
            }
            var stops = Set(base.config.eosTokenIDs)
            if let eos = tokenizer.eosTokenID { stops.insert(eos) }
            context.progress.start("samples, base vs adapter", total: Int64(2 * section.prompts.count), unit: .items)
            for (i, prompt) in section.prompts.enumerated() {
                let text: String
                do { text = try formatter.render([Example.Message(role: .user, content: prompt)], addGenerationPrompt: true) } catch {
                    throw StageFailure("prompts[\(i)]: the chat template failed: \(error)")
                }
                let ids = tokenizer.encode(text, addSpecialTokens: false)
                guard ids.count < base.config.maxPositions else {
                    throw StageFailure("prompts[\(i)] has \(ids.count) tokens with the chat template, the model only \(base.config.maxPositions) positions")
                }
                let parameters = Generator.Parameters(maxNewTokens: section.maxNewTokens, stopTokens: stops)
                var answers: [(text: String, tokens: Int, stopped: Bool)] = []
                for (k, model) in [base, adapted].enumerated() {
                    let out = Generator(model: model).generate(prompt: ids, parameters)
                    let stopped = out.last.map(stops.contains) ?? false
                    let kept = stopped ? Array(out.dropLast()) : out
                    answers.append((tokenizer.decode(kept, skipSpecialTokens: true), out.count, stopped))
                    context.progress.update(Int64(2 * i + k + 1))
                }
                samples.append(.init(prompt: prompt, base: answers[0].text, adapter: answers[1].text, baseTokens: answers[0].tokens,
                                     adapterTokens: answers[1].tokens, baseStopped: answers[0].stopped, adapterStopped: answers[1].stopped))
            }
            context.progress.finish(Int64(2 * section.prompts.count))
        }
        let samplesSeconds = Date().timeIntervalSince(t0)

        // Report and plot.
        let trainLoss = try Self.trainLoss(train.appendingPathComponent("metrics.jsonl"))
        let report = EvaluationReport(
            run: spec.name, adapterParameters: adapted.adapter?.parameterCount ?? 0, maxNewTokens: section.maxNewTokens,
            training: .init(steps: trainLoss.last?.step ?? 0, firstLoss: trainLoss.first?.loss, finalLoss: trainLoss.last?.loss),
            evalLoss: evalLoss, tasks: tasks, samples: samples,
            timing: .init(loadSeconds: loadSeconds, evalLossSeconds: evalLossSeconds, tasksSeconds: tasksSeconds,
                          samplesSeconds: samplesSeconds, totalSeconds: Date().timeIntervalSince(started)))
        try AtomicFile.write(try report.json(), to: context.output.appendingPathComponent("report.json"))
        try AtomicFile.write(report.markdown, to: context.output.appendingPathComponent("report.md"))
        try AtomicFile.write(Self.plot(spec.name, trainLoss: trainLoss, evalLoss: evalLoss).svg,
                             to: context.output.appendingPathComponent("loss.svg"))
        metrics["seconds_total"] = report.timing.totalSeconds
        notes.append(String(format: "%.1f s: load %.1f, eval loss %.1f, multiple choice %.1f, %ld samples %.1f",
                            report.timing.totalSeconds, loadSeconds, evalLossSeconds, tasksSeconds, samples.count, samplesSeconds))
        return StageReport(metrics: metrics, notes: notes)
    }

    /// The eval sequences' documents as scoring runs, with targets as training sets them: row `t` predicts
    /// token `t + 1` when that token is a trained label of the same document.
    static func evalRuns(_ reader: TokenFile.Reader, count: Int) -> [ScoringBatch.Run] {
        var runs: [ScoringBatch.Run] = []
        for i in 0..<count {
            let s = reader.sequence(i)
            let bounds = s.documentStarts + [s.ids.count]
            for d in 0..<(bounds.count - 1) where bounds[d + 1] > bounds[d] {
                let range = bounds[d]..<bounds[d + 1]
                let tokens = range.map { Int(s.ids[$0]) }
                let targets: [Int?] = range.map { t in t + 1 < range.upperBound && s.labels[t + 1] ? Int(s.ids[t + 1]) : nil }
                runs.append(ScoringBatch.Run(tokens: tokens, targets: targets))
            }
        }
        return runs
    }

    /// `(step, loss)` of every line of the train stage's metrics.jsonl (empty when it is missing).
    static func trainLoss(_ url: URL) throws -> [(step: Int, loss: Double)] {
        guard FileManager.default.fileExists(atPath: url.path) else { return [] }
        var out: [(step: Int, loss: Double)] = []
        let reader = try LineReader(path: url.path)
        try reader.forEachLine { line, number, _ in
            guard let o = (try? JSONParser.parse(line))?.objectValue, let step = o["step"]?.numberValue, let loss = o["loss"]?.numberValue else {
                throw StageFailure("\(url.path):\(number): expected a JSON object with numeric `step` and `loss`")
            }
            out.append((Int(step), loss))
        }
        return out
    }

    static func plot(_ name: String, trainLoss: [(step: Int, loss: Double)], evalLoss: EvaluationReport.EvalLoss?) -> LossPlot {
        var levels: [LossPlot.Level] = []
        if let e = evalLoss {
            levels.append(.init(name: String(format: "eval loss, base (%.3f)", e.base.loss), color: "#7f7f7f", value: e.base.loss))
            levels.append(.init(name: String(format: "eval loss, adapter (%.3f)", e.adapter.loss), color: "#d62728", value: e.adapter.loss))
        }
        var series: [LossPlot.Series] = []
        if !trainLoss.isEmpty {
            series.append(.init(name: "train loss", color: trainLoss.count >= 20 ? "#a6c8e6" : "#1f77b4",
                                points: trainLoss.map { (Double($0.step), $0.loss) }))
        }
        if trainLoss.count >= 20 {
            // Per-step losses of small batches are noisy: a trailing mean over 10 steps shows the trend.
            let window = 10
            var smoothed: [(x: Double, y: Double)] = []
            var sum = 0.0
            for (i, m) in trainLoss.enumerated() {
                sum += m.loss
                if i >= window { sum -= trainLoss[i - window].loss }
                if i >= window - 1 { smoothed.append((Double(m.step), sum / Double(window))) }
            }
            series.append(.init(name: "train loss, mean of \(window) steps", color: "#1f77b4", points: smoothed))
        }
        return LossPlot(title: "\(name): training and eval loss", series: series, levels: levels)
    }

    static func writePredictions(_ questions: [MultipleChoiceQuestion], _ predictions: [[ChoiceEvaluation.Prediction]], to url: URL) throws {
        var out: [UInt8] = []
        for (i, q) in questions.enumerated() {
            func model(_ p: ChoiceEvaluation.Prediction) -> JSONValue {
                .object(JSONObject([("log_likelihoods", .array(p.logLikelihoods.map { .number(($0 * 1e4).rounded() / 1e4) })),
                                    ("pick", .number(Double(p.pick))), ("pick_norm", .number(Double(p.pickNorm)))]))
            }
            let line = JSONValue.object(JSONObject([
                ("id", q.id.map(JSONValue.string) ?? .number(Double(i))), ("answer", .number(Double(q.answer))),
                ("base", model(predictions[0][i])), ("adapter", model(predictions[1][i])),
            ]))
            JSONWriter.write(line, into: &out)
            out.append(UInt8(ascii: "\n"))
        }
        try AtomicFile.write(Data(out), to: url)
    }
}
