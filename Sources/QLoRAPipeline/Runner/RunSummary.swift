import Foundation
import QLoRAFormats

/// The machine- and human-readable summary of one `qlora run`: `summary.json` and `summary.md` in the run
/// directory, written at the end of every run (`summary.json` also when the spec is invalid, `writeEarly`).
/// `summary.json` carries the outcome (`status`, `exit_code`, `resumable`: RunOutcome.swift), each stage, and the
/// artifacts (every output of a completed stage, with its sha256).
public enum RunSummary {
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

    /// One output file of a completed stage (from its manifest), relative to the run directory.
    struct Artifact: Encodable {
        var stage: String
        var path: String
        var sha256: String
        var size: Int64
    }

    struct Summary: Encodable {
        var name: String
        var runDirectory: String
        var status: String
        var exitCode: Int32
        var resumable: Bool
        var failure: String?
        var totalSeconds: Double
        var toolVersion: String
        var backend: String?
        var stages: [StageEntry]
        var artifacts: [Artifact]
        var gates: [GateResult]
        enum CodingKeys: String, CodingKey {
            case name, runDirectory = "run_directory", status, exitCode = "exit_code", resumable, failure, totalSeconds = "total_seconds"
            case toolVersion = "tool_version", backend, stages, artifacts, gates
        }
    }

    static func writeJSON(_ summary: Summary, to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var json = try encoder.encode(summary)
        json.append(0x0A)
        try AtomicFile.write(json, to: directory.appendingPathComponent("summary.json"))
    }

    /// The summary of a run that ended before any stage (an invalid spec or command line): `summary.json` in
    /// `runDirectory` (created if needed) with the outcome and the message, no stages. Not for `.locked`: the
    /// directory belongs to the run that holds it.
    public static func writeEarly(runDirectory: URL, name: String, outcome: RunOutcome, message: String) throws {
        precondition(outcome != .locked, "a locked run directory is another run's")
        try FileManager.default.createDirectory(at: runDirectory, withIntermediateDirectories: true)
        try writeJSON(Summary(name: name, runDirectory: runDirectory.path, status: outcome.rawValue, exitCode: outcome.exitCode,
                              resumable: outcome.resumable, failure: message, totalSeconds: 0, toolVersion: ToolInfo.version,
                              backend: nil, stages: [], artifacts: [], gates: []), to: runDirectory)
    }

    /// Writes both files atomically and returns the Markdown file's URL.
    @discardableResult
    public static func write(_ result: Pipeline.Result, spec: JobSpec, totalSeconds: Double) throws -> URL {
        let run = RunDirectory(url: result.runDirectory)
        let artifacts = result.stages.flatMap { s -> [Artifact] in
            guard s.state == .ran || s.state == .skipped, let m = run.manifest(s.stage) else { return [] }
            return m.outputs.map { Artifact(stage: s.stage.rawValue, path: "\(s.stage.rawValue)/\($0.path)", sha256: $0.sha256, size: $0.size) }
        }
        let outcome = result.outcome
        let summary = Summary(
            name: spec.name, runDirectory: result.runDirectory.path, status: outcome.rawValue, exitCode: outcome.exitCode,
            resumable: outcome.resumable, failure: result.failure, totalSeconds: totalSeconds, toolVersion: ToolInfo.version,
            backend: result.backend,
            stages: result.stages.map {
                StageEntry(stage: $0.stage.rawValue, state: $0.state.rawValue, reason: $0.reason,
                           durationSeconds: $0.durationSeconds, metrics: $0.metrics, notes: $0.notes)
            }, artifacts: artifacts, gates: result.gates)
        try writeJSON(summary, to: result.runDirectory)

        var md = "# qlora run `\(spec.name)`: \(outcome == .succeeded ? "succeeded" : outcome.rawValue.uppercased())\n\n"
        if let failure = result.failure { md += "> \(failure.replacingOccurrences(of: "\n", with: " "))\n\n" }
        md += "| stage | state | duration | key metrics |\n|---|---|---:|---|\n"
        for s in result.stages {
            let metrics = s.metrics.keys.sorted().map { "\($0) \(formatMetric(s.metrics[$0]!))" }.joined(separator: ", ")
            let state = s.state == .ran ? "ran (\(s.reason))" : s.state.rawValue
            md += "| \(s.stage.rawValue) | \(state) | \(formatDuration(s.durationSeconds)) | \(metrics) |\n"
        }
        if !result.gates.isEmpty {
            md += "\n| quality gate | bound | result |\n|---|---|---|\n"
            for g in result.gates {
                md += "| \(g.metric) | \(g.bound) \(formatMetric(g.threshold)) | \(g.passed ? "passed" : "**FAILED**"): \(g.message) |\n"
            }
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
