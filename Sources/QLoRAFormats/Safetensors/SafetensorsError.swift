// SafetensorsError: every way a safetensors file, a shard index or a write request can be refused, with
// the file path, the tensor (or shard) involved and the byte offset, so a message points at the problem.

/// A safetensors file or checkpoint that cannot be opened, is malformed, or a tensor set that cannot be
/// written. `description` reads like
/// `model.safetensors: byte 152: tensor 'lm_head.weight': data_offsets [0, 10) hold 10 bytes but F32 [3] needs 12`.
public struct SafetensorsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        /// `open`/`fstat`/reading failed; `reason` is the system's message.
        case cannotOpen(reason: String)
        /// `mmap` failed.
        case cannotMap(reason: String)
        /// Shorter than the 8-byte header length field (reference: `HeaderTooSmall`).
        case fileTooSmall(size: Int)
        /// The header length N is over the 100,000,000-byte limit (`HeaderTooLarge`).
        case headerTooLarge(length: UInt64, limit: Int)
        /// `8 + N` is past the end of the file (`InvalidHeaderLength`).
        case headerPastEnd(length: UInt64, fileSize: Int)
        /// The header is not well-formed UTF-8; `at` is the offending byte's index within the header
        /// (`InvalidHeader`).
        case headerNotUTF8(at: Int)
        /// The header does not begin with `{` (`InvalidHeaderStart`).
        case headerBadStart(byte: UInt8?)
        /// The header is not valid JSON (including a repeated key): the parser's message.
        case headerNotJSON(String)
        /// The header's JSON value is not an object.
        case headerNotObject(found: String)
        /// `__metadata__` is not an object of string values.
        case badMetadata(String)
        /// A tensor entry is not an object with exactly `dtype`, `shape` and `data_offsets`.
        case badEntry(String)
        /// A `dtype` string outside the known set (§1.3).
        case unknownDType(String)
        /// A `shape` that is not an array of integers in `0...2^53-1`.
        case badShape(String)
        /// `data_offsets` that is not two integers `[begin, end]` in `0...2^53-1` with `begin <= end`.
        case badOffsets(String)
        /// A number written with a fraction, exponent or sign (`2.0`, `2e0`, `-0`) where a non-negative
        /// integer is required; `text` is the number as written.
        case notAnInteger(field: String, text: String)
        /// The element count (product of the shape) or its bit count overflows (`ValidationOverflow`).
        case sizeOverflow(shape: [Int], dtype: SafetensorsDType)
        /// `elements × bits` is not a whole number of bytes (`MisalignedSlice`).
        case misalignedSlice(elements: Int, dtype: SafetensorsDType)
        /// `end - begin` disagrees with the shape and dtype (`TensorInvalidInfo`).
        case byteCountMismatch(begin: Int, end: Int, expected: Int, dtype: SafetensorsDType, shape: [Int])
        /// Walking tensors by offset, this tensor does not start where the previous one ended: a gap, an
        /// overlap or a reordering (`InvalidOffset`). `dataStart` is the data section's file offset.
        case invalidOffset(begin: Int, end: Int, expectedBegin: Int, dataStart: Int)
        /// The tensors end at `tensorsEnd` but the data section holds `dataSize` bytes: trailing bytes, or
        /// offsets past the end of the file (`MetadataIncompleteBuffer`).
        case incompleteBuffer(tensorsEnd: Int, dataSize: Int)
        /// `floats` cannot convert this dtype to Float32.
        case unsupportedConversion(SafetensorsDType)
        /// A shard index (`model.safetensors.index.json`) that is malformed.
        case badIndex(String)
        /// A shard file name that is not a plain file name (empty, a path separator, `..`, NUL).
        case badShardName(String)
        /// A shard named in the index does not exist.
        case missingShard(String)
        /// The same tensor name appears in two shards.
        case tensorInTwoShards(first: String, second: String)
        /// A tensor found in `shard` is not listed in the index's weight_map.
        case tensorNotInIndex(shard: String)
        /// The index maps the tensor to `indexed`, but it was found in `found`.
        case tensorInWrongShard(indexed: String, found: String)
        /// The index maps the tensor to `shard`, which does not contain it.
        case tensorMissingFromShard(shard: String)
        /// A directory with neither `model.safetensors` nor `model.safetensors.index.json`.
        case noCheckpoint(String)
        /// A tensor set the writer refuses (bad shape, wrong data length, duplicate or reserved name).
        case invalidTensor(String)

        public var description: String {
            switch self {
            case .cannotOpen(let reason): "cannot open: \(reason)"
            case .cannotMap(let reason): "cannot map: \(reason)"
            case .fileTooSmall(let size): "file is \(size) bytes, shorter than the 8-byte header length"
            case .headerTooLarge(let length, let limit): "header length \(length) exceeds the limit of \(limit) bytes"
            case .headerPastEnd(let length, let fileSize):
                "header length \(length) runs past the end of the file (\(fileSize) bytes)"
            case .headerNotUTF8(let at): "header is not valid UTF-8 (byte \(at) of the header)"
            case .headerBadStart(let byte):
                "header does not begin with '{' (found \(byte.map { describeByte($0) } ?? "nothing"))"
            case .headerNotJSON(let message): "header is not valid JSON: \(message)"
            case .headerNotObject(let found): "header is a JSON \(found), not an object"
            case .badMetadata(let why): "bad __metadata__: \(why)"
            case .badEntry(let why): "bad tensor entry: \(why)"
            case .unknownDType(let s): "unknown dtype \"\(s)\""
            case .badShape(let why): "bad shape: \(why)"
            case .badOffsets(let why): "bad data_offsets: \(why)"
            case .notAnInteger(let field, let text):
                "\(field) holds \(text), which is not written as a non-negative integer"
            case .sizeOverflow(let shape, let dtype): "size of \(dtype) \(shape) overflows"
            case .misalignedSlice(let elements, let dtype):
                "\(elements) elements of \(dtype) (\(dtype.bitWidth) bits) are not a whole number of bytes"
            case .byteCountMismatch(let begin, let end, let expected, let dtype, let shape):
                "data_offsets [\(begin), \(end)) hold \(end - begin) bytes but \(dtype) \(shape) needs \(expected)"
            case .invalidOffset(let begin, let end, let expectedBegin, let dataStart):
                "data_offsets [\(begin), \(end)) (file bytes \(dataStart + begin)..<\(dataStart + end)) "
                    + (end < begin ? "end before begin"
                       : begin < expectedBegin ? "overlap the previous tensor, which ends at \(expectedBegin)"
                       : "leave a gap or are out of order: expected begin \(expectedBegin)")
            case .incompleteBuffer(let tensorsEnd, let dataSize):
                tensorsEnd < dataSize
                    ? "tensors end at data offset \(tensorsEnd) but the data section has \(dataSize) bytes (trailing bytes)"
                    : "tensors end at data offset \(tensorsEnd), past the \(dataSize)-byte data section"
            case .unsupportedConversion(let dtype): "cannot convert \(dtype) to Float32"
            case .badIndex(let why): "bad shard index: \(why)"
            case .badShardName(let name): "shard name \"\(name)\" is not a plain file name"
            case .missingShard(let name): "shard \"\(name)\" named in the index does not exist"
            case .tensorInTwoShards(let first, let second): "tensor is in both \"\(first)\" and \"\(second)\""
            case .tensorNotInIndex(let shard): "tensor in shard \"\(shard)\" is not listed in the index weight_map"
            case .tensorInWrongShard(let indexed, let found):
                "index maps the tensor to \"\(indexed)\" but it is in \"\(found)\""
            case .tensorMissingFromShard(let shard): "index maps the tensor to \"\(shard)\", which does not contain it"
            case .noCheckpoint(let why): "no safetensors checkpoint: \(why)"
            case .invalidTensor(let why): why
            }
        }
    }

    /// The path as given (`<memory>` or a caller-chosen label for in-memory bytes).
    public let path: String
    /// Absolute byte offset in the file where the problem was found (for a tensor entry: its key in the
    /// header), nil when not about bytes.
    public let offset: Int?
    /// The tensor involved, if any.
    public let tensor: String?
    public let kind: Kind

    public init(path: String, offset: Int? = nil, tensor: String? = nil, kind: Kind) {
        self.path = path
        self.offset = offset
        self.tensor = tensor
        self.kind = kind
    }

    public var description: String {
        var parts = [path]
        if let offset { parts.append("byte \(offset)") }
        if let tensor { parts.append("tensor '\(tensor)'") }
        parts.append(kind.description)
        return parts.joined(separator: ": ")
    }
}
