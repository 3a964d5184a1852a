// GGUFError: every way a GGUF file can be refused, with the file path, the byte offset and the key or
// tensor involved, so a message points straight at the bad bytes.

/// A GGUF file that cannot be opened or is malformed. `description` reads like
/// `model.gguf: byte 1234: key 'tokenizer.ggml.tokens': string length 9999999 exceeds the 120 bytes left`.
public struct GGUFError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        /// `open`/`fstat` failed; `reason` is the system's message.
        case cannotOpen(reason: String)
        /// `mmap` failed.
        case cannotMap(reason: String)
        /// The first four bytes are not "GGUF".
        case badMagic([UInt8])
        /// Versions 2 and 3 are read; 1 (u32 counts) and anything newer are not.
        case unsupportedVersion(UInt32)
        /// `version & 0xFFFF == 0`: a big-endian (byte-swapped) file.
        case byteSwapped(version: UInt32)
        /// A field needs `needed` bytes but only `available` remain.
        case truncated(needed: Int, available: Int)
        /// A count (tensors, metadata pairs, array elements) that cannot fit in the bytes left, or over a cap.
        case implausibleCount(what: String, count: UInt64, limit: UInt64)
        /// A string length beyond the bytes left or over the cap.
        case stringTooLong(length: UInt64, limit: UInt64)
        /// A string or key is not valid UTF-8; `at` is the offending byte's index within the string.
        case invalidUTF8(at: Int)
        /// Keys must be non-empty.
        case emptyKey
        /// The key appeared earlier in the file.
        case duplicateKey
        /// A value type id outside 0...12.
        case unknownValueType(UInt32)
        /// Arrays of arrays nested deeper than the limit.
        case arrayNestingTooDeep(limit: Int)
        /// A BOOL byte other than 0 or 1.
        case invalidBool(UInt8)
        /// All arrays together hold more elements than the limit allows.
        case allocationLimit(elements: UInt64, limit: UInt64)
        /// `general.alignment` is not a nonzero power-of-two UINT32.
        case badAlignment(String)
        /// A tensor name that is empty or too long.
        case invalidTensorName(String)
        /// The tensor name appeared earlier in the file.
        case duplicateTensorName
        /// n_dims outside 1...4.
        case badDimensionCount(UInt32)
        /// A dim below 1 or above Int64.max.
        case badDimension(index: Int, value: UInt64)
        /// The element or byte count overflows Int64.
        case sizeOverflow
        /// ne0 is not a multiple of the type's block size.
        case rowNotBlockMultiple(ne0: Int, blockSize: Int, type: String)
        /// The tensor's type id is unknown, so its data cannot be located.
        case unknownTensorType(UInt32)
        /// The tensor offset is not a multiple of the alignment.
        case misalignedOffset(offset: UInt64, alignment: Int)
        /// The tensor's data `[start, end)` (absolute) is not inside the file.
        case dataOutOfRange(start: UInt64, end: UInt64, fileSize: Int)
        /// The tensor's data overlaps the data of the named tensor.
        case overlappingTensors(other: String)

        public var description: String {
            switch self {
            case .cannotOpen(let reason): "cannot open: \(reason)"
            case .cannotMap(let reason): "cannot map: \(reason)"
            case .badMagic(let bytes):
                "not a GGUF file (magic \(bytes.map { hex2($0) }.joined(separator: " ")), expected 47 47 55 46 \"GGUF\")"
            case .unsupportedVersion(let v): "unsupported GGUF version \(v) (only 2 and 3 are read)"
            case .byteSwapped(let v): "version field \(v) looks byte-swapped: big-endian GGUF files are not supported"
            case .truncated(let needed, let available):
                "truncated: needs \(needed) bytes but only \(available) remain"
            case .implausibleCount(let what, let count, let limit):
                "\(what) \(count) is implausible: at most \(limit) possible here (bounded by the bytes left and the caps)"
            case .stringTooLong(let length, let limit): "string length \(length) exceeds the limit of \(limit) bytes"
            case .invalidUTF8(let at): "invalid UTF-8 at byte \(at) of the string"
            case .emptyKey: "empty key"
            case .duplicateKey: "duplicate key"
            case .unknownValueType(let t): "unknown value type \(t) (valid types are 0...12)"
            case .arrayNestingTooDeep(let limit): "arrays nested deeper than \(limit) levels"
            case .invalidBool(let b): "BOOL byte \(b) is neither 0 nor 1"
            case .allocationLimit(let elements, let limit):
                "metadata arrays would hold \(elements) elements, over the limit of \(limit)"
            case .badAlignment(let why): "bad alignment: \(why)"
            case .invalidTensorName(let why): "invalid tensor name: \(why)"
            case .duplicateTensorName: "duplicate tensor name"
            case .badDimensionCount(let n): "n_dims \(n) is outside 1...4"
            case .badDimension(let index, let value): "dim \(index) is \(value); each dim must be in 1...Int64.max"
            case .sizeOverflow: "element or byte count overflows Int64"
            case .rowNotBlockMultiple(let ne0, let blockSize, let type):
                "ne0 \(ne0) is not a multiple of the \(type) block size \(blockSize)"
            case .unknownTensorType(let id): "unknown tensor type \(id): data size unknown"
            case .misalignedOffset(let offset, let alignment):
                "data offset \(offset) is not a multiple of the alignment \(alignment)"
            case .dataOutOfRange(let start, let end, let fileSize):
                "data [\(start), \(end)) is outside the file (\(fileSize) bytes)"
            case .overlappingTensors(let other): "data overlaps tensor '\(other)'"
            }
        }
    }

    /// The path as given (`<memory>` or a caller-chosen label for in-memory bytes).
    public let path: String
    /// Absolute byte offset in the file where the problem was found (nil when not about bytes).
    public let offset: Int?
    /// The metadata key involved, if any (decoded leniently when the key itself is not UTF-8).
    public let key: String?
    /// The tensor involved, if any.
    public let tensor: String?
    public let kind: Kind

    public init(path: String, offset: Int? = nil, key: String? = nil, tensor: String? = nil, kind: Kind) {
        self.path = path
        self.offset = offset
        self.key = key
        self.tensor = tensor
        self.kind = kind
    }

    public var description: String {
        var parts = [path]
        if let offset { parts.append("byte \(offset)") }
        if let key { parts.append("key '\(key)'") }
        if let tensor { parts.append("tensor '\(tensor)'") }
        parts.append(kind.description)
        return parts.joined(separator: ": ")
    }
}

private func hex2(_ byte: UInt8) -> String {
    let s = String(byte, radix: 16, uppercase: true)
    return s.count == 1 ? "0" + s : s
}
