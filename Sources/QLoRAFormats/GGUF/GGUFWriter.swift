// GGUFWriter: GGUF v3 files as ggml and gguf-py write them (spec/safetensors-and-gguf.md §2): header, metadata,
// tensor infos with packed offsets, zero padding to the alignment, then each tensor's bytes padded to the
// alignment. Whole-file in memory (adapters and test models are small), written atomically.

import Foundation

/// Builds GGUF files. Everything is checked before a byte is written, so an invalid tensor or key throws a
/// `GGUFWriteError` that names it instead of producing a file that ggml or our reader would refuse.
public enum GGUFWriter {
    /// One tensor to write. `dims` are in ggml order (ne0 fastest: an HF `[out, in]` weight is `[in, out]`);
    /// `data` is exactly `nbytes` of `type` (row-major with ne0 fastest, as numpy writes the HF array).
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var dims: [Int]
        public var type: GGUFTensorType
        public var data: [UInt8]

        public init(name: String, dims: [Int], type: GGUFTensorType, data: [UInt8]) {
            self.name = name
            self.dims = dims
            self.type = type
            self.data = data
        }

        /// A float tensor stored as F32, F16 or BF16 (F16 is IEEE half, BF16 rounds to nearest even, as ggml does).
        /// `values` are row-major in HF order, `shape` the HF shape; the dims are written reversed.
        public init(name: String, hfShape shape: [Int], values: [Float], type: GGUFTensorType) throws(GGUFWriteError) {
            let dtype: SafetensorsDType
            switch type {
            case .f32: dtype = .f32
            case .f16: dtype = .f16
            case .bf16: dtype = .bf16
            default: throw GGUFWriteError(name: name, "cannot encode floats as \(type); use F32, F16 or BF16")
            }
            guard shape.reduce(1, *) == values.count else {
                throw GGUFWriteError(name: name, "shape \(shape) holds \(shape.reduce(1, *)) values, got \(values.count)")
            }
            self.init(name: name, dims: shape.reversed(), type: type, data: SafetensorsConversion.encode(values, as: dtype)!)
        }
    }

    /// The current GGUF version.
    public static let version: UInt32 = 3
    /// ggml's default alignment (used when `general.alignment` is absent).
    public static let defaultAlignment = 32

    /// The complete file. The alignment is `general.alignment` when `metadata` has it (UINT32, a nonzero power
    /// of two), else 32.
    public static func serialize(metadata: [GGUFMetadata.Entry], tensors: [Tensor]) throws(GGUFWriteError) -> [UInt8] {
        var alignment = defaultAlignment
        var keys = Set<String>()
        for e in metadata {
            guard !e.key.isEmpty, e.key.utf8.count <= 65_535 else { throw GGUFWriteError(name: e.key, "keys must be 1...65535 bytes") }
            guard keys.insert(e.key).inserted else { throw GGUFWriteError(name: e.key, "duplicate metadata key") }
            try checkValue(e.value, key: e.key)
            if e.key == "general.alignment" {
                guard case .uint32(let a) = e.value, a != 0, a & (a - 1) == 0 else {
                    throw GGUFWriteError(name: e.key, "general.alignment must be a UINT32 nonzero power of two")
                }
                alignment = Int(a)
            }
        }
        var names = Set<String>()
        for t in tensors {
            guard !t.name.isEmpty, t.name.utf8.count < 64 else {
                throw GGUFWriteError(name: t.name, "tensor names must be 1...63 bytes (ggml's GGML_MAX_NAME is 64 with the NUL)")
            }
            guard names.insert(t.name).inserted else { throw GGUFWriteError(name: t.name, "duplicate tensor name") }
            guard (1...4).contains(t.dims.count), t.dims.allSatisfy({ $0 >= 1 }) else {
                throw GGUFWriteError(name: t.name, "dims \(t.dims): need 1 to 4 dims, each at least 1")
            }
            guard t.type.isKnown else { throw GGUFWriteError(name: t.name, "unknown tensor type \(t.type.rawValue)") }
            guard t.dims[0] % t.type.blockSize == 0 else {
                throw GGUFWriteError(name: t.name, "ne0 = \(t.dims[0]) is not a multiple of \(t.type)'s block size \(t.type.blockSize)")
            }
            let expected = t.dims.dropFirst().reduce(t.dims[0] / t.type.blockSize * t.type.bytesPerBlock, *)
            guard t.data.count == expected else {
                throw GGUFWriteError(name: t.name, "\(t.data.count) bytes of data, \(t.type) with dims \(t.dims) needs \(expected)")
            }
        }

        var out: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func string(_ s: String) {
            u64(UInt64(s.utf8.count))
            out += Array(s.utf8)
        }
        func payload(_ v: GGUFValue) {
            switch v {
            case .uint8(let x): out.append(x)
            case .int8(let x): out.append(UInt8(bitPattern: x))
            case .uint16(let x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case .int16(let x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case .uint32(let x): u32(x)
            case .int32(let x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case .float32(let x): u32(x.bitPattern)
            case .bool(let x): out.append(x ? 1 : 0)
            case .string(let s): string(s)
            case .array(let type, let items):
                u32(type.rawValue)
                u64(UInt64(items.count))
                for item in items { payload(item) }
            case .uint64(let x): u64(x)
            case .int64(let x): withUnsafeBytes(of: x.littleEndian) { out += $0 }
            case .float64(let x): u64(x.bitPattern)
            }
        }
        func pad(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

        out += Array("GGUF".utf8)
        u32(version)
        u64(UInt64(tensors.count))
        u64(UInt64(metadata.count))
        for e in metadata {
            string(e.key)
            u32(e.value.type.rawValue)
            payload(e.value)
        }
        var offset = 0
        for t in tensors {
            string(t.name)
            u32(UInt32(t.dims.count))
            for d in t.dims { u64(UInt64(d)) }
            u32(t.type.rawValue)
            u64(UInt64(offset))
            offset += pad(t.data.count)
        }
        out += [UInt8](repeating: 0, count: pad(out.count) - out.count)
        for t in tensors {
            out += t.data
            out += [UInt8](repeating: 0, count: pad(t.data.count) - t.data.count)
        }
        return out
    }

    /// Writes the file atomically (temporary sibling, fsync, rename).
    public static func write(metadata: [GGUFMetadata.Entry], tensors: [Tensor], to url: URL) throws {
        try AtomicFile.write(Data(try serialize(metadata: metadata, tensors: tensors)), to: url)
    }

    /// Arrays must hold values of their declared element type; ggml reads no nested arrays, so none are written.
    private static func checkValue(_ v: GGUFValue, key: String) throws(GGUFWriteError) {
        guard case .array(let type, let items) = v else { return }
        guard type != .array else { throw GGUFWriteError(name: key, "nested arrays are not written (ggml rejects them)") }
        for item in items where item.type != type {
            throw GGUFWriteError(name: key, "array of \(type) holds a \(item.type) value")
        }
    }
}

/// A tensor or metadata entry that cannot be written; `name` is the tensor name or key.
public struct GGUFWriteError: Error, Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let reason: String

    public init(name: String, _ reason: String) {
        self.name = name
        self.reason = reason
    }

    public var description: String { "GGUF writer: \(name): \(reason)" }
}
