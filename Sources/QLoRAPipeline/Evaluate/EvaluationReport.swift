import Foundation

/// What the evaluate stage measured: `report.json` (this structure, pretty-printed, sorted keys) and
/// `report.md` (the same as tables).
struct EvaluationReport: Codable {
    struct Loss: Codable {
        var loss: Double
        var perplexity: Double
    }

    struct EvalLoss: Codable {
        var sequences: Int
        var tokens: Int
        var base: Loss
        var adapter: Loss
    }

    struct Task: Codable {
        var name: String
        var path: String
        var questions: Int
        var base: ChoiceEvaluation.Scores
        var adapter: ChoiceEvaluation.Scores
        /// Questions whose plain pick differs between base and adapter.
        var changedPicks: Int

        enum CodingKeys: String, CodingKey { case name, path, questions, base, adapter, changedPicks = "changed_picks" }
    }

    struct Sample: Codable {
        var prompt: String
        var base: String
        var adapter: String
        var baseTokens: Int
        var adapterTokens: Int
        /// Whether each answer ended with EOS (false: it hit `max_new_tokens`).
        var baseStopped: Bool
        var adapterStopped: Bool

        enum CodingKeys: String, CodingKey {
            case prompt, base, adapter, baseTokens = "base_tokens", adapterTokens = "adapter_tokens"
            case baseStopped = "base_stopped", adapterStopped = "adapter_stopped"
        }
    }

    struct Training: Codable {
        var steps: Int
        var firstLoss: Double?
        var finalLoss: Double?

        enum CodingKeys: String, CodingKey { case steps, firstLoss = "first_loss", finalLoss = "final_loss" }
    }

    struct Timing: Codable {
        var loadSeconds: Double
        var evalLossSeconds: Double
        var tasksSeconds: Double
        var samplesSeconds: Double
        var totalSeconds: Double

        enum CodingKeys: String, CodingKey {
            case loadSeconds = "load_s", evalLossSeconds = "eval_loss_s", tasksSeconds = "tasks_s"
            case samplesSeconds = "samples_s", totalSeconds = "total_s"
        }
    }

    var formatVersion = 1
    var run: String
    var adapterParameters: Int
    var maxNewTokens: Int
    var training: Training
    var evalLoss: EvalLoss?
    var tasks: [Task]
    var samples: [Sample]
    var timing: Timing

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", run, adapterParameters = "adapter_parameters", maxNewTokens = "max_new_tokens"
        case training, evalLoss = "eval_loss", tasks, samples, timing
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try encoder.encode(self) + Data("\n".utf8)
    }

    var markdown: String {
        func f(_ v: Double, _ digits: Int = 4) -> String { String(format: "%.\(digits)f", v) }
        func pct(_ v: Double) -> String { String(format: "%.1f%%", v * 100) }
        func signed(_ v: Double, _ digits: Int) -> String { (v >= 0 ? "+" : "") + String(format: "%.\(digits)f", v) }
        var s = "# Evaluation: \(run)\n\n"
        s += "Base model (prepared 4-bit) vs base + LoRA adapter (\(adapterParameters) parameters)"
        s += ", after \(training.steps) training steps"
        if let a = training.firstLoss, let b = training.finalLoss { s += " (train loss \(f(a)) → \(f(b)))" }
        s += ".\n\n![loss](loss.svg)\n\n"
        if let e = evalLoss {
            s += "## Eval-split loss\n\n\(e.sequences) sequences, \(e.tokens) scored tokens.\n\n"
            s += "| model | loss | perplexity |\n|---|---:|---:|\n"
            s += "| base | \(f(e.base.loss)) | \(f(e.base.perplexity, 2)) |\n"
            s += "| base + adapter | \(f(e.adapter.loss)) | \(f(e.adapter.perplexity, 2)) |\n"
            s += "| change | \(signed(e.adapter.loss - e.base.loss, 4)) | \(signed(e.adapter.perplexity - e.base.perplexity, 2)) |\n\n"
        }
        if !tasks.isEmpty {
            s += "## Multiple choice\n\nAccuracy by log-likelihood ranking of the choices: `acc` compares summed log-probabilities, "
            s += "`acc_norm` log-probability per byte of the choice.\n\n"
            s += "| task | questions | base acc | adapter acc | base acc_norm | adapter acc_norm | changed picks |\n"
            s += "|---|---:|---:|---:|---:|---:|---:|\n"
            for t in tasks {
                s += "| \(t.name) | \(t.questions) | \(pct(t.base.acc)) | \(pct(t.adapter.acc)) | \(pct(t.base.accNorm)) | \(pct(t.adapter.accNorm)) | \(t.changedPicks) |\n"
            }
            s += "\n"
        }
        if !samples.isEmpty {
            s += "## Samples\n\nGreedy, chat template applied, at most \(maxNewTokens) new tokens.\n\n"
            for (i, x) in samples.enumerated() {
                s += "### \(i + 1). \(Self.oneLine(x.prompt))\n\n"
                s += "| base | base + adapter |\n|---|---|\n"
                s += "| \(Self.cell(x.base, stopped: x.baseStopped)) | \(Self.cell(x.adapter, stopped: x.adapterStopped)) |\n\n"
            }
        }
        s += "## Timing\n\n| part | seconds |\n|---|---:|\n"
        s += "| load model + adapter | \(f(timing.loadSeconds, 1)) |\n| eval loss | \(f(timing.evalLossSeconds, 1)) |\n"
        s += "| multiple choice | \(f(timing.tasksSeconds, 1)) |\n| samples | \(f(timing.samplesSeconds, 1)) |\n"
        s += "| total | \(f(timing.totalSeconds, 1)) |\n"
        return s
    }

    static func oneLine(_ s: String) -> String {
        s.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ")
    }

    /// Text for a Markdown table cell: pipes escaped, line breaks as `<br>`.
    static func cell(_ s: String, stopped: Bool) -> String {
        var t = s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "|", with: "\\|")
            .replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: "<br>")
        if t.isEmpty { t = "*(empty)*" }
        return stopped ? t : t + " *(cut at max_new_tokens)*"
    }
}
