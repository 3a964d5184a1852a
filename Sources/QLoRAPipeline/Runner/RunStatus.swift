import Foundation
import QLoRAFormats
#if canImport(Glibc)
import Glibc
#endif

/// What `qlora status` shows: per stage, the manifest's facts and the latest event.
public struct RunStatus: Encodable, Sendable {
    public struct Stage: Encodable, Sendable {
        public var stage: String
        /// complete, failed, running, incomplete, modified (with --verify) or not run.
        public var state: String
        public var fingerprint: String?
        public var finishedAt: String?
        public var durationSeconds: Double?
        public var outputFiles: Int?
        public var outputBytes: Int64?
        public var metrics: [String: Double]?
        public var detail: String?

        enum CodingKeys: String, CodingKey {
            case stage, state, fingerprint, finishedAt = "finished_at", durationSeconds = "duration_seconds"
            case outputFiles = "output_files", outputBytes = "output_bytes", metrics, detail
        }
    }

    public var runDirectory: String
    /// The lock holder while a `run` is in progress.
    public var runningHolder: String?
    public var stages: [Stage]

    enum CodingKeys: String, CodingKey { case runDirectory = "run_directory", runningHolder = "running", stages }

    public static func read(_ run: RunDirectory, verify: Bool) -> RunStatus {
        let holder = lockHolder(run)
        let lastEvents = latestEvents(run)
        var stages: [Stage] = []
        for id in StageID.allCases {
            let event = lastEvents[id.rawValue]
            var s = Stage(stage: id.rawValue, state: "not run")
            if let m = run.manifest(id) {
                s.state = m.state == StageManifest.completeState ? "complete" : "incomplete"
                s.fingerprint = m.fingerprint
                s.finishedAt = m.finishedAt
                s.durationSeconds = m.durationSeconds
                s.outputFiles = m.outputs.count
                s.outputBytes = m.outputs.reduce(0) { $0 + $1.size }
                s.metrics = m.metrics
                if verify, let problem = m.verifyOutputs(in: run.stageURL(id)) {
                    s.state = "modified"
                    s.detail = problem
                }
            } else if FileManager.default.fileExists(atPath: run.stageURL(id).path) {
                s.state = "incomplete"
            }
            if let event {
                if event.kind == "stage_failed", s.finishedAt.map({ $0 < event.time }) ?? true {
                    s.state = "failed"
                    s.detail = event.error
                } else if event.kind == "stage_started", holder != nil {
                    s.state = "running"
                }
            }
            if s.state != "not run" || event != nil { stages.append(s) }
        }
        return RunStatus(runDirectory: run.url.path, runningHolder: holder, stages: stages)
    }

    private struct EventLine: Decodable {
        var time: String
        var kind: String
        var stage: String?
        var error: String?
        enum CodingKeys: String, CodingKey { case time, kind = "event", stage, error }
    }

    private static func latestEvents(_ run: RunDirectory) -> [String: EventLine] {
        guard let text = try? String(contentsOf: run.eventsURL, encoding: .utf8) else { return [:] }
        var out: [String: EventLine] = [:]
        let decoder = JSONDecoder()
        for line in text.split(separator: "\n") {
            guard let e = try? decoder.decode(EventLine.self, from: Data(line.utf8)), let stage = e.stage else { continue }
            out[stage] = e
        }
        return out
    }

    /// The lock file names its holder; it counts only while that process is alive (a `kill -9`ed run
    /// leaves the text behind but no process).
    private static func lockHolder(_ run: RunDirectory) -> String? {
        guard let text = try? String(contentsOf: run.lockURL, encoding: .utf8) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = trimmed.split(separator: " ")
        guard parts.count > 1, parts[0] == "pid", let pid = Int32(parts[1]), kill(pid, 0) == 0 else { return nil }
        return trimmed
    }
}
