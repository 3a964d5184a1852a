// Helpers for the safetensors tests: raw file builders (hand-written headers, so hostile tests control
// every byte), temporary directories, and a deterministic random generator.

import Foundation
import QLoRAFormats
import Testing

enum SafetensorsFixture {
    /// `N` (u64 LE), the header bytes, then `data`.
    static func file(header: [UInt8], data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        var out: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(header.count)).littleEndian) { out += $0 }
        return out + header + data
    }

    /// A file whose header is the UTF-8 of `header`.
    static func file(_ header: String, data: [UInt8] = []) -> [UInt8] {
        file(header: Array(header.utf8), data: data)
    }

    /// A file with one tensor entry `"t": {<entry>}` and `dataSize` zero bytes of data.
    static func oneTensor(_ entry: String, dataSize: Int) -> [UInt8] {
        file("{\"t\":{\(entry)}}", data: [UInt8](repeating: 0, count: dataSize))
    }

    /// A small valid file (as our writer lays it out): metadata, three tensors of different dtypes; the last
    /// tensor's bytes end the file.
    static func small() throws -> [UInt8] {
        let data = try SafetensorsWriter.serialize([
            (name: "w", dtype: .f32, shape: [2, 2], data: (0..<16).map { UInt8($0) }),
            (name: "h", dtype: .f16, shape: [3], data: [0, 0x3C, 0, 0xC0, 0xFF, 0x7B]),
            (name: "m", dtype: .u8, shape: [5], data: [1, 2, 3, 4, 5]),
        ], metadata: ["format": "pt"])
        return [UInt8](data)
    }

    /// The error `bytes` are rejected with, or nil when they are accepted.
    static func error(_ bytes: [UInt8], path: String = "<memory>") -> SafetensorsError? {
        do {
            _ = try SafetensorsFile(bytes: bytes, path: path)
            return nil
        } catch {
            return error
        }
    }

    /// Runs `body` with a fresh temporary directory, removed afterwards.
    static func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("qlora-safetensors-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        return try body(dir)
    }

    static func write(_ bytes: [UInt8], to url: URL) throws {
        try Data(bytes).write(to: url)
    }

    static func write(_ text: String, to url: URL) throws {
        try Data(text.utf8).write(to: url)
    }

    /// Little-endian bytes of `values`.
    static func bytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        var out: [UInt8] = []
        for v in values { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        return out
    }

    static func bytes(_ values: [Float]) -> [UInt8] { bytes(values.map(\.bitPattern)) }
}

/// SplitMix64: reproducible randomness for the tests.
struct SafetensorsTestRandom: RandomNumberGenerator {
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
