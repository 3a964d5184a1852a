// A tiny GGUF writer for the reader tests: builds valid files (v2 or v3) and lets hostile tests override
// any field (counts, offsets, raw bytes).

import Foundation
import QLoRAFormats

/// Little-endian byte builder with the GGUF encodings.
struct GGUFBytes {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }

    /// A gguf-string: u64 length, then the bytes.
    mutating func string(_ raw: [UInt8]) {
        u64(UInt64(raw.count))
        bytes += raw
    }

    mutating func string(_ s: String) { string(Array(s.utf8)) }

    /// The encoding of `value` without its type id.
    mutating func payload(_ value: GGUFValue) {
        switch value {
        case .uint8(let v): u8(v)
        case .int8(let v): u8(UInt8(bitPattern: v))
        case .uint16(let v): u16(v)
        case .int16(let v): u16(UInt16(bitPattern: v))
        case .uint32(let v): u32(v)
        case .int32(let v): u32(UInt32(bitPattern: v))
        case .float32(let v): u32(v.bitPattern)
        case .bool(let v): u8(v ? 1 : 0)
        case .string(let s): string(s)
        case .array(let type, let items):
            u32(type.rawValue)
            u64(UInt64(items.count))
            for item in items { payload(item) }
        case .uint64(let v): u64(v)
        case .int64(let v): u64(UInt64(bitPattern: v))
        case .float64(let v): u64(v.bitPattern)
        }
    }

    /// key, type id, payload.
    mutating func kv(_ key: String, _ value: GGUFValue) {
        string(key)
        u32(value.type.rawValue)
        payload(value)
    }

    mutating func pad(to alignment: Int) {
        while bytes.count % alignment != 0 { bytes.append(0) }
    }
}

/// A tensor for `GGUFFixture.file`. `offset` overrides the computed (packed, aligned) offset.
struct GGUFTestTensor {
    var name: String
    var dims: [UInt64]
    var type: UInt32
    var data: [UInt8]
    var offset: UInt64? = nil

    /// A tensor of `type` whose bytes are a recognizable pattern of the right length for `dims`.
    static func patterned(_ name: String, dims: [UInt64], type: GGUFTensorType, seed: UInt8 = 1) -> GGUFTestTensor {
        let elements = dims.reduce(1, *)
        let bytes = Int(elements) / type.blockSize * type.bytesPerBlock
        return GGUFTestTensor(name: name, dims: dims, type: type.rawValue,
                              data: (0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(seed)) })
    }
}

enum GGUFFixture {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A whole GGUF file written the way gguf-py/ggml do: header, KVs, infos with packed offsets, padding to
    /// `alignment`, then each tensor's bytes padded to `alignment` (the last one padded only when
    /// `padLastTensor`). The counts can be overridden to lie about the content.
    static func file(version: UInt32 = 3, metadata: [(String, GGUFValue)] = [], tensors: [GGUFTestTensor] = [],
                     alignment: Int = 32, padLastTensor: Bool = false,
                     tensorCount: UInt64? = nil, kvCount: UInt64? = nil) -> [UInt8] {
        var w = GGUFBytes()
        w.bytes += Array("GGUF".utf8)
        w.u32(version)
        w.u64(tensorCount ?? UInt64(tensors.count))
        w.u64(kvCount ?? UInt64(metadata.count))
        for (key, value) in metadata { w.kv(key, value) }
        var running: UInt64 = 0
        for t in tensors {
            w.string(t.name)
            w.u32(UInt32(t.dims.count))
            for d in t.dims { w.u64(d) }
            w.u32(t.type)
            w.u64(t.offset ?? running)
            running += UInt64((t.data.count + alignment - 1) / alignment * alignment)
        }
        if !tensors.isEmpty { w.pad(to: alignment) }
        for (i, t) in tensors.enumerated() {
            w.bytes += t.data
            if padLastTensor || i < tensors.count - 1 { w.pad(to: alignment) }
        }
        return w.bytes
    }

    /// The canonical small valid file used by the hostile suite: every value type, two arrays, three
    /// tensors of different types; the last tensor's data ends the file exactly.
    static func small(version: UInt32 = 3) -> [UInt8] {
        file(version: version, metadata: [
            ("general.architecture", .string("llama")),
            ("general.alignment", .uint32(32)),
            ("tokenizer.ggml.tokens", .array(.string, [.string("<s>"), .string("héllo"), .string("")])),
            ("tokenizer.ggml.token_type", .array(.int32, [.int32(3), .int32(1), .int32(1)])),
            ("test.bool", .bool(true)),
            ("test.f64", .float64(1.5)),
        ], tensors: [
            .patterned("token_embd.weight", dims: [32, 3], type: .q8_0),
            .patterned("output_norm.weight", dims: [5], type: .f32, seed: 9),
            .patterned("blk.0.attn_q.weight", dims: [32, 2], type: .q4_1, seed: 3),   // 40 bytes
            .patterned("blk.0.ffn_down.weight", dims: [8, 4], type: .f32, seed: 5),   // 128 bytes, ends the file
        ])
    }

    /// A fresh temporary directory, removed after `body`.
    static func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("qlora-gguf-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: url) }
        return try body(url.path)
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Parses `bytes` and returns the error, or fails the caller's expectation with a description.
    static func error(_ bytes: [UInt8], limits: GGUFLimits = GGUFLimits()) -> GGUFError? {
        do {
            _ = try GGUFFile(bytes: bytes, path: "hostile.gguf", limits: limits)
            return nil
        } catch {
            return error
        }
    }
}

/// SplitMix64, for reproducible byte mutations.
struct GGUFTestRandom: RandomNumberGenerator {
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
