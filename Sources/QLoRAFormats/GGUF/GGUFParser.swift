// The GGUF header parser (spec/safetensors-and-gguf.md §2 and the §5 checklist): one pass over the
// header, KVs and tensor infos with a bounds-checked cursor, then the data-section checks.
//
// Every count is bounded by the bytes that remain before anything is allocated, all size arithmetic is
// overflow-checked, and loads are unaligned, so a hostile file can only produce a GGUFError.

/// Caps that keep a hostile file from making the reader allocate or recurse without bound.
/// The defaults accept every file ggml accepts, apart from nesting (see `maxArrayDepth`).
public struct GGUFLimits: Sendable, Equatable {
    /// Longest string value, in bytes (ggml: 1 GiB).
    public var maxStringLength: UInt64 = 1 << 30
    /// Longest key, in bytes (docs/gguf.md: 65535).
    public var maxKeyLength: Int = 65_535
    /// Longest tensor name, in bytes (GGML_MAX_NAME is 64 including the NUL).
    public var maxTensorNameLength: Int = 63
    /// Most elements in one array (ggml: 2^30).
    public var maxArrayLength: UInt64 = 1 << 30
    /// Most array levels: 1 allows flat arrays only (what ggml accepts); the default also allows arrays of
    /// arrays of arrays, which the spec permits.
    public var maxArrayDepth: Int = 3
    /// Most array elements in all the metadata together; each costs about 24 bytes of memory.
    public var maxTotalArrayElements: UInt64 = 1 << 26

    public init() {}
}

/// The parsed header, before it becomes a GGUFFile.
struct GGUFHeader {
    var version: UInt32
    var metadata: GGUFMetadata
    var tensors: [GGUFTensorInfo]
    var alignment: Int
    var dataOffset: Int
}

struct GGUFParser {
    /// Smallest encoded KV: key length (8) + one key byte + value type (4) + a one-byte value.
    static let minimumKVSize = 14
    /// Smallest encoded tensor info: name length (8) + n_dims (4) + type (4) + offset (8).
    static let minimumTensorInfoSize = 24
    static let defaultAlignment = 32

    let base: UnsafeRawPointer
    let count: Int
    let path: String
    let limits: GGUFLimits
    private var pos = 0
    private var totalElements: UInt64 = 0
    /// The key or tensor being read, for error messages.
    private var currentKey: String?
    private var currentTensor: String?

    init(base: UnsafeRawPointer, count: Int, path: String, limits: GGUFLimits) {
        self.base = base
        self.count = count
        self.path = path
        self.limits = limits
    }

    private var remaining: Int { count - pos }

    private func error(_ kind: GGUFError.Kind, at offset: Int) -> GGUFError {
        GGUFError(path: path, offset: offset, key: currentKey, tensor: currentTensor, kind: kind)
    }

    // MARK: cursor

    @inline(__always)
    private mutating func need(_ n: Int) throws(GGUFError) {
        if n > remaining { throw error(.truncated(needed: n, available: remaining), at: pos) }
    }

    @inline(__always)
    private func load<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        T(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    @inline(__always)
    private mutating func read<T: FixedWidthInteger>(_: T.Type) throws(GGUFError) -> T {
        try need(MemoryLayout<T>.size)
        let v = load(T.self, at: pos)
        pos += MemoryLayout<T>.size
        return v
    }

    /// Reads a u64 byte length and checks it against the bytes left and `limit`; returns the length.
    private mutating func readLength(limit: UInt64) throws(GGUFError) -> Int {
        let start = pos
        let length = try read(UInt64.self)
        if length > UInt64(remaining) {
            throw error(.truncated(needed: length > UInt64(Int.max) ? Int.max : Int(length), available: remaining),
                        at: start)
        }
        if length > limit { throw error(.stringTooLong(length: length, limit: limit), at: start) }
        return Int(length)
    }

    /// The `n` bytes at the cursor as text, or nil when they are not UTF-8 (the cursor then stays put).
    private func text(_ n: Int) -> (String?, invalidAt: Int) {
        let bytes = UnsafeRawBufferPointer(start: base + pos, count: n)
        if let bad = UTF8Validation.firstInvalidOffset(bytes) { return (nil, bad) }
        return (String(decoding: bytes, as: UTF8.self), 0)
    }

    @inline(__always)
    private mutating func readString() throws(GGUFError) -> String {
        let n = try readLength(limit: limits.maxStringLength)
        let (s, bad) = text(n)
        guard let s else { throw error(.invalidUTF8(at: bad), at: pos + bad) }
        pos += n
        return s
    }

    // MARK: header

    mutating func parse() throws(GGUFError) -> GGUFHeader {
        try need(4)
        let magic = [UInt8](UnsafeRawBufferPointer(start: base, count: 4))
        guard magic == [0x47, 0x47, 0x55, 0x46] else { throw error(.badMagic(magic), at: 0) }
        pos = 4
        let version = try read(UInt32.self)
        if version & 0xFFFF == 0 { throw error(.byteSwapped(version: version), at: 4) }
        guard version == 2 || version == 3 else { throw error(.unsupportedVersion(version), at: 4) }
        let tensorCount = try readCount("tensor count", minimumSize: Self.minimumTensorInfoSize, reserved: 0)
        let kvCount = try readCount("metadata count", minimumSize: Self.minimumKVSize,
                                    reserved: tensorCount * Self.minimumTensorInfoSize)

        var alignment = Self.defaultAlignment
        let metadata = try readMetadata(count: kvCount, alignment: &alignment)
        let tensors = try readTensorInfos(count: tensorCount, alignment: alignment)

        let (padded, overflow) = pos.addingReportingOverflow(alignment - 1)
        if overflow { throw error(.sizeOverflow, at: pos) }
        let dataOffset = padded & ~(alignment - 1)
        try checkDataRanges(tensors, dataOffset: dataOffset)
        return GGUFHeader(version: version, metadata: metadata, tensors: tensors,
                          alignment: alignment, dataOffset: dataOffset)
    }

    /// Reads a u64 count of records that each need at least `minimumSize` bytes, after `reserved` bytes
    /// that other records already need.
    private mutating func readCount(_ what: String, minimumSize: Int, reserved: Int) throws(GGUFError) -> Int {
        let start = pos
        let n = try read(UInt64.self)
        let room = max(0, remaining - reserved)
        let limit = UInt64(room / minimumSize)
        guard n <= limit else { throw error(.implausibleCount(what: what, count: n, limit: limit), at: start) }
        return Int(n)
    }

    // MARK: metadata

    private mutating func readMetadata(count kvCount: Int, alignment: inout Int) throws(GGUFError) -> GGUFMetadata {
        var entries: [GGUFMetadata.Entry] = []
        entries.reserveCapacity(kvCount)
        var seen = Set<String>(minimumCapacity: kvCount)
        for _ in 0..<kvCount {
            let kvStart = pos
            let key = try readKey()
            currentKey = key
            guard seen.insert(key).inserted else { throw error(.duplicateKey, at: kvStart) }
            let typeStart = pos
            let rawType = try read(UInt32.self)
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw error(.unknownValueType(rawType), at: typeStart)
            }
            let value = try readValue(type, depth: 0)
            if key == "general.alignment" {
                guard case .uint32(let a) = value else {
                    throw error(.badAlignment("type \(type), expected UINT32"), at: typeStart)
                }
                guard a != 0, a & (a - 1) == 0 else {
                    throw error(.badAlignment("\(a) is not a nonzero power of two"), at: typeStart + 4)
                }
                alignment = Int(a)
            }
            entries.append(GGUFMetadata.Entry(key: key, value: value))
            currentKey = nil
        }
        return GGUFMetadata(entries)
    }

    private mutating func readKey() throws(GGUFError) -> String {
        let start = pos
        let n = try readLength(limit: UInt64(limits.maxKeyLength))
        if n == 0 { throw error(.emptyKey, at: start) }
        let (key, bad) = text(n)
        guard let key else {
            currentKey = String(decoding: UnsafeRawBufferPointer(start: base + pos, count: n), as: UTF8.self)
            throw error(.invalidUTF8(at: bad), at: pos + bad)
        }
        pos += n
        return key
    }

    /// Reads one value of `type`; `depth` is the number of enclosing arrays.
    private mutating func readValue(_ type: GGUFValueType, depth: Int) throws(GGUFError) -> GGUFValue {
        switch type {
        case .uint8: return .uint8(try read(UInt8.self))
        case .int8: return .int8(try read(Int8.self))
        case .uint16: return .uint16(try read(UInt16.self))
        case .int16: return .int16(try read(Int16.self))
        case .uint32: return .uint32(try read(UInt32.self))
        case .int32: return .int32(try read(Int32.self))
        case .float32: return .float32(Float(bitPattern: try read(UInt32.self)))
        case .uint64: return .uint64(try read(UInt64.self))
        case .int64: return .int64(try read(Int64.self))
        case .float64: return .float64(Double(bitPattern: try read(UInt64.self)))
        case .bool:
            let b = try read(UInt8.self)
            guard b <= 1 else { throw error(.invalidBool(b), at: pos - 1) }
            return .bool(b == 1)
        case .string: return .string(try readString())
        case .array: return try readArray(depth: depth + 1)
        }
    }

    /// Reads an array's element type, count and elements; `depth` counts this array.
    private mutating func readArray(depth: Int) throws(GGUFError) -> GGUFValue {
        let typeStart = pos
        let rawType = try read(UInt32.self)
        guard let elementType = GGUFValueType(rawValue: rawType) else {
            throw error(.unknownValueType(rawType), at: typeStart)
        }
        if elementType == .array, depth + 1 > limits.maxArrayDepth {
            throw error(.arrayNestingTooDeep(limit: limits.maxArrayDepth), at: typeStart)
        }
        let countStart = pos
        let rawCount = try read(UInt64.self)
        let limit = min(UInt64(remaining / elementType.minimumSize), limits.maxArrayLength)
        guard rawCount <= limit else {
            throw error(.implausibleCount(what: "array length", count: rawCount, limit: limit), at: countStart)
        }
        // Both terms are at most the file size, so the sum cannot overflow.
        let total = totalElements + rawCount
        guard total <= limits.maxTotalArrayElements else {
            throw error(.allocationLimit(elements: total, limit: limits.maxTotalArrayElements), at: countStart)
        }
        totalElements = total
        let n = Int(rawCount)
        var items: [GGUFValue] = []
        items.reserveCapacity(n)
        switch elementType {
        case .uint8: readScalars(n, into: &items) { (v: UInt8) in .uint8(v) }
        case .int8: readScalars(n, into: &items) { (v: Int8) in .int8(v) }
        case .uint16: readScalars(n, into: &items) { (v: UInt16) in .uint16(v) }
        case .int16: readScalars(n, into: &items) { (v: Int16) in .int16(v) }
        case .uint32: readScalars(n, into: &items) { (v: UInt32) in .uint32(v) }
        case .int32: readScalars(n, into: &items) { (v: Int32) in .int32(v) }
        case .float32: readScalars(n, into: &items) { (v: UInt32) in .float32(Float(bitPattern: v)) }
        case .uint64: readScalars(n, into: &items) { (v: UInt64) in .uint64(v) }
        case .int64: readScalars(n, into: &items) { (v: Int64) in .int64(v) }
        case .float64: readScalars(n, into: &items) { (v: UInt64) in .float64(Double(bitPattern: v)) }
        case .bool:
            for i in 0..<n {
                let b = load(UInt8.self, at: pos + i)
                guard b <= 1 else { throw error(.invalidBool(b), at: pos + i) }
                items.append(.bool(b == 1))
            }
            pos += n
        case .string:
            for _ in 0..<n { items.append(.string(try readString())) }
        case .array:
            for _ in 0..<n { items.append(try readArray(depth: depth + 1)) }
        }
        return .array(elementType, items)
    }

    /// Reads `n` fixed-size scalars; the caller has checked that `n × size` bytes remain.
    @inline(__always)
    private mutating func readScalars<T: FixedWidthInteger>(_ n: Int, into items: inout [GGUFValue],
                                                            _ wrap: (T) -> GGUFValue) {
        let size = MemoryLayout<T>.size
        var p = pos
        for _ in 0..<n {
            items.append(wrap(load(T.self, at: p)))
            p += size
        }
        pos = p
    }

    // MARK: tensor infos

    private mutating func readTensorInfos(count tensorCount: Int, alignment: Int) throws(GGUFError) -> [GGUFTensorInfo] {
        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(tensorCount)
        var seen = Set<String>(minimumCapacity: tensorCount)
        for _ in 0..<tensorCount {
            let infoStart = pos
            let name = try readTensorName()
            currentTensor = name
            guard seen.insert(name).inserted else { throw error(.duplicateTensorName, at: infoStart) }

            let nDimsStart = pos
            let nDims = try read(UInt32.self)
            guard (1...4).contains(nDims) else { throw error(.badDimensionCount(nDims), at: nDimsStart) }
            var dims: [Int] = []
            dims.reserveCapacity(Int(nDims))
            var elements = 1
            for index in 0..<Int(nDims) {
                let dimStart = pos
                let d = try read(UInt64.self)
                guard d >= 1, d <= UInt64(Int64.max) else {
                    throw error(.badDimension(index: index, value: d), at: dimStart)
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(d))
                if overflow { throw error(.sizeOverflow, at: dimStart) }
                elements = product
                dims.append(Int(d))
            }

            let typeStart = pos
            let type = GGUFTensorType(rawValue: try read(UInt32.self))
            var byteCount = 0
            if type.isKnown {
                let block = type.blockSize
                guard dims[0] % block == 0 else {
                    throw error(.rowNotBlockMultiple(ne0: dims[0], blockSize: block, type: type.description),
                                at: typeStart)
                }
                // ne0 is a multiple of the block size, so the element count is too.
                let (bytes, overflow) = (elements / block).multipliedReportingOverflow(by: type.bytesPerBlock)
                if overflow { throw error(.sizeOverflow, at: typeStart) }
                byteCount = bytes
            }

            let offsetStart = pos
            let offset = try read(UInt64.self)
            guard offset % UInt64(alignment) == 0 else {
                throw error(.misalignedOffset(offset: offset, alignment: alignment), at: offsetStart)
            }
            guard offset <= UInt64(count) else {
                throw error(.dataOutOfRange(start: offset, end: offset, fileSize: count), at: offsetStart)
            }
            infos.append(GGUFTensorInfo(name: name, dims: dims, type: type, offset: Int(offset),
                                        byteCount: byteCount, elementCount: elements, infoOffset: infoStart))
            currentTensor = nil
        }
        return infos
    }

    private mutating func readTensorName() throws(GGUFError) -> String {
        let start = pos
        let n = try readLength(limit: limits.maxStringLength)
        if n == 0 { throw error(.invalidTensorName("empty"), at: start) }
        if n > limits.maxTensorNameLength {
            // Name the tensor by its first bytes only: a hostile name can be a gigabyte long.
            let shown = min(n, limits.maxTensorNameLength + 1)
            currentTensor = String(decoding: UnsafeRawBufferPointer(start: base + pos, count: shown), as: UTF8.self)
                + (n > shown ? "…" : "")
            throw error(.invalidTensorName("\(n) bytes long, at most \(limits.maxTensorNameLength) allowed"),
                        at: start)
        }
        let (name, bad) = text(n)
        guard let name else {
            currentTensor = String(decoding: UnsafeRawBufferPointer(start: base + pos, count: n), as: UTF8.self)
            throw error(.invalidUTF8(at: bad), at: pos + bad)
        }
        pos += n
        return name
    }

    // MARK: data section

    /// Every tensor of a known type lies inside the file, and no two overlap. Offsets were already
    /// checked for alignment and are at most the file size, so `dataOffset + offset` cannot overflow.
    private mutating func checkDataRanges(_ tensors: [GGUFTensorInfo], dataOffset: Int) throws(GGUFError) {
        for info in tensors {
            let start = dataOffset + info.offset
            let (end, overflow) = start.addingReportingOverflow(info.byteCount)
            if overflow || end > count {
                currentTensor = info.name
                throw error(.dataOutOfRange(start: UInt64(start), end: overflow ? UInt64.max : UInt64(end),
                                            fileSize: count), at: info.infoOffset)
            }
        }
        let known = tensors.filter { $0.type.isKnown }.sorted { $0.offset < $1.offset }
        for i in known.indices.dropFirst() {
            let previous = known[i - 1], next = known[i]
            if previous.offset + previous.byteCount > next.offset {
                currentTensor = next.name
                throw error(.overlappingTensors(other: previous.name), at: next.infoOffset)
            }
        }
        currentTensor = nil
    }
}
