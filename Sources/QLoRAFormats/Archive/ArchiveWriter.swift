import CArchive
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One regular file to put in an archive: its name inside the archive and where its bytes come from.
public struct ArchiveMember: Sendable, Equatable {
    /// Where the member's bytes come from.
    public enum Source: Sendable, Equatable {
        /// A file on disk, streamed in 1 MiB chunks when the archive is written (its size must not change
        /// meanwhile).
        case file(URL)
        /// Bytes in memory (configs, manifests).
        case data(Data)
    }

    /// The member's path inside the archive, `/`-separated and canonical (`dir/file`, no `.`/`..`, no
    /// leading or trailing slash).
    public var name: String
    public var source: Source

    public init(name: String, file: URL) {
        self.name = name
        self.source = .file(file)
    }

    public init(name: String, data: Data) {
        self.name = name
        self.source = .data(data)
    }

    /// Every regular file under `directory` (recursively), named by its path relative to it. Symbolic links,
    /// devices, FIFOs and sockets are refused with a `FileError` naming the path, since an archive of them
    /// could not be extracted; empty directories are not represented (archives hold files and the
    /// directories that contain them).
    public static func files(under directory: URL) throws -> [ArchiveMember] {
        var members: [ArchiveMember] = []
        func walk(_ url: URL, prefix: String) throws {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: url.path) } catch {
                throw FileError(path: url.path, message: "cannot list the directory: \(error.localizedDescription)")
            }
            for name in names {
                let child = url.appendingPathComponent(name)
                var info = stat()
                guard lstat(child.path, &info) == 0 else { throw FileError(path: child.path, errno: errno, operation: "lstat") }
                switch info.st_mode & S_IFMT {
                case S_IFREG: members.append(ArchiveMember(name: prefix + name, file: child))
                case S_IFDIR: try walk(child, prefix: prefix + name + "/")
                case S_IFLNK: throw FileError(path: child.path, message: "is a symbolic link; archives hold regular files only")
                default: throw FileError(path: child.path, message: "is not a regular file or directory")
                }
            }
        }
        try walk(directory, prefix: "")
        return members.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }
}

/// Writes archives that are byte-for-byte reproducible: the same member names and contents give the same
/// archive bytes on every run and machine with the same libarchive, zlib and zstd, whatever the files'
/// timestamps, owners, permissions, the order the members are given in, or the locale.
///
/// What makes it so:
/// - entries are sorted by the bytes of their UTF-8 names; each member's parent directories get their own
///   entries (so extraction tools create them with a fixed mode), placed before their contents;
/// - every entry has mtime ``modificationTime`` (0, the epoch), no atime/ctime, uid and gid 0, empty user
///   and group names, mode 0644 for files and 0755 for directories;
/// - tar is written pax-restricted: a plain ustar header per entry, with a pax extended header only for a
///   name over 100 bytes or not ASCII, or a size of 8 GiB or more (libarchive names those headers
///   `PaxHeader/…` without a process id, and gives them the entry's zero times), so no header carries a
///   time, a user or a host;
/// - gzip has no timestamp and no file name (`gzip:!timestamp`) at level ``gzipLevel``; zstd is at level
///   ``zstdLevel`` with one thread; zip deflates at level ``deflateLevel``, its DOS time is libarchive's
///   floor (1980-01-01 00:00, reached from time 0 in every time zone) and its extended-timestamp field
///   holds mtime 0 only; names are UTF-8 whatever the process locale (see `ArchiveLocale`).
///
/// `SOURCE_DATE_EPOCH` is deliberately not honoured: it would make the archive's bytes, and so the package
/// stage's output hash, depend on the environment; a fixed time meets the same goal without that input.
public enum ArchiveWriter {
    /// Every entry's modification time, in seconds since the epoch.
    public static let modificationTime = 0
    /// gzip (deflate) compression level for `.tarGzip`: zlib's default.
    public static let gzipLevel = 6
    /// zstd compression level for `.tarZstd`: zstd's default.
    public static let zstdLevel = 3
    /// Deflate level for `.zip` entries.
    public static let deflateLevel = 6
    /// Bytes read from a source file at a time.
    public static let chunkSize = 1 << 20

    /// Writes `members` to `archive` atomically: into a temporary file in the same directory, flushed to
    /// disk, then renamed over `archive`. On any failure the temporary file is removed and `archive` is
    /// left as it was. `format` defaults to the one the file name implies (see `ArchiveFormat(fileName:)`).
    ///
    /// Throws `ArchiveError` naming the archive and the member: an invalid or duplicate name, a file that
    /// is also another member's directory, an unreadable source or one that changes size while being read,
    /// or a libarchive or file-system failure.
    public static func write(_ members: [ArchiveMember], to archive: URL, format: ArchiveFormat? = nil) throws {
        try ArchiveLocale.withUTF8 { try writeInUTF8Locale(members, to: archive, format: format) }
    }

    private static func writeInUTF8Locale(_ members: [ArchiveMember], to archive: URL, format: ArchiveFormat?) throws {
        let format = try format ?? ArchiveFormat(fileName: archive.lastPathComponent)
        let plan = try layout(members, archive: archive.path)
        let tmp = archive.deletingLastPathComponent()
            .appendingPathComponent(".\(archive.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fileSystemError(archive: archive.path, path: tmp.path, operation: "create") }
        var renamed = false
        defer { if !renamed { unlink(tmp.path) } }
        var fdOpen = true
        defer { if fdOpen { close(fd) } }

        try withWriteHandle(archive: archive.path) { a in
            try configure(a, format: format, archive: archive.path)
            try check(archive_write_open_fd(a, fd), a, archive: archive.path, operation: "archive_write_open_fd")
            for entry in plan { try write(entry, to: a, archive: archive.path) }
            try check(archive_write_close(a), a, archive: archive.path, operation: "archive_write_close")
        }
        guard fsync(fd) == 0 else { throw fileSystemError(archive: archive.path, path: tmp.path, operation: "fsync") }
        fdOpen = false
        guard close(fd) == 0 else { throw fileSystemError(archive: archive.path, path: tmp.path, operation: "close") }
        guard rename(tmp.path, archive.path) == 0 else {
            throw fileSystemError(archive: archive.path, path: archive.path, operation: "rename into place")
        }
        renamed = true
    }

    /// One entry of the archive in write order: a directory (no member) or a member's file.
    private struct PlannedEntry {
        var name: String
        var member: ArchiveMember?
    }

    /// Validates names, adds parent directories, refuses duplicates and file/directory clashes, sorts.
    private static func layout(_ members: [ArchiveMember], archive: String) throws -> [PlannedEntry] {
        var files: [[UInt8]: ArchiveMember] = [:]
        var directories: [[UInt8]: String] = [:]
        for member in members {
            if let problem = ArchivePath.problem(withMember: member.name) {
                throw ArchiveError(archive: archive, entry: member.name, kind: .invalidMemberName(reason: problem))
            }
            let key = Array(member.name.utf8)
            if files[key] != nil {
                throw ArchiveError(archive: archive, entry: member.name, kind: .conflictingMember(other: member.name))
            }
            files[key] = member
            let parts = member.name.split(separator: "/")
            for depth in 1..<max(parts.count, 1) {
                let dir = parts[..<depth].joined(separator: "/")
                directories[Array(dir.utf8)] = dir
            }
        }
        for (key, dir) in directories where files[key] != nil {
            throw ArchiveError(archive: archive, entry: dir, kind: .conflictingMember(other: dir + "/…"))
        }
        let entries = files.map { (key: $0.key, entry: PlannedEntry(name: $0.value.name, member: $0.value)) }
            + directories.map { (key: $0.key, entry: PlannedEntry(name: $0.value, member: nil)) }
        return entries.sorted { $0.key.lexicographicallyPrecedes($1.key) }.map(\.entry)
    }

    private static func withWriteHandle(archive: String, _ body: (OpaquePointer) throws -> Void) throws {
        guard let a = archive_write_new() else {
            throw ArchiveError(archive: archive, kind: .library(operation: "archive_write_new", message: "out of memory"))
        }
        defer { archive_write_free(a) }
        try body(a)
    }

    private static func configure(_ a: OpaquePointer, format: ArchiveFormat, archive: String) throws {
        let options: String
        switch format {
        case .tarGzip:
            try check(archive_write_set_format_pax_restricted(a), a, archive: archive, operation: "set format pax")
            try check(archive_write_add_filter_gzip(a), a, archive: archive, operation: "add filter gzip")
            options = "gzip:!timestamp,gzip:compression-level=\(gzipLevel)"
        case .tarZstd:
            try check(archive_write_set_format_pax_restricted(a), a, archive: archive, operation: "set format pax")
            try check(archive_write_add_filter_zstd(a), a, archive: archive, operation: "add filter zstd")
            options = "zstd:compression-level=\(zstdLevel)"
        case .zip:
            try check(archive_write_set_format_zip(a), a, archive: archive, operation: "set format zip")
            options = "zip:compression=deflate,zip:compression-level=\(deflateLevel),zip:hdrcharset=UTF-8"
        }
        try check(archive_write_set_options(a, options), a, archive: archive, operation: "set options \(options)")
    }

    private static func write(_ planned: PlannedEntry, to a: OpaquePointer, archive: String) throws {
        guard let entry = archive_entry_new() else {
            throw ArchiveError(archive: archive, entry: planned.name, kind: .library(operation: "archive_entry_new", message: "out of memory"))
        }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname_utf8(entry, planned.name)
        archive_entry_set_mtime(entry, time_t(modificationTime), 0)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        guard let member = planned.member else {
            archive_entry_set_filetype(entry, ArchiveFileType.directory)
            archive_entry_set_perm(entry, 0o755)
            try check(archive_write_header(a, entry), a, archive: archive, entry: planned.name, operation: "archive_write_header")
            return
        }
        archive_entry_set_filetype(entry, ArchiveFileType.regular)
        archive_entry_set_perm(entry, 0o644)
        switch member.source {
        case .data(let data):
            archive_entry_set_size(entry, Int64(data.count))
            try check(archive_write_header(a, entry), a, archive: archive, entry: planned.name, operation: "archive_write_header")
            try data.withUnsafeBytes { try writeData($0, to: a, archive: archive, entry: planned.name) }
        case .file(let url):
            try copyFile(url, entry: entry, name: planned.name, to: a, archive: archive)
        }
        try check(archive_write_finish_entry(a), a, archive: archive, entry: planned.name, operation: "archive_write_finish_entry")
    }

    /// Streams a source file into the current entry, `chunkSize` bytes at a time.
    private static func copyFile(_ url: URL, entry: OpaquePointer, name: String, to a: OpaquePointer, archive: String) throws {
        func unreadable(_ reason: String) -> ArchiveError {
            ArchiveError(archive: archive, entry: name, kind: .unreadableSource(path: url.path, reason: reason))
        }
        let fd = open(url.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw unreadable(String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw unreadable(String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw unreadable("not a regular file") }
        let size = Int64(info.st_size)
        archive_entry_set_size(entry, size)
        try check(archive_write_header(a, entry), a, archive: archive, entry: name, operation: "archive_write_header")
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var done: Int64 = 0
        while true {
            let n = read(fd, buffer.baseAddress, chunkSize)
            if n < 0 {
                if errno == EINTR { continue }
                throw unreadable(String(cString: strerror(errno)))
            }
            if n == 0 { break }
            guard done + Int64(n) <= size else {
                throw ArchiveError(archive: archive, entry: name, kind: .sourceChanged(path: url.path, expected: size, read: done + Int64(n)))
            }
            try writeData(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), to: a, archive: archive, entry: name)
            done += Int64(n)
        }
        guard done == size else {
            throw ArchiveError(archive: archive, entry: name, kind: .sourceChanged(path: url.path, expected: size, read: done))
        }
    }

    private static func writeData(_ bytes: UnsafeRawBufferPointer, to a: OpaquePointer, archive: String, entry: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = archive_write_data(a, bytes.baseAddress! + offset, bytes.count - offset)
            guard n > 0 else {
                throw ArchiveError(archive: archive, entry: entry,
                                   kind: .library(operation: "archive_write_data", message: libarchiveMessage(a)))
            }
            offset += n
        }
    }

    /// Any status but `ARCHIVE_OK` is a failure here: a warning (an unknown option, a name that cannot be
    /// converted) would make the archive differ from what this type promises.
    private static func check(_ status: Int32, _ a: OpaquePointer, archive: String, entry: String? = nil, operation: String) throws {
        guard status == ARCHIVE_OK else {
            throw ArchiveError(archive: archive, entry: entry, kind: .library(operation: operation, message: libarchiveMessage(a)))
        }
    }

    private static func fileSystemError(archive: String, path: String, operation: String) -> ArchiveError {
        ArchiveError(archive: archive, kind: .fileSystem(path: path, operation: operation, reason: String(cString: strerror(errno))))
    }
}

/// libarchive's message for the last failure on `a`.
func libarchiveMessage(_ a: OpaquePointer) -> String {
    archive_error_string(a).map { String(cString: $0) } ?? "unknown libarchive error (errno \(archive_errno(a)))"
}

/// `AE_IF*` file types (`archive_entry.h` defines them as casts, which Swift does not import).
enum ArchiveFileType {
    static let regular: mode_t = 0o100000
    static let directory: mode_t = 0o040000
    static let symbolicLink: mode_t = 0o120000
    static let characterDevice: mode_t = 0o020000
    static let blockDevice: mode_t = 0o060000
    static let fifo: mode_t = 0o010000
    static let socket: mode_t = 0o140000
    static let mask: mode_t = 0o170000
}
