import Foundation
import Testing
@testable import QLoRAFormats
@testable import QLoRAPipeline

@Suite struct PipelineRunnerTests {
    private let yaml = """
        name: r
        run_dir: run
        dataset:
          files:
            - {path: d.jsonl, format: text}
          eval_fraction: 0.25
        """

    private func setUp(_ dir: URL) throws -> JobSpec {
        try write((0..<20).map { "{\"text\":\"row \($0)\"}\n" }.joined(), to: dir.appendingPathComponent("d.jsonl"))
        return try loadSpec(yaml, in: dir)
    }

    private func run(_ spec: JobSpec, _ options: Pipeline.Options = .init()) throws -> EventLog {
        let log = EventLog()
        _ = try Pipeline.run(spec: spec, options: options) { log.append($0) }
        return log
    }

    @Test func secondRunRerunsNothing() throws {
        try withTemporaryDirectory { dir in
            let spec = try setUp(dir)
            #expect(try run(spec).decisions == ["ingest:ran:not run yet"])
            #expect(try run(spec).decisions == ["ingest:skipped"])
            let run = RunDirectory(url: dir.appendingPathComponent("run"))
            let manifest = try #require(run.manifest(.ingest))
            #expect(manifest.state == "complete")
            #expect(manifest.outputs.map(\.path) == ["eval.jsonl", "rejected.jsonl", "stats.json", "train.jsonl"])
            #expect(manifest.inputs.count == 1 && manifest.inputs[0].size > 0)
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/spec.yaml").path))
            let events = try readLines(run.eventsURL)
            #expect(events.count == 3)
            #expect(events[0].contains("\"event\":\"stage_started\"") && events[2].contains("\"event\":\"stage_skipped\""))
        }
    }

    @Test func editingTheDataReruns() throws {
        try withTemporaryDirectory { dir in
            let spec = try setUp(dir)
            _ = try run(spec)
            try write("{\"text\":\"changed\"}\n", to: dir.appendingPathComponent("d.jsonl"))
            #expect(try run(spec).decisions == ["ingest:ran:configuration or inputs changed"])
        }
    }

    @Test func editingTheSectionReruns() throws {
        try withTemporaryDirectory { dir in
            let spec = try setUp(dir)
            _ = try run(spec)
            let edited = try loadSpec(yaml.replacingOccurrences(of: "0.25", with: "0.5"), in: dir)
            #expect(try run(edited).decisions == ["ingest:ran:configuration or inputs changed"])
            // A change to a section of another stage does not touch ingest.
            let seeded = try loadSpec(yaml.replacingOccurrences(of: "0.25", with: "0.5")
                .replacingOccurrences(of: "name: r", with: "name: r\nseed: 7"), in: dir)
            #expect(try run(seeded).decisions == ["ingest:skipped"])
        }
    }

    @Test func corruptedOrMissingOutputIsDetected() throws {
        try withTemporaryDirectory { dir in
            let spec = try setUp(dir)
            _ = try run(spec)
            let train = dir.appendingPathComponent("run/ingest/train.jsonl")
            let original = try Data(contentsOf: train)
            var corrupted = original
            corrupted[5] ^= 1
            try corrupted.write(to: train)
            #expect(try run(spec).decisions == ["ingest:ran:output `train.jsonl` changed on disk (sha256 mismatch)"])
            #expect(try Data(contentsOf: train) == original)
            try FileManager.default.removeItem(at: dir.appendingPathComponent("run/ingest/stats.json"))
            #expect(try run(spec).decisions == ["ingest:ran:output `stats.json` is missing"])
        }
    }

    @Test func forceFromAndOnlyRerunOnDemand() throws {
        try withTemporaryDirectory { dir in
            let spec = try setUp(dir)
            _ = try run(spec)
            #expect(try run(spec, .init(force: true)).decisions == ["ingest:ran:--force"])
            #expect(try run(spec, .init(from: .ingest)).decisions == ["ingest:ran:--from ingest"])
            #expect(try run(spec, .init(only: .ingest)).decisions == ["ingest:skipped"])
            #expect(try run(spec, .init(only: .ingest, force: true)).decisions == ["ingest:ran:--force"])
            #expect(throws: PipelineArgumentError.self) { try run(spec, .init(only: .train)) }
        }
    }

    @Test func leftoversOfAKilledRunAreRemoved() throws {
        try withTemporaryDirectory { dir in
            let spec = try setUp(dir)
            let runDir = dir.appendingPathComponent("run")
            try FileManager.default.createDirectory(at: runDir.appendingPathComponent("ingest.tmp-123-456"), withIntermediateDirectories: true)
            try write("partial", to: runDir.appendingPathComponent("ingest.tmp-123-456/train.jsonl"))
            let log = try run(spec)
            #expect(log.all.contains { if case .cleanedUp(["ingest.tmp-123-456"]) = $0 { return true }; return false })
            let names = try FileManager.default.contentsOfDirectory(atPath: runDir.path)
            #expect(!names.contains { $0.contains(".tmp") })
        }
    }

    @Test(arguments: ["lock", "events.jsonl"])
    func runDirectoryFilesAreNeverFollowedThroughSymlinks(name: String) throws {
        try withTemporaryDirectory { dir in
            let runDir = RunDirectory(url: dir.appendingPathComponent("run"))
            try runDir.create()
            let outside = dir.appendingPathComponent("outside.txt")
            try write("precious\n", to: outside)
            let link = runDir.url.appendingPathComponent(name)
            try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: outside.path)
            let error = #expect(throws: FileError.self) { _ = try runDir.lock(command: "qlora run test") }
            #expect(error?.path == link.path)
            #expect(error?.message.contains("symbolic link") == true, "\(error.map { "\($0)" } ?? "")")
            // Appending an event never writes through the link either.
            runDir.appendEvent(["event": .string("probe")])
            #expect(try String(contentsOf: outside, encoding: .utf8) == "precious\n")
        }
    }

    @Test func aSecondRunnerIsRefusedWithTheHolder() throws {
        try withTemporaryDirectory { dir in
            let spec = try setUp(dir)
            let runDir = RunDirectory(url: dir.appendingPathComponent("run"))
            try runDir.create()
            let held = try runDir.lock(command: "qlora run held-by-test")
            let error = #expect(throws: RunLockedError.self) { try run(spec) }
            #expect(error?.holder.contains("pid \(getpid())") == true)
            #expect(error?.description.contains("held-by-test") == true)
            held.release()
            #expect(try run(spec).decisions == ["ingest:ran:not run yet"])
        }
    }

    @Test func missingInputIsASpecErrorAtThePathKey() throws {
        try withTemporaryDirectory { dir in
            let spec = try loadSpec(yaml, in: dir)
            let error = #expect(throws: SpecErrors.self) { try run(spec) }
            #expect(error?.errors.first?.keyPath == "dataset.files[0].path")
            #expect(error?.errors.first?.line == 5)
            #expect(error?.errors.first?.message.hasPrefix("input file not found: ") == true)
        }
    }

    @Test func fingerprintCoversConfigurationInputsAndFormatVersion() throws {
        try withTemporaryDirectory { dir in
            let spec = try setUp(dir)
            let input = StageManifest.Input(path: "x", sha256: "aa", size: 1)
            let a = try Pipeline.fingerprint(stage: IngestStage(), spec: spec, inputs: [input], upstream: [], backend: nil)
            var other = input
            other.sha256 = "bb"
            #expect(try Pipeline.fingerprint(stage: IngestStage(), spec: spec, inputs: [other], upstream: [], backend: nil) != a)
            #expect(try Pipeline.fingerprint(stage: IngestStage(), spec: spec, inputs: [input], upstream: ["u"], backend: nil) != a)
            var edited = spec
            edited.dataset?.dedupe = false
            #expect(try Pipeline.fingerprint(stage: IngestStage(), spec: edited, inputs: [input], upstream: [], backend: nil) != a)
            // A stage that computes on a backend is fingerprinted with the backend that ran.
            let cpu = try Pipeline.fingerprint(stage: TrainStage(), spec: spec, inputs: [], upstream: [], backend: "cpu")
            #expect(try Pipeline.fingerprint(stage: TrainStage(), spec: spec, inputs: [], upstream: [], backend: "reference") != cpu)
            #expect(TrainStage().usesBackend && EvaluateStage().usesBackend && !IngestStage().usesBackend && !PrepareStage().usesBackend)
        }
    }

    @Test func statusReportsCompleteAndFailedStages() throws {
        try withTemporaryDirectory { dir in
            let spec = try setUp(dir)
            _ = try run(spec)
            let runDir = RunDirectory(url: dir.appendingPathComponent("run"))
            var status = RunStatus.read(runDir, verify: true)
            #expect(status.stages.map(\.state) == ["complete"])
            try write("{\"text\":1}\n", to: dir.appendingPathComponent("d.jsonl"))
            _ = try run(spec)
            status = RunStatus.read(runDir, verify: false)
            #expect(status.stages.map(\.state) == ["failed"])
            #expect(status.stages[0].detail?.contains("rejected 1 of 1 rows") == true)
        }
    }

    @Test func stageGraphRerunsDownstreamOnly() {
        #expect(StageID.ingest.downstream == [.tokenize, .train, .evaluate, .package])
        #expect(StageID.prepare.downstream == [.train, .evaluate, .package])
        #expect(StageID.evaluate.downstream == [.package])
    }
}
