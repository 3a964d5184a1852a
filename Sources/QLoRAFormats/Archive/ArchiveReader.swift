import CArchive
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One entry as the archive's header describes it, before any safety check.
public struct ArchiveEntry: Sendable, Equatable {
    /// What the entry is.
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        case file
        case directory
        case symbolicLink(target: String)
        case hardLink(target: String)
        /// A device, FIFO, socket or unknown type, named (`character device`).
        case other(String)

        public var description: String {
            switch self {
            case .file: "regular file"
            case .directory: "directory"
            case .symbolicLink: "symbolic link"
            case .hardLink: "hard link"
            case .other(let type): type
            }
        }
    }

    /// The name as stored (a name that is not valid UTF-8 is shown with replacement characters, one that
    /// cannot be decoded at all is empty; extraction refuses both).
    public let name: String
    public let kind: Kind
    /// The size the header claims, in bytes; nil when the header does not say. Never trusted for limits.
    public let size: Int64?
    /// Whether the stored name was valid UTF-8.
    let nameIsUTF8: Bool
}

/// Streams an archive (tar, optionally gzip- or zstd-compressed, or zip; recognised by content, not name)
/// one entry at a time, counting every decompressed byte against `ArchiveLimits`.
///
/// The static functions are the usual entry points: `entries` lists, `readMember` reads one file into
/// memory, `digests` hashes every file with the same checks extraction applies, and `extract` unpacks
/// safely (ArchiveReader+Extract.swift). Not thread-safe: one reader per thread.
public final class ArchiveReader {
    /// The archive's path, as used in error messages.
    public let path: String
    public let limits: ArchiveLimits
    /// Decompressed bytes produced so far, over all entries.
    public private(set) var totalBytes: Int64 = 0
    private let handle: OpaquePointer
    private var entryCount = 0
    private var current: ArchiveEntry?
    private var currentBytes: Int64 = 0
    private static let chunkSize = 1 << 18

    /// Opens `archive` for reading. Throws `ArchiveError` when the file cannot be opened or is not a
    /// recognised archive.
    public init(archive: URL, limits: ArchiveLimits = .adapter) throws {
        let path = archive.path
        self.path = path
        self.limits = limits
        handle = try ArchiveLocale.withUTF8 { try Self.open(path) }
    }

    private static func open(_ path: String) throws -> OpaquePointer {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw ArchiveError(archive: path, kind: .fileSystem(path: path, operation: "open", reason: String(cString: strerror(errno))))
        }
        guard let a = archive_read_new() else {
            throw ArchiveError(archive: path, kind: .library(operation: "archive_read_new", message: "out of memory"))
        }
        var ready = false
        defer { if !ready { archive_read_free(a) } }
        // Only what the writer produces (and plain tar): every extra format or filter is more parser
        // surface for a hostile file.
        for status in [archive_read_support_filter_gzip(a), archive_read_support_filter_zstd(a),
                       archive_read_support_format_tar(a), archive_read_support_format_zip(a)] where status != ARCHIVE_OK {
            throw ArchiveError(archive: path, kind: .library(operation: "archive_read_support", message: libarchiveMessage(a)))
        }
        guard archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK else {
            throw ArchiveError(archive: path, kind: .corrupt(message: libarchiveMessage(a)))
        }
        ready = true
        return a
    }

    deinit { archive_read_free(handle) }

    /// The next entry's header, or nil at the end of the archive. Skips whatever of the previous entry's
    /// data was not read. Throws for a corrupt header or past `limits.maxEntries`.
    public func nextEntry() throws -> ArchiveEntry? {
        try ArchiveLocale.withUTF8(nextEntryInUTF8Locale)
    }

    private func nextEntryInUTF8Locale() throws -> ArchiveEntry? {
        var raw: OpaquePointer?
        let status = archive_read_next_header(handle, &raw)
        if status == ARCHIVE_EOF { current = nil; return nil }
        guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let raw else {
            throw ArchiveError(archive: path, entry: current?.name, kind: .corrupt(message: libarchiveMessage(handle)))
        }
        entryCount += 1
        guard entryCount <= limits.maxEntries else {
            throw ArchiveError(archive: path, kind: .tooManyEntries(limit: limits.maxEntries))
        }
        let entry = Self.describe(raw)
        current = entry
        currentBytes = 0
        return entry
    }

    /// Streams the current entry's data to `body` in chunks of up to 256 KiB and returns the byte count.
    /// Every chunk is counted before `body` sees it, and the read stops with an error as soon as the entry
    /// passes `maxEntryBytes`, the total passes `maxTotalBytes`, or (past `ratioCheckAfterBytes`) the total
    /// exceeds `maxCompressionRatio` times the archive bytes libarchive has read so far.
    @discardableResult
    public func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        guard let entry = current else { preconditionFailure("readData called with no current entry") }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        while true {
            let n = archive_read_data(handle, buffer.baseAddress, Self.chunkSize)
            if n == 0 { return currentBytes }
            guard n > 0 else {
                throw ArchiveError(archive: path, entry: entry.name, kind: .corrupt(message: libarchiveMessage(handle)))
            }
            currentBytes += Int64(n)
            totalBytes += Int64(n)
            try checkLimits(entry: entry.name)
            try body(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
        }
    }

    private func checkLimits(entry: String) throws {
        if currentBytes > limits.maxEntryBytes {
            throw ArchiveError(archive: path, entry: entry, kind: .entryTooLarge(limit: limits.maxEntryBytes))
        }
        if totalBytes > limits.maxTotalBytes {
            throw ArchiveError(archive: path, entry: entry, kind: .totalTooLarge(limit: limits.maxTotalBytes))
        }
        if totalBytes > limits.ratioCheckAfterBytes {
            let consumed = max(archive_filter_bytes(handle, -1), 1)
            let (allowed, overflow) = consumed.multipliedReportingOverflow(by: limits.maxCompressionRatio)
            if !overflow && totalBytes > allowed {
                throw ArchiveError(archive: path, entry: entry, kind: .compressionRatioTooHigh(
                    extracted: totalBytes, archiveBytes: consumed, limit: limits.maxCompressionRatio))
            }
        }
    }

    private static func describe(_ raw: OpaquePointer) -> ArchiveEntry {
        // A name libarchive cannot convert comes back nil; it is refused like one that is not UTF-8.
        let (name, isUTF8) = (archive_entry_pathname(raw) ?? archive_entry_pathname_utf8(raw)).map(decode) ?? ("", false)
        let size = archive_entry_size_is_set(raw) != 0 ? archive_entry_size(raw) : nil
        let kind: ArchiveEntry.Kind
        if let hard = archive_entry_hardlink(raw) {
            kind = .hardLink(target: decode(hard).0)
        } else {
            switch archive_entry_filetype(raw) & ArchiveFileType.mask {
            case ArchiveFileType.regular: kind = .file
            case ArchiveFileType.directory: kind = .directory
            case ArchiveFileType.symbolicLink: kind = .symbolicLink(target: archive_entry_symlink(raw).map { decode($0).0 } ?? "")
            case ArchiveFileType.characterDevice: kind = .other("character device")
            case ArchiveFileType.blockDevice: kind = .other("block device")
            case ArchiveFileType.fifo: kind = .other("FIFO")
            case ArchiveFileType.socket: kind = .other("socket")
            case let type: kind = .other("entry of unknown type 0o\(String(type, radix: 8))")
            }
        }
        return ArchiveEntry(name: name, kind: kind, size: size, nameIsUTF8: isUTF8)
    }

    /// A C string as Swift text, and whether it was valid UTF-8 (invalid bytes become U+FFFD).
    private static func decode(_ text: UnsafePointer<CChar>) -> (String, Bool) {
        if let valid = String(validatingCString: text) { return (valid, true) }
        return (String(decoding: UnsafeRawBufferPointer(start: text, count: strlen(text)), as: UTF8.self), false)
    }
}

extension ArchiveReader {
    /// Every entry's header, in archive order, without reading any data (only `maxEntries` applies).
    public static func entries(archive: URL, limits: ArchiveLimits = .adapter) throws -> [ArchiveEntry] {
        let reader = try ArchiveReader(archive: archive, limits: limits)
        var entries: [ArchiveEntry] = []
        while let entry = try reader.nextEntry() { entries.append(entry) }
        return entries
    }

    /// The bytes of the first regular file named `name` (matched after dropping `./` and empty components,
    /// as extraction does), reading at most `maxBytes` into memory. Throws `memberNotFound`,
    /// `notARegularFile` when the name is a link, directory or device, `memberTooLarge` past `maxBytes`,
    /// or any limit or corruption error met on the way.
    public static func readMember(_ name: String, from archive: URL, maxBytes: Int64,
                                  limits: ArchiveLimits = .adapter) throws -> Data {
        let reader = try ArchiveReader(archive: archive, limits: limits)
        guard case .success(let wanted) = ArchivePath.components(ofEntry: name), !wanted.isEmpty else {
            throw ArchiveError(archive: reader.path, entry: name, kind: .memberNotFound)
        }
        while let entry = try reader.nextEntry() {
            guard entry.nameIsUTF8, case .success(let parts) = ArchivePath.components(ofEntry: entry.name),
                  parts == wanted else { continue }
            guard entry.kind == .file else {
                throw ArchiveError(archive: reader.path, entry: entry.name, kind: .notARegularFile(type: entry.kind.description))
            }
            var data = Data()
            try reader.readData { chunk in
                guard Int64(data.count + chunk.count) <= maxBytes else {
                    throw ArchiveError(archive: reader.path, entry: entry.name, kind: .memberTooLarge(limit: maxBytes))
                }
                data.append(contentsOf: chunk)
            }
            return data
        }
        throw ArchiveError(archive: reader.path, entry: name, kind: .memberNotFound)
    }

    /// SHA-256 and size of every regular file, keyed by its normalised name (`dir/file`), computed while
    /// streaming with every check `extract` applies (names, links, devices, duplicates, limits): an archive
    /// that `digests` accepts is one that `extract` accepts, so `qlora verify` can vouch for it unpacked.
    public static func digests(archive: URL, limits: ArchiveLimits = .adapter) throws -> [String: FileDigest] {
        let reader = try ArchiveReader(archive: archive, limits: limits)
        var result: [String: FileDigest] = [:]
        try reader.walkSafely(directory: { _, _ in }, file: { _, parts in
            var hasher = SHA256()
            let size = try reader.readData { hasher.update(bufferPointer: $0) }
            result[parts.joined(separator: "/")] = FileDigest(sha256: hasher.finalize().hexString, size: size)
        })
        return result
    }

    /// Reads every entry, refusing (with the entry's name) what extraction must not create, and calls
    /// `directory` or `file` with the entry and the normalised components of each accepted one. `file` is expected to
    /// consume the data with `readData`. Refused: names that are not UTF-8, empty, absolute, hold `..` or a
    /// backslash; symbolic and hard links; devices, FIFOs, sockets; a file whose path was already used by a
    /// file or directory, or a directory (explicit or implied) whose path is a file. Directories may repeat.
    func walkSafely(directory: (ArchiveEntry, [Substring]) throws -> Void,
                     file: (ArchiveEntry, [Substring]) throws -> Void) throws {
        var files = Set<[UInt8]>()
        var directories = Set<[UInt8]>()
        func refuse(_ entry: ArchiveEntry, _ kind: ArchiveError.Kind) -> ArchiveError {
            ArchiveError(archive: path, entry: entry.name, kind: kind)
        }
        while let entry = try nextEntry() {
            guard entry.nameIsUTF8 else { throw refuse(entry, .unsafeName(reason: "it is not valid UTF-8")) }
            let parts: [Substring]
            switch ArchivePath.components(ofEntry: entry.name) {
            case .success(let p): parts = p
            case .failure(let kind): throw refuse(entry, kind)
            }
            switch entry.kind {
            case .symbolicLink(let target): throw refuse(entry, .symbolicLink(target: target))
            case .hardLink(let target): throw refuse(entry, .hardLink(target: target))
            case .other(let type): throw refuse(entry, .specialFile(type: type))
            case .file, .directory: break
            }
            if parts.isEmpty {
                if entry.kind == .directory { continue }
                throw refuse(entry, .unsafeName(reason: "it names the target directory itself"))
            }
            // Every proper prefix is a directory; none may be a file.
            for depth in 1..<parts.count {
                let prefix = Array(parts[..<depth].joined(separator: "/").utf8)
                if files.contains(prefix) { throw refuse(entry, .duplicateEntry) }
                directories.insert(prefix)
            }
            let key = Array(parts.joined(separator: "/").utf8)
            if files.contains(key) { throw refuse(entry, .duplicateEntry) }
            if entry.kind == .directory {
                directories.insert(key)
                try directory(entry, parts)
            } else {
                if directories.contains(key) { throw refuse(entry, .duplicateEntry) }
                files.insert(key)
                try file(entry, parts)
            }
        }
    }
}
