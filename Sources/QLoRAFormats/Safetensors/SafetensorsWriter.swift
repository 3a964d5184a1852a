// SafetensorsWriter: writes safetensors files laid out exactly as the reference writer does (spec
// shared/spec/safetensors-and-gguf.md §1.4), atomically (temporary sibling, then rename).

import Foundation

/// Writes safetensors files byte-for-byte like the reference `serialize` (huggingface/safetensors):
///
/// 1. tensors sorted by dtype, largest alignment first (descending reference enum order), then by name
///    (ascending, by UTF-8 bytes);
/// 2. data offsets handed out back to back from 0, no padding between tensors;
/// 3. header = compact JSON, `__metadata__` first (omitted when `metadata` is empty; its keys sorted by
///    UTF-8 bytes, where the reference uses hash-map order), then each tensor as
///    `{"dtype":…,"shape":[…],"data_offsets":[b,e]}`, padded with spaces to a multiple of 8;
/// 4. at most 100,000,000 header bytes.
///
/// So the data section starts at a multiple of 8 and each tensor at a multiple of its element size.
/// Validation failures throw `SafetensorsError`; I/O failures throw `FileError`.
public enum SafetensorsWriter {
    /// One tensor to write: raw little-endian row-major bytes.
    public typealias Tensor = (name: String, dtype: SafetensorsDType, shape: [Int], data: [UInt8])
    /// One Float32 tensor to write, to be encoded as the chosen dtype.
    public typealias FloatTensor = (name: String, shape: [Int], values: [Float])

    /// Writes `tensors` and `metadata` to `url` atomically.
    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to url: URL) throws {
        let bytes = try serialize(tensors, metadata: metadata, path: url.path)
        try AtomicFile.write(bytes, to: url)
    }

    /// Writes Float32 tensors encoded as `dtype` (F32, F16, BF16 or F64; F16/BF16 rounded to nearest even).
    public static func write(floats tensors: [FloatTensor], as dtype: SafetensorsDType = .f32,
                             metadata: [String: String] = [:], to url: URL) throws {
        let encoded = try encode(tensors, as: dtype, path: url.path)
        try write(encoded, metadata: metadata, to: url)
    }

    /// The complete file as bytes.
    public static func serialize(_ tensors: [Tensor], metadata: [String: String] = [:]) throws(SafetensorsError) -> Data {
        try serialize(tensors, metadata: metadata, path: "<memory>")
    }

    /// The complete file as bytes, for Float32 tensors encoded as `dtype`.
    public static func serialize(floats tensors: [FloatTensor], as dtype: SafetensorsDType = .f32,
                                 metadata: [String: String] = [:]) throws(SafetensorsError) -> Data {
        try serialize(try encode(tensors, as: dtype, path: "<memory>"), metadata: metadata, path: "<memory>")
    }

    /// Little-endian bytes of `values` as `dtype` (F32, F16, BF16 or F64), or nil for any other dtype.
    public static func encode(_ values: [Float], as dtype: SafetensorsDType) -> [UInt8]? {
        SafetensorsConversion.encode(values, as: dtype)
    }

    private static func encode(_ tensors: [FloatTensor], as dtype: SafetensorsDType,
                               path: String) throws(SafetensorsError) -> [Tensor] {
        var out: [Tensor] = []
        out.reserveCapacity(tensors.count)
        for t in tensors {
            guard let data = SafetensorsConversion.encode(t.values, as: dtype) else {
                throw SafetensorsError(path: path, tensor: t.name,
                                       kind: .invalidTensor("cannot encode Float32 values as \(dtype); use F32, F16, BF16 or F64"))
            }
            out.append((name: t.name, dtype: dtype, shape: t.shape, data: data))
        }
        return out
    }

    static func serialize(_ tensors: [Tensor], metadata: [String: String], path: String) throws(SafetensorsError) -> Data {
        func fail(_ name: String?, _ why: String) -> SafetensorsError {
            SafetensorsError(path: path, tensor: name, kind: .invalidTensor(why))
        }
        var seen = Set<[UInt8]>()
        for t in tensors {
            guard t.name != "__metadata__" else { throw fail(t.name, "the name __metadata__ is reserved") }
            guard seen.insert(Array(t.name.utf8)).inserted else { throw fail(t.name, "duplicate tensor name") }
            var elements = 1
            for dim in t.shape {
                guard dim >= 0, Double(dim) <= SafetensorsHeaderParser.maxInteger else {
                    throw fail(t.name, "dimension \(dim) in \(t.shape) is outside 0...2^53-1")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw fail(t.name, "element count of \(t.shape) overflows") }
                elements = product
            }
            let (bits, overflow) = elements.multipliedReportingOverflow(by: t.dtype.bitWidth)
            guard !overflow else { throw fail(t.name, "size of \(t.dtype) \(t.shape) overflows") }
            guard bits % 8 == 0 else {
                throw fail(t.name, "\(elements) elements of \(t.dtype) are not a whole number of bytes")
            }
            guard bits / 8 == t.data.count else {
                throw fail(t.name, "\(t.dtype) \(t.shape) needs \(bits / 8) bytes but \(t.data.count) were given")
            }
        }

        let ordered = tensors.sorted { a, b in
            if a.dtype != b.dtype { return a.dtype.referenceOrder > b.dtype.referenceOrder }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }

        var header: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { header.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            JSONWriter.writeString("__metadata__", into: &header)
            header.append(UInt8(ascii: ":"))
            header.append(UInt8(ascii: "{"))
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (k, key) in keys.enumerated() {
                if k > 0 { header.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(key, into: &header)
                header.append(UInt8(ascii: ":"))
                JSONWriter.writeString(metadata[key]!, into: &header)
            }
            header.append(UInt8(ascii: "}"))
        }
        var offset = 0
        for t in ordered {
            separator()
            JSONWriter.writeString(t.name, into: &header)
            header += Array(":{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[".utf8)
            header += Array(t.shape.map(String.init).joined(separator: ",").utf8)
            header += Array("],\"data_offsets\":[\(offset),\(offset + t.data.count)]}".utf8)
            offset += t.data.count
        }
        header.append(UInt8(ascii: "}"))
        while header.count % 8 != 0 { header.append(UInt8(ascii: " ")) }
        guard header.count <= SafetensorsHeaderParser.maxHeaderLength else {
            throw SafetensorsError(path: path, kind: .headerTooLarge(length: UInt64(header.count),
                                                                     limit: SafetensorsHeaderParser.maxHeaderLength))
        }

        var out = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        for t in ordered { out.append(contentsOf: t.data) }
        return out
    }
}
