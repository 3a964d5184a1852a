import Foundation
@testable import QLoRAPipeline

/// A fresh temporary directory, removed when the test's `body` returns.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("qlora-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

func write(_ text: String, to url: URL) throws {
    try Data(text.utf8).write(to: url)
}

func writeBytes(_ bytes: [UInt8], to url: URL) throws {
    try Data(bytes).write(to: url)
}

/// Parses `yaml` as if it were the file `dir/spec.yaml` (and writes it there).
func loadSpec(_ yaml: String, in dir: URL, name: String = "spec.yaml") throws -> JobSpec {
    let url = dir.appendingPathComponent(name)
    try write(yaml, to: url)
    return try JobSpec.load(path: url.path)
}

/// The repository root (for pipelines/ and datasets/).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Collects pipeline events (thread-safe).
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [Pipeline.Event] = []

    func append(_ e: Pipeline.Event) {
        lock.lock()
        events.append(e)
        lock.unlock()
    }

    var all: [Pipeline.Event] {
        lock.lock()
        defer { lock.unlock() }
        return events
    }

    /// `stage:started:<reason>` / `stage:skipped` lines, in order.
    var decisions: [String] {
        all.compactMap {
            switch $0 {
            case .started(let s, let reason): return "\(s.rawValue):ran:\(reason)"
            case .skipped(let s, _): return "\(s.rawValue):skipped"
            case .failed(let s, let m): return "\(s.rawValue):failed:\(m)"
            default: return nil
            }
        }
    }
}

func readLines(_ url: URL) throws -> [String] {
    try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        .dropLast().map(String.init)
}

import CZlib

/// Writes `text` gzip-compressed with zlib.
func gzip(_ text: String, to path: String) throws {
    guard let file = gzopen(path, "wb") else { throw CocoaError(.fileWriteUnknown) }
    let bytes = Array(text.utf8)
    let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
    gzclose(file)
    if written != bytes.count { throw CocoaError(.fileWriteUnknown) }
}
