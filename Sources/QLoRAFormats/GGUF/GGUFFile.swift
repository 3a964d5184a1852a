// GGUFFile: a GGUF model file mapped read-only into memory, its parsed header, and bounds-checked views
// of tensor data. Tensor bytes are never copied: they are read straight from the mapping.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A parsed GGUF file (versions 2 and 3, little-endian).
///
/// The whole file is mapped read-only (`MAP_PRIVATE`) for the object's lifetime; the header is parsed and
/// validated up front (spec/safetensors-and-gguf.md §5), so a malformed or hostile file throws a
/// `GGUFError` from `init` instead of trapping later. Immutable after `init`, hence safe to share.
///
/// Caveat: as with any mapping, if another process truncates the file while it is mapped, touching the
/// lost pages raises SIGBUS; the reader cannot guard against that.
public final class GGUFFile: @unchecked Sendable {
    /// The path as given (or the label passed with in-memory bytes).
    public let path: String
    /// 2 or 3.
    public let version: UInt32
    /// Key → value pairs in file order.
    public let metadata: GGUFMetadata
    /// Tensor infos in file order. Entries with `type.isKnown == false` are listed but not readable.
    public let tensors: [GGUFTensorInfo]
    /// `general.alignment`, or 32 when absent; a power of two.
    public let alignment: Int
    /// Absolute offset of the data section: the end of the tensor infos rounded up to `alignment`. With no
    /// tensors the padding need not be present, so this may then exceed `fileSize`.
    public let dataOffset: Int

    private let storage: MappedBytes
    private let tensorIndex: [String: Int]

    /// Maps and parses the file at `path`.
    public convenience init(path: String, limits: GGUFLimits = GGUFLimits()) throws(GGUFError) {
        try self.init(storage: MappedBytes.mapping(path, as: GGUFError.self), path: path, limits: limits)
    }

    /// Parses a copy of `bytes` (tests, files built in memory); `path` labels error messages.
    public convenience init(bytes: [UInt8], path: String = "<memory>",
                            limits: GGUFLimits = GGUFLimits()) throws(GGUFError) {
        try self.init(storage: MappedBytes(copying: bytes), path: path, limits: limits)
    }

    private init(storage: MappedBytes, path: String, limits: GGUFLimits) throws(GGUFError) {
        var parser = GGUFParser(base: storage.base, count: storage.count, path: path, limits: limits)
        let header = try parser.parse()
        self.storage = storage
        self.path = path
        self.version = header.version
        self.metadata = header.metadata
        self.tensors = header.tensors
        self.alignment = header.alignment
        self.dataOffset = header.dataOffset
        var index: [String: Int] = [:]
        index.reserveCapacity(header.tensors.count)
        for (i, info) in header.tensors.enumerated() { index[info.name] = i }
        self.tensorIndex = index
    }

    /// Size of the file in bytes.
    public var fileSize: Int { storage.count }

    /// Lets the OS drop the resident pages of `info`'s data (see `SafetensorsFile.releasePages`).
    public func releasePages(_ info: GGUFTensorInfo) {
        guard info.offset >= 0, info.byteCount >= 0 else { return }
        let start = dataOffset + info.offset
        storage.releasePages(start..<min(start + info.byteCount, storage.count))
    }

    /// The tensor called `name`, if listed.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor: a view into the mapping, valid only while this `GGUFFile` is alive (hold a
    /// reference, or use `withTensorData`). Throws for an unknown type or a range outside the file
    /// (possible only for an info not taken from this file).
    public func tensorData(_ info: GGUFTensorInfo) throws(GGUFError) -> UnsafeRawBufferPointer {
        guard info.type.isKnown else {
            throw GGUFError(path: path, offset: info.infoOffset, tensor: info.name,
                            kind: .unknownTensorType(info.type.rawValue))
        }
        let (start, o1) = dataOffset.addingReportingOverflow(info.offset)
        let (end, o2) = start.addingReportingOverflow(info.byteCount)
        guard info.offset >= 0, info.byteCount >= 0, !o1, !o2, end <= storage.count else {
            throw GGUFError(path: path, offset: info.infoOffset, tensor: info.name,
                            kind: .dataOutOfRange(start: UInt64(clamping: start), end: o2 ? .max : UInt64(clamping: end),
                                                  fileSize: storage.count))
        }
        return UnsafeRawBufferPointer(start: storage.base + start, count: info.byteCount)
    }

    /// The bytes of the tensor called `name`, or nil when no tensor has that name (same lifetime rule).
    public func tensorData(named name: String) throws(GGUFError) -> UnsafeRawBufferPointer? {
        guard let info = tensor(named: name) else { return nil }
        return try tensorData(info)
    }

    /// Calls `body` with a tensor's bytes while keeping this file (and so the mapping) alive.
    public func withTensorData<R>(_ info: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        try withExtendedLifetime(self) { try body(try tensorData(info)) }
    }
}

extension MappedBytes {
    /// Maps `path`, reporting failures as `GGUFError`.
    static func mapping(_ path: String, as _: GGUFError.Type) throws(GGUFError) -> MappedBytes {
        do {
            return try MappedBytes(mapping: path)
        } catch {
            switch error {
            case .cannotOpen(let reason): throw GGUFError(path: path, kind: .cannotOpen(reason: reason))
            case .cannotMap(let reason): throw GGUFError(path: path, kind: .cannotMap(reason: reason))
            }
        }
    }
}
