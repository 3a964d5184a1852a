// SafetensorsFile: a safetensors file mapped read-only into memory, its validated header, and views of
// tensor data straight from the mapping (no copy until a dtype conversion is asked for).

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A parsed safetensors file (spec shared/spec/safetensors-and-gguf.md §1).
///
/// The whole file is mapped read-only (`MAP_PRIVATE`) for the object's lifetime; the header is parsed and
/// fully validated in `init` (§1.5 and the §5 checklist), so a malformed or hostile file throws a
/// `SafetensorsError` instead of trapping later. Immutable after `init`, hence safe to share.
///
/// Stricter than the reference reader in three documented ways: each entry must have exactly the fields
/// `dtype`, `shape` and `data_offsets`; dims and offsets must be written as plain integers (`2`, not `2.0`
/// or `2e0`, as serde's `usize` also demands) no larger than 2^53 − 1; and `__metadata__`, when present,
/// must be an object of strings (`null` is refused).
///
/// Caveat: as with any mapping, if another process truncates the file while it is mapped, touching the
/// lost pages raises SIGBUS; the reader cannot guard against that.
public final class SafetensorsFile: @unchecked Sendable {
    /// The path as given (or the label passed with in-memory bytes).
    public let path: String
    /// Tensor entries in header order.
    public let tensors: [SafetensorsTensorInfo]
    /// The `__metadata__` map (empty when absent).
    public let metadata: [String: String]
    /// N, the header's length in bytes (padding included).
    public let headerLength: Int

    private let storage: MappedBytes
    private let tensorIndex: [String: Int]

    /// Maps and validates the file at `path`.
    public convenience init(path: String) throws(SafetensorsError) {
        try self.init(storage: MappedBytes.mapping(path, as: SafetensorsError.self), path: path)
    }

    /// Validates a copy of `bytes` (tests, files built in memory); `path` labels error messages.
    public convenience init(bytes: [UInt8], path: String = "<memory>") throws(SafetensorsError) {
        try self.init(storage: MappedBytes(copying: bytes), path: path)
    }

    private init(storage: MappedBytes, path: String) throws(SafetensorsError) {
        let header = try SafetensorsHeaderParser.parse(base: storage.base, count: storage.count, path: path)
        self.storage = storage
        self.path = path
        self.tensors = header.tensors
        self.metadata = header.metadata
        self.headerLength = header.headerLength
        var index: [String: Int] = [:]
        index.reserveCapacity(header.tensors.count)
        for (i, info) in header.tensors.enumerated() { index[info.name] = i }
        self.tensorIndex = index
    }

    /// Size of the file in bytes.
    public var fileSize: Int { storage.count }

    /// Lets the OS drop the resident pages of `info`'s data (after it has been converted), keeping the
    /// resident set of a streaming pass over a large checkpoint bounded.
    public func releasePages(_ info: SafetensorsTensorInfo) {
        storage.releasePages((dataOffset + info.dataOffsets.lowerBound)..<(dataOffset + info.dataOffsets.upperBound))
    }

    /// File offset of the data section: `8 + headerLength`.
    public var dataOffset: Int { 8 + headerLength }

    /// The tensor names in header order.
    public var names: [String] { tensors.map(\.name) }

    /// The tensor called `name`, if present.
    public func tensor(named name: String) -> SafetensorsTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The bytes of a tensor: a view into the mapping, valid only while this `SafetensorsFile` is alive
    /// (hold a reference, or use `withData`). The bytes are little-endian and need not be aligned for the
    /// dtype: read them with `loadUnaligned`.
    ///
    /// Precondition: `info` came from this file (its range lies inside the data section).
    public func data(_ info: SafetensorsTensorInfo) -> UnsafeRawBufferPointer {
        let range = info.dataOffsets
        precondition(range.lowerBound >= 0 && range.upperBound <= storage.count - dataOffset,
                     "tensor '\(info.name)' \(range) is not inside the data section of \(path)")
        return UnsafeRawBufferPointer(start: storage.base + dataOffset + range.lowerBound, count: range.count)
    }

    /// Calls `body` with a tensor's bytes while keeping this file (and so the mapping) alive.
    public func withData<R, E: Error>(_ info: SafetensorsTensorInfo,
                                      _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        defer { withExtendedLifetime(self) {} }
        return try body(data(info))
    }

    /// A copy of a tensor's raw bytes (safe to keep after this file is gone).
    public func bytes(_ info: SafetensorsTensorInfo) -> [UInt8] {
        withData(info) { Array($0) }
    }

    /// The tensor's elements converted to Float32, in row-major order. Converts F32, F16 (IEEE binary16),
    /// BF16 (`bits << 16`), F64 (rounded to nearest), the integer types (rounded to nearest where they
    /// exceed 24 bits) and BOOL (nonzero → 1). Throws `unsupportedConversion` for the 4/6/8-bit float
    /// formats and C64.
    public func floats(_ info: SafetensorsTensorInfo) throws(SafetensorsError) -> [Float] {
        guard info.dtype.convertsToFloat else {
            throw SafetensorsError(path: path, tensor: info.name, kind: .unsupportedConversion(info.dtype))
        }
        let bytes = data(info)
        let count = info.elementCount
        // Array(unsafeUninitializedCapacity: 0) stores the count into the stdlib's shared empty-array storage:
        // a write every thread's empty arrays read (ThreadSanitizer reports it; scripts/sanitize.sh thread).
        guard count > 0 else { return [] }
        return withExtendedLifetime(self) {
            [Float](unsafeUninitializedCapacity: count) { out, initialized in
                SafetensorsConversion.convert(bytes, dtype: info.dtype, count: count, into: out)
                initialized = count
            }
        }
    }

    /// The Float32 elements of the tensor called `name`, or nil when there is none.
    public func floats(named name: String) throws(SafetensorsError) -> [Float]? {
        guard let info = tensor(named: name) else { return nil }
        return try floats(info)
    }
}

extension MappedBytes {
    /// Maps `path`, reporting failures as `SafetensorsError`.
    static func mapping(_ path: String, as _: SafetensorsError.Type) throws(SafetensorsError) -> MappedBytes {
        do {
            return try MappedBytes(mapping: path)
        } catch {
            switch error {
            case .cannotOpen(let reason): throw SafetensorsError(path: path, kind: .cannotOpen(reason: reason))
            case .cannotMap(let reason): throw SafetensorsError(path: path, kind: .cannotMap(reason: reason))
            }
        }
    }
}
