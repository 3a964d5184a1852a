import Foundation
import Logging
import QLoRAFormats
import QLoRAPipeline

/// `qlora bench ingest`: Ingest throughput (MB/s) on a large synthetic alpaca JSONL file, next to a Python json+hashlib peer. The command (Sources/qlora/) sets the options and calls `run`.
public struct IngestBenchmark: Sendable {
    public var sizeMb: Int = 200
    public var file: String = ".cache/bench/ingest-synthetic.jsonl"
    public var `repeat`: Int = 3
    public var generateOnly: Bool = false
    public var noPeer: Bool = false

    public init() {}

    public func run() throws {
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
