import Foundation
import Testing

/// The CLI's side of reliability: `status --verify` reports what it found in its exit status, and text from
/// users' files reaches the terminal with its control characters escaped.
@Suite struct ReliabilityCLITests {
    @Test func statusVerifyExitsOneWhenAStageIsModifiedOrFailed() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("{\"text\":\"fine\"}\n{\"text\":\"also fine\"}\n".utf8).write(to: dir.appendingPathComponent("d.jsonl"))
        try Data("name: g\ndataset:\n  files: [{path: d.jsonl, format: text}]\n".utf8).write(to: dir.appendingPathComponent("g.yaml"))
        let run = try CLI.run(["run", "g.yaml", "--ci"], in: dir)
        #expect(run.status == 0, "\(run.all)")
        let clean = try CLI.run(["status", "runs/g", "--verify"], in: dir)
        #expect(clean.status == 0, "\(clean.all)")
        // Change one output of the ingest stage: --verify finds it and says so in its exit status.
        let ingest = dir.appendingPathComponent("runs/g/ingest")
        let output = try #require(try FileManager.default.contentsOfDirectory(atPath: ingest.path).sorted()
            .first { $0 != "manifest.json" })
        let handle = try FileHandle(forWritingTo: ingest.appendingPathComponent(output))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("tampered\n".utf8))
        try handle.close()
        let modified = try CLI.run(["status", "runs/g", "--verify"], in: dir)
        #expect(modified.status == 1, "\(modified.all)")
        #expect(modified.stdout.contains("modified"))
        #expect(try CLI.run(["status", "runs/g", "--verify", "--json"], in: dir).status == 1)
        #expect(try CLI.run(["status", "runs/g"], in: dir).status == 0, "without --verify, status only reports")
        // A failed stage is exit status 1 too.
        try Data("{\"text\":17}\n".utf8).write(to: dir.appendingPathComponent("bad.jsonl"))
        try Data("name: f\ndataset:\n  files: [{path: bad.jsonl, format: text}]\n".utf8).write(to: dir.appendingPathComponent("f.yaml"))
        #expect(try CLI.run(["run", "f.yaml", "--ci"], in: dir).status == 1)
        let failed = try CLI.run(["status", "runs/f", "--verify"], in: dir)
        #expect(failed.status == 1, "\(failed.all)")
        #expect(failed.stdout.contains("failed"))
        let help = try CLI.run(["status", "--help"])
        let words = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("exit 1 when a stage is modified, failed or incomplete"), "\(help.stdout)")
    }

    @Test func controlCharactersFromUserFilesAreEscapedOnTheTerminal() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // A spec name with an escape sequence (clear screen) and a bell: the error about the name prints it escaped.
        try Data("name: \"evil\\e[2J\\a\"\ndataset:\n  files: [{path: d.jsonl, format: text}]\n".utf8)
            .write(to: dir.appendingPathComponent("e.yaml"))
        try Data("{\"text\":\"fine\"}\n".utf8).write(to: dir.appendingPathComponent("d.jsonl"))
        for command in [["run", "e.yaml", "--ci"], ["validate", "e.yaml"]] {
            let result = try CLI.run(command, in: dir)
            #expect(result.status == 2, "\(result.all)")
            #expect(!result.all.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 }, "\(command)")
            #expect(result.stderr.contains("evil\\u{1B}[2J\\u{7}"), "\(result.stderr)")
        }
        // A failure recorded in events.jsonl (its message may quote a dataset row) is escaped by `status`.
        let run = dir.appendingPathComponent("runs/x")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        let event = #"{"time":"2026-01-01T00:00:00Z","event":"stage_failed","stage":"ingest","error":"row \u001b]0;owned\u0007 \u009b31m"}"#
        try Data((event + "\n").utf8).write(to: run.appendingPathComponent("events.jsonl"))
        let status = try CLI.run(["status", "runs/x"], in: dir)
        #expect(!status.all.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x9B }, "\(status.all)")
        #expect(status.stdout.contains("ingest: row \\u{1B}]0;owned\\u{7} \\u{9B}31m"), "\(status.stdout)")
    }
}
