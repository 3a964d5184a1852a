import Foundation

/// One quality gate of `evaluation.gates`: a bound on an evaluation metric of the trained adapter, absolute, relative to
/// the base model, or relative to a baseline run (`evaluation.baseline`, another run's `summary.json`).
///
/// `metric`: `eval_loss`, `perplexity`, or `<task>_acc` / `<task>_acc_norm` for a task of `evaluation.tasks`. Bounds
/// (any of them; at least one): `min`, `max` on the adapter's value; `min_vs_base`, `max_vs_base` on adapter − base;
/// `min_vs_baseline`, `max_vs_baseline` on adapter − the baseline run's adapter. The run checks the gates after its
/// stages (from the evaluate stage's metrics, so changing a gate reruns nothing); a failed gate fails the run with
/// exit status 3, every artifact written.
public struct QualityGate: Codable, Sendable, Equatable {
    public var metric: String
    public var min: Double?
    public var max: Double?
    public var minVsBase: Double?
    public var maxVsBase: Double?
    public var minVsBaseline: Double?
    public var maxVsBaseline: Double?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case metric, min, max, minVsBase = "min_vs_base", maxVsBase = "max_vs_base", minVsBaseline = "min_vs_baseline"
        case maxVsBaseline = "max_vs_baseline"
    }

    public init(metric: String, min: Double? = nil, max: Double? = nil, minVsBase: Double? = nil, maxVsBase: Double? = nil,
                minVsBaseline: Double? = nil, maxVsBaseline: Double? = nil) {
        self.metric = metric
        self.min = min
        self.max = max
        self.minVsBase = minVsBase
        self.maxVsBase = maxVsBase
        self.minVsBaseline = minVsBaseline
        self.maxVsBaseline = maxVsBaseline
    }

    var bounds: [(key: String, value: Double)] {
        [("min", min), ("max", max), ("min_vs_base", minVsBase), ("max_vs_base", maxVsBase), ("min_vs_baseline", minVsBaseline),
         ("max_vs_baseline", maxVsBaseline)].compactMap { k, v in v.map { (k, $0) } }
    }

    var needsBaseline: Bool { minVsBaseline != nil || maxVsBaseline != nil }
}

/// One bound of one gate, checked.
public struct GateResult: Sendable, Encodable, Equatable {
    public var metric: String
    /// The bound as written (`max`, `min_vs_base`, …) and its threshold.
    public var bound: String
    public var threshold: Double
    /// The adapter's value of the metric.
    public var value: Double?
    /// What the bound compares against: the base's or the baseline's value (nil for absolute bounds).
    public var reference: Double?
    public var passed: Bool
    /// "eval_loss 2.81 ≤ 3", "arc_easy_acc − base = -0.05 < 0 (base 0.62)", or why it could not be checked.
    public var message: String
}

public enum QualityGates {
    /// The adapter's and the base's value of `metric` in the evaluate stage's metrics.
    static func values(_ metric: String, in metrics: [String: Double]) -> (adapter: Double?, base: Double?) {
        if metric == "perplexity" {
            return (metrics["eval_loss_adapter"].map(Foundation.exp), metrics["eval_loss_base"].map(Foundation.exp))
        }
        return (metrics[metric + "_adapter"], metrics[metric + "_base"])
    }

    /// Every bound of every gate against the evaluate stage's metrics (and the baseline run's, for baseline bounds).
    public static func check(_ gates: [QualityGate], evaluate: [String: Double], baseline: [String: Double]?) -> [GateResult] {
        var results: [GateResult] = []
        for gate in gates {
            let (adapter, base) = values(gate.metric, in: evaluate)
            let baselineValue = baseline.flatMap { values(gate.metric, in: $0).adapter }
            for (key, threshold) in gate.bounds {
                let reference: Double? = key.hasSuffix("_vs_base") ? base : key.hasSuffix("_vs_baseline") ? baselineValue : nil
                let relative = key.contains("_vs_")
                let against = key.hasSuffix("_vs_baseline") ? "baseline" : "base"
                guard let adapter, !relative || reference != nil else {
                    let missing = adapter == nil ? "the evaluate stage reported no \(gate.metric)" : "no \(against) value of \(gate.metric)"
                    results.append(GateResult(metric: gate.metric, bound: key, threshold: threshold, value: adapter, reference: reference,
                                              passed: false, message: "\(gate.metric) \(key) \(formatMetric(threshold)): \(missing)"))
                    continue
                }
                let x = relative ? adapter - reference! : adapter
                let passed = key.hasPrefix("min") ? x >= threshold : x <= threshold
                let op = key.hasPrefix("min") ? (passed ? "≥" : "<") : (passed ? "≤" : ">")
                let lhs = relative ? "\(gate.metric) − \(against) = \(formatMetric(x))" : "\(gate.metric) \(formatMetric(x))"
                let tail = relative ? " (\(against) \(formatMetric(reference!)), adapter \(formatMetric(adapter)))" : ""
                results.append(GateResult(metric: gate.metric, bound: key, threshold: threshold, value: adapter, reference: reference,
                                          passed: passed, message: "\(lhs) \(op) \(formatMetric(threshold))\(tail)"))
            }
        }
        return results
    }

    /// The evaluate stage's metrics recorded in another run's `summary.json`.
    public static func baselineMetrics(summary url: URL) throws -> [String: Double] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw StageFailure("evaluation.baseline: cannot read \(url.path): \(error)") }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let stages = object["stages"] as? [[String: Any]],
              let evaluate = stages.first(where: { $0["stage"] as? String == "evaluate" }),
              let metrics = evaluate["metrics"] as? [String: Any] else {
            throw StageFailure("evaluation.baseline: \(url.path) is not a qlora summary.json with an evaluate stage")
        }
        return metrics.compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }
}
