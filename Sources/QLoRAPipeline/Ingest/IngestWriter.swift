import Crypto
import Foundation
import QLoRAFormats

/// Receives normalized examples and rejections from `IngestReader`, dedupes, splits and writes them,
/// and keeps the statistics.
final class IngestWriter {
    enum Split {
        case evalFraction(Double)
        /// Exactly this many eval examples: those with the smallest hashes (needs a second pass).
        case evalSize(Int)
    }

    private struct Key: Hashable { var hi: UInt64; var lo: UInt64 }

    private let directory: URL
    private let split: Split
    private let dedupe: Bool
    private let train: BufferedFileWriter
    private let eval: BufferedFileWriter?
    private let all: BufferedFileWriter?
    private let rejected: BufferedFileWriter
    private var seen = Set<Key>()
    private var evalSizeKeys: [UInt64] = []
    private var lengthCounts: [Int: Int] = [:]
    private var line: [UInt8] = []
    private var content: [UInt8] = []
    private var stats = IngestStats()
    private var currentFile = IngestStats.FileStats(path: "", format: "")
    private let started = Date()
    /// The first few rejections as `file:line reason: detail`, for messages.
    private(set) var firstRejections: [String] = []

    init(directory: URL, split: Split, dedupe: Bool) throws {
        self.directory = directory
        self.split = split
        self.dedupe = dedupe
        train = try BufferedFileWriter(path: directory.appendingPathComponent("train.jsonl").path)
        rejected = try BufferedFileWriter(path: directory.appendingPathComponent("rejected.jsonl").path)
        switch split {
        case .evalFraction:
            eval = try BufferedFileWriter(path: directory.appendingPathComponent("eval.jsonl").path)
            all = nil
        case .evalSize:
            eval = nil
            all = try BufferedFileWriter(path: directory.appendingPathComponent("all.jsonl.part").path)
        }
    }

    func beginFile(path: String, format: DatasetFormat) {
        currentFile = IngestStats.FileStats(path: path, format: format.rawValue)
    }

    func endFile(bytes: Int64) {
        currentFile.bytes = bytes
        stats.bytes += bytes
        stats.files.append(currentFile)
    }

    /// A row that normalized cleanly.
    func accept(_ content: Example.Content, format: DatasetFormat, source: String) throws {
        stats.rows += 1
        stats.accepted += 1
        currentFile.rows += 1
        currentFile.accepted += 1
        self.content.removeAll(keepingCapacity: true)
        Example.canonicalContent(content, into: &self.content)
        let digest = Array(SHA256.hash(data: self.content))
        var hi: UInt64 = 0, lo: UInt64 = 0
        for i in 0..<8 { hi = hi << 8 | UInt64(digest[i]) }
        for i in 8..<16 { lo = lo << 8 | UInt64(digest[i]) }
        if dedupe {
            guard seen.insert(Key(hi: hi, lo: lo)).inserted else {
                stats.duplicates += 1
                currentFile.duplicates += 1
                return
            }
        }
        stats.unique += 1
        lengthCounts[Example.characterCount(content), default: 0] += 1
        line.removeAll(keepingCapacity: true)
        Example.writeLine(id: digest[0..<16].hexString, source: source, format: format.rawValue,
                          canonicalContent: self.content, into: &line)
        switch split {
        case .evalFraction(let fraction):
            // hi / 2^64 < fraction, computed without rounding surprises near 1.
            if Double(hi) < fraction * 18446744073709551616.0 {
                stats.eval += 1
                try eval!.write(line)
            } else {
                stats.train += 1
                try train.write(line)
            }
        case .evalSize:
            evalSizeKeys.append(hi)
            try all!.write(line)
        }
    }

    func reject(source file: String, line number: Int, _ rejection: Rejection, excerpt: [UInt8]?) throws {
        stats.rows += 1
        stats.rejected += 1
        currentFile.rows += 1
        currentFile.rejected += 1
        stats.rejectedByReason[rejection.reason.rawValue, default: 0] += 1
        currentFile.rejectedByReason[rejection.reason.rawValue, default: 0] += 1
        if firstRejections.count < 5 {
            firstRejections.append("\(file):\(number) \(rejection.reason.rawValue): \(rejection.detail)")
        }
        line.removeAll(keepingCapacity: true)
        line.append(contentsOf: Array(#"{"file":"#.utf8))
        JSONWriter.writeString(file, into: &line)
        line.append(contentsOf: Array(",\"line\":\(number),\"reason\":\"\(rejection.reason.rawValue)\",\"detail\":".utf8))
        JSONWriter.writeString(rejection.detail, into: &line)
        if let excerpt {
            line.append(contentsOf: Array(#","excerpt":"#.utf8))
            JSONWriter.writeString(String(decoding: excerpt.prefix(200), as: UTF8.self), into: &line)
        }
        line.append(contentsOf: Array("}\n".utf8))
        try rejected.write(line)
    }

    /// Counts a whitespace-only line (not a row).
    func blankLine() { stats.blankLines += 1 }

    /// Flushes everything, performs the eval_size partition if needed, and returns the final statistics.
    func finish() throws -> IngestStats {
        try rejected.close()
        switch split {
        case .evalFraction(let fraction):
            try train.close()
            try eval!.close()
            stats.split = ["method": "hash", "eval_fraction": "\(fraction)"]
        case .evalSize(let size):
            try all!.close()
            try partition(evalSize: size)
            stats.split = ["method": "hash", "eval_size": "\(size)"]
        }
        stats.lengthChars = IngestStats.Lengths(counts: lengthCounts)
        let seconds = Date().timeIntervalSince(started)
        stats.megabytesPerSecond = seconds > 0 ? Double(stats.bytes) / 1e6 / seconds : 0
        return stats
    }

    /// Second pass for `eval_size`: the examples whose hash prefix is among the `size` smallest go to eval.
    private func partition(evalSize size: Int) throws {
        let sorted = evalSizeKeys.sorted()
        let threshold: UInt64? = size == 0 || sorted.isEmpty ? nil : sorted[min(size, sorted.count) - 1]
        evalSizeKeys = []
        let evalWriter = try BufferedFileWriter(path: directory.appendingPathComponent("eval.jsonl").path)
        let allURL = directory.appendingPathComponent("all.jsonl.part")
        let reader = try LineReader(path: allURL.path)
        try reader.forEachLine { bytes, _, _ in
            // Lines start with {"id":"<32 hex>": the first 16 hex digits are the 64-bit prefix.
            var hi: UInt64 = 0
            for i in 7..<23 {
                let c = bytes[i]
                hi = hi << 4 | UInt64(c <= 57 ? c - 48 : c - 87)
            }
            let out = threshold.map { hi <= $0 } == true ? evalWriter : train
            if out === evalWriter { stats.eval += 1 } else { stats.train += 1 }
            try out.append { buffer in
                buffer.append(contentsOf: bytes)
                buffer.append(UInt8(ascii: "\n"))
            }
        }
        try train.close()
        try evalWriter.close()
        try FileManager.default.removeItem(at: allURL)
    }
}

/// `ingest/stats.json`.
struct IngestStats: Encodable {
    struct FileStats: Encodable {
        var path: String
        var format: String
        var bytes: Int64 = 0
        var rows = 0
        var accepted = 0
        var rejected = 0
        var duplicates = 0
        var rejectedByReason: [String: Int] = [:]

        enum CodingKeys: String, CodingKey {
            case path, format, bytes, rows, accepted, rejected, duplicates, rejectedByReason = "rejected_by_reason"
        }
    }

    /// Exact order statistics from a histogram; percentiles use the nearest-rank definition.
    struct Lengths: Encodable {
        var min = 0, median = 0, p95 = 0, max = 0
        var mean = 0.0

        init(counts: [Int: Int]) {
            let keys = counts.keys.sorted()
            let n = counts.values.reduce(0, +)
            guard n > 0 else { return }
            min = keys.first!
            max = keys.last!
            mean = Double(counts.reduce(0) { $0 + $1.key * $1.value }) / Double(n)
            func rank(_ p: Double) -> Int {
                let target = Swift.max(1, Int((p * Double(n)).rounded(.up)))
                var seen = 0
                for k in keys {
                    seen += counts[k]!
                    if seen >= target { return k }
                }
                return keys.last!
            }
            median = rank(0.5)
            p95 = rank(0.95)
        }

        init() {}
    }

    var formatVersion = 1
    var rows = 0
    var accepted = 0
    var rejected = 0
    var duplicates = 0
    var unique = 0
    var train = 0
    var eval = 0
    var blankLines = 0
    var bytes: Int64 = 0
    var rejectedByReason: [String: Int] = [:]
    var files: [FileStats] = []
    var lengthChars = Lengths()
    var split: [String: String] = [:]
    /// Not encoded: depends on the machine, and stats.json must be reproducible.
    var megabytesPerSecond = 0.0

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", rows, accepted, rejected, duplicates, unique, train, eval
        case blankLines = "blank_lines", bytes, rejectedByReason = "rejected_by_reason", files
        case lengthChars = "length_chars", split
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }
}
