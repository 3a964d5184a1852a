import Foundation
import QLoRAFormats

/// The machine- and human-readable summary of one `qlora run` (CI mode): `summary.json` and
/// `summary.md` in the run directory.
public enum RunSummary {
    /// Writes both files atomically and returns the Markdown file's URL.
    @discardableResult
    public static func write(_ result: Pipeline.Result, spec: JobSpec, totalSeconds: Double) throws -> URL {
        struct StageEntry: Encodable {
            var stage: String
            var state: String
            var reason: String
            var durationSeconds: Double
            var metrics: [String: Double]
            var notes: [String]
            enum CodingKeys: String, CodingKey {
                case stage, state, reason, durationSeconds = "duration_seconds", metrics, notes
            }
        }
        struct Summary: Encodable {
            var name: String
            var runDirectory: String
            var status: String
            var failure: String?
            var totalSeconds: Double
            var toolVersion: String
            var backend: String
            var stages: [StageEntry]
            enum CodingKeys: String, CodingKey {
                case name, runDirectory = "run_directory", status, failure, totalSeconds = "total_seconds"
                case toolVersion = "tool_version", backend, stages
            }
        }
        let summary = Summary(
            name: spec.name, runDirectory: result.runDirectory.path, status: result.succeeded ? "succeeded" : "failed",
            failure: result.failure, totalSeconds: totalSeconds, toolVersion: ToolInfo.version, backend: result.backend,
            stages: result.stages.map {
                StageEntry(stage: $0.stage.rawValue, state: $0.state.rawValue, reason: $0.reason,
                           durationSeconds: $0.durationSeconds, metrics: $0.metrics, notes: $0.notes)
            })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var json = try encoder.encode(summary)
        json.append(0x0A)
        try AtomicFile.write(json, to: result.runDirectory.appendingPathComponent("summary.json"))

        var md = "# qlora run `\(spec.name)`: \(result.succeeded ? "succeeded" : "FAILED")\n\n"
        if let failure = result.failure { md += "> \(failure.replacingOccurrences(of: "\n", with: " "))\n\n" }
        md += "| stage | state | duration | key metrics |\n|---|---|---:|---|\n"
        for s in result.stages {
            let metrics = s.metrics.keys.sorted().map { "\($0) \(formatMetric(s.metrics[$0]!))" }.joined(separator: ", ")
            let state = s.state == .ran ? "ran (\(s.reason))" : s.state.rawValue
            md += "| \(s.stage.rawValue) | \(state) | \(formatDuration(s.durationSeconds)) | \(metrics) |\n"
        }
        let notes = result.stages.flatMap { s in s.notes.map { "- **\(s.stage.rawValue)**: \($0)" } }
        if !notes.isEmpty { md += "\n" + notes.joined(separator: "\n") + "\n" }
        md += "\nRun directory: `\(result.runDirectory.path)`, total \(formatDuration(totalSeconds)), backend \(result.backend), "
            + "qlora \(ToolInfo.version).\n"
        let url = result.runDirectory.appendingPathComponent("summary.md")
        try AtomicFile.write(md, to: url)
        return url
    }
}

/// `0.4 s`, `12.3 s`, `4 m 05 s`, `1 h 02 m`.
public func formatDuration(_ seconds: Double) -> String {
    if seconds < 60 { return String(format: "%.1f s", seconds) }
    let s = Int(seconds.rounded())
    if s < 3600 { return String(format: "%d m %02d s", s / 60, s % 60) }
    return String(format: "%d h %02d m", s / 3600, (s % 3600) / 60)
}

public func formatMetric(_ x: Double) -> String {
    if x == x.rounded() && abs(x) < 1e15 { return String(Int(x)) }
    return String(format: abs(x) >= 100 ? "%.1f" : "%.4g", x)
}

/// A byte count for people: "1.23 GB", "4.5 MB", "6.7 kB", "89 B" (decimal units).
public func formatBytes(_ n: Int64) -> String {
    let x = Double(n)
    if x >= 1e9 { return String(format: "%.2f GB", x / 1e9) }
    if x >= 1e6 { return String(format: "%.1f MB", x / 1e6) }
    if x >= 1e3 { return String(format: "%.1f kB", x / 1e3) }
    return "\(n) B"
}
