// Helpers for the row reader tests: temporary files, gzip writing through zlib, collecting output.

import CZlib
import Foundation
import QLoRAFormats

/// Fixtures shared by the row reader suites (namespaced to stay clear of other suites' helpers).
enum RowsFixture {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A fresh temporary directory, removed after `body`.
    static func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("qlora-rows-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: url) }
        return try body(url.path)
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    static func readFile(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    }

    /// Writes `bytes` gzip-compressed with zlib's gzopen/gzwrite.
    static func writeGzip(_ path: String, _ bytes: [UInt8]) throws {
        guard let file = gzopen(path, "wb") else { throw Failure(description: "gzopen failed for \(path)") }
        let written = bytes.withUnsafeBytes { raw in
            raw.isEmpty ? 0 : gzwrite(file, raw.baseAddress, UInt32(raw.count))
        }
        let closed = gzclose(file)
        guard Int(written) == bytes.count, closed == Z_OK else {
            throw Failure(description: "gzwrite failed for \(path)")
        }
    }

    /// Reads every byte from a source in `chunk`-sized calls, so sources are exercised across many reads.
    static func drain(_ source: inout some ByteSource, chunk: Int = 4096) throws -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try source.read(into: $0) }
            if n == 0 { return out }
            out.append(contentsOf: buffer[0..<n])
        }
    }

    static func lines(of bytes: [UInt8], bufferSize: Int = 64) throws -> [DeliveredLine] {
        let reader = LineReader(source: MemoryByteSource(bytes), path: "mem.txt", bufferSize: bufferSize)
        var out: [DeliveredLine] = []
        try reader.forEachLine { line, number, terminated in
            out.append(DeliveredLine(String(decoding: line, as: UTF8.self), number, terminated))
        }
        return out
    }

    static func lines(of text: String, bufferSize: Int = 64) throws -> [DeliveredLine] {
        try lines(of: Array(text.utf8), bufferSize: bufferSize)
    }

    /// The JSONParseError `bytes` produce, nil if they parse.
    static func parseFailure(_ bytes: [UInt8]) -> JSONParseError? {
        do throws(JSONParseError) {
            _ = try JSONParser.parse(bytes)
            return nil
        } catch {
            return error
        }
    }

    static func parseFailure(_ text: String) -> JSONParseError? {
        parseFailure(Array(text.utf8))
    }
}

/// One line as LineReader delivered it: text, number, terminated flag.
struct DeliveredLine: Equatable, CustomStringConvertible {
    let text: String
    let number: Int
    let terminated: Bool
    init(_ text: String, _ number: Int, _ terminated: Bool = true) {
        self.text = text
        self.number = number
        self.terminated = terminated
    }
    var description: String { "\(number):\(text.debugDescription)\(terminated ? "" : " (unterminated)")" }
}

/// A deterministic generator (SplitMix64) for randomized tests.
struct RowsRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
