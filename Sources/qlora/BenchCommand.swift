import ArgumentParser
import Foundation
import Logging
import QLoRAFormats
import QLoRAPipeline

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print our figures next to a peer's.",
        subcommands: [IngestBench.self, TokenizerBench.self, ForwardBench.self, NF4Bench.self, GenerateBench.self, PerplexityBench.self, PrepareBench.self, TrainBench.self, PagerBench.self])
}

struct IngestBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Ingest throughput (MB/s) on a large synthetic alpaca JSONL file, next to a Python json+hashlib peer.",
        discussion: """
            Generates the file (deterministic, seed 1) unless it exists, runs the ingest stage on it (parse, \
            validate, normalize, SHA-256 dedupe, hash split, write) `--repeat` times and reports the median; \
            then runs scripts/peer_ingest.py (same work in Python) when python3 is available.
            """)

    @Option(help: "Size of the generated JSONL in MB.")
    var sizeMb: Int = 200

    @Option(help: "The JSONL file to use or create.")
    var file: String = ".cache/bench/ingest-synthetic.jsonl"

    @Option(help: "Timed repetitions (median reported).")
    var `repeat`: Int = 3

    @Flag(help: "Only generate the file, then exit.")
    var generateOnly = false

    @Flag(help: "Skip the Python peer.")
    var noPeer = false

    func run() throws {
        let url = URL(fileURLWithPath: file).standardizedFileURL
        let target = Int64(sizeMb) * 1_000_000
        let existing = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int64) ?? nil
        if existing.map({ $0 < target }) ?? true {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            let t0 = Date()
            let (rows, bytes) = try SyntheticDataset.writeJSONL(to: url, bytes: target)
            print("generated \(url.path): \(rows) rows, \(formatBytes(bytes)) in \(formatDuration(Date().timeIntervalSince(t0)))")
        }
        if generateOnly { return }
        let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int64) ?? 0

        var spec = JobSpec(name: "bench-ingest", dataset: DatasetSection(files: [DatasetFile(path: url.path, format: .alpaca)]))
        spec.baseDirectory = url.deletingLastPathComponent()
        var times: [Double] = []
        var notes: [String] = []
        for _ in 0..<max(1, self.repeat) {
            let out = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("qlora-bench-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: out) }
            let context = try StageContext(spec: spec, runDirectory: out, output: out, upstream: [:],
                                       progress: ProgressReporter(stage: .ingest) { _ in }, logger: Logger(label: "bench"))
            let t0 = Date()
            let report = try IngestStage().run(context)
            times.append(Date().timeIntervalSince(t0))
            notes = report.notes
        }
        let ours = times.sorted()[times.count / 2]
        let mb = Double(size) / 1e6
        print("ingest benchmark: \(url.path), \(String(format: "%.1f", mb)) MB (\(notes.first ?? ""))")
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        print(row("qlora ingest (Swift, 1 thread)", ours, mb) + "  peak RSS \(formatBytes(Int64(usage.ru_maxrss) * 1024))")

        if !noPeer {
            let script = URL(fileURLWithPath: "scripts/peer_ingest.py")
            guard FileManager.default.fileExists(atPath: script.path) else {
                print("peer: scripts/peer_ingest.py not found (run from the repository root)")
                return
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", script.path, url.path]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationStatus == 0, let seconds = Double(output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last ?? "") {
                print(row("peer: Python json + hashlib", seconds, mb))
                print(String(format: "speedup: %.1fx", seconds / ours))
            } else {
                print("peer: failed (exit \(process.terminationStatus)): \(output)")
            }
        }
    }

    private func row(_ name: String, _ seconds: Double, _ mb: Double) -> String {
        name.padding(toLength: 32, withPad: " ", startingAt: 0) + String(format: "%8.2f s  %8.1f MB/s", seconds, mb / seconds)
    }
}
