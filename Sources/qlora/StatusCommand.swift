import ArgumentParser
import Foundation
import QLoRAFormats
import QLoRAPipeline

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the stages of a run directory: state, fingerprint, timings, outputs.",
        discussion: """
            Exit status: 0, or with --verify 1 when a stage is modified (an output no longer matches its \
            hash), failed or incomplete; 2 when the run directory does not exist.
            """)

    @Argument(help: "The run directory (e.g. runs/tiny).")
    var runDir: String

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Flag(help: "Re-hash every output and report stages whose files changed; exit 1 when a stage is modified, failed or incomplete.")
    var verify = false

    func run() throws {
        let url = URL(fileURLWithPath: runDir).standardizedFileURL
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            printError("error: \(runDir): no such run directory")
            throw ExitCode(2)
        }
        let status = RunStatus.read(RunDirectory(url: url), verify: verify)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(status), as: UTF8.self))
            try exitForProblems(status)
            return
        }
        printSafe("run \(url.path)\(status.runningHolder.map { " (running: \($0))" } ?? "")")
        let header = ["stage", "state", "fingerprint", "finished", "duration", "outputs"]
        var rows = [header]
        for s in status.stages {
            rows.append([s.stage, s.state, s.fingerprint.map { String($0.prefix(12)) } ?? "-",
                         s.finishedAt ?? "-", s.durationSeconds.map(formatDuration) ?? "-",
                         s.outputFiles.map { "\($0) files, \(formatBytes(s.outputBytes ?? 0))" } ?? "-"])
        }
        let widths = (0..<header.count).map { c in rows.map { $0[c].count }.max()! }
        for row in rows {
            printSafe(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  "))
        }
        for s in status.stages where s.detail != nil { printSafe("\(s.stage): \(s.detail!)") }
        try exitForProblems(status)
    }

    /// With --verify, a stage that is not sound (modified, failed, incomplete) is exit status 1.
    private func exitForProblems(_ status: RunStatus) throws {
        guard verify else { return }
        if status.stages.contains(where: { ["modified", "failed", "incomplete"].contains($0.state) }) { throw ExitCode(1) }
    }
}
