import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What `ArchiveReader.extract` created.
public struct ExtractionSummary: Sendable, Equatable {
    /// Regular files written.
    public var files: Int
    /// Directory entries in the archive (implied parents are created too but not counted).
    public var directories: Int
    /// Bytes written over all files.
    public var bytes: Int64

    public init(files: Int, directories: Int, bytes: Int64) {
        self.files = files
        self.directories = directories
        self.bytes = bytes
    }
}

extension ArchiveReader {
    /// Unpacks `archive` into the directory `target`, all or nothing.
    ///
    /// The archive is extracted into a fresh temporary directory (mode 0700) beside `target`, in its
    /// parent, and renamed to `target` only when every entry has been written and flushed. On any refusal
    /// or failure the temporary directory is removed, so `target` never appears half-filled and nothing is
    /// left behind. Nothing is written outside that temporary directory: every name is checked before use,
    /// and links are never created, so no path can be redirected.
    ///
    /// Refused, with an `ArchiveError` naming the archive and the entry: absolute names, `..` components,
    /// backslashes, names that are not UTF-8; **all** symbolic and hard links (an adapter directory has
    /// none, and refusing them is simpler to trust than resolving them); character and block devices,
    /// FIFOs, sockets; duplicate names and file/directory clashes; and anything past `limits` (bytes per
    /// entry, total bytes, compression ratio, entry count), counted on the decompressed stream.
    ///
    /// Files are created with mode 0644 and directories with 0755 (less the umask; `target` itself 0755), whatever the archive
    /// says: no set-id, executable or world-writable bits, and no owners or times are restored.
    ///
    /// `target` must not exist, or be an empty directory (which is replaced); its parent must exist.
    @discardableResult
    public static func extract(archive: URL, to target: URL, limits: ArchiveLimits = .adapter) throws -> ExtractionSummary {
        let target = target.standardizedFileURL
        let parent = target.deletingLastPathComponent()
        var info = stat()
        guard lstat(parent.path, &info) == 0, info.st_mode & S_IFMT == S_IFDIR else {
            throw ArchiveError(archive: archive.path, kind: .targetParentMissing(path: parent.path))
        }
        if lstat(target.path, &info) == 0 {
            let empty = info.st_mode & S_IFMT == S_IFDIR
                && (try? FileManager.default.contentsOfDirectory(atPath: target.path).isEmpty) == true
            guard empty else { throw ArchiveError(archive: archive.path, kind: .targetExists(path: target.path)) }
        }
        let reader = try ArchiveReader(archive: archive, limits: limits)
        let tmp = parent.appendingPathComponent(".\(target.lastPathComponent).unpack-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard mkdir(tmp.path, 0o700) == 0 else {
            throw ArchiveError(archive: reader.path, kind: .fileSystem(path: tmp.path, operation: "mkdir", reason: String(cString: strerror(errno))))
        }
        var complete = false
        defer { if !complete { try? FileManager.default.removeItem(at: tmp) } }

        var summary = ExtractionSummary(files: 0, directories: 0, bytes: 0)
        var entryName = ""
        func failure(_ path: String, _ operation: String) -> ArchiveError {
            ArchiveError(archive: reader.path, entry: entryName,
                         kind: .fileSystem(path: path, operation: operation, reason: String(cString: strerror(errno))))
        }
        /// mkdir -p below `tmp`; every component was validated and no links exist under `tmp`.
        func makeDirectories(_ parts: ArraySlice<Substring>) throws {
            var path = tmp.path
            for part in parts {
                path += "/" + part
                if mkdir(path, 0o755) != 0 && errno != EEXIST { throw failure(path, "mkdir") }
            }
        }
        try reader.walkSafely(directory: { entry, parts in
            entryName = entry.name
            try makeDirectories(parts[...])
            summary.directories += 1
        }, file: { entry, parts in
            entryName = entry.name
            try makeDirectories(parts.dropLast())
            let path = tmp.path + "/" + parts.joined(separator: "/")
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw failure(path, "create") }
            defer { close(fd) }
            summary.bytes += try reader.readData { chunk in
                var offset = 0
                while offset < chunk.count {
                    let n = write(fd, chunk.baseAddress! + offset, chunk.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw failure(path, "write")
                    }
                    offset += n
                }
            }
            guard fsync(fd) == 0 else { throw failure(path, "fsync") }
            summary.files += 1
        })
        guard chmod(tmp.path, 0o755) == 0 else { throw failure(tmp.path, "chmod") }
        guard rename(tmp.path, target.path) == 0 else {
            if errno == ENOTEMPTY || errno == EEXIST || errno == ENOTDIR {
                throw ArchiveError(archive: reader.path, kind: .targetExists(path: target.path))
            }
            throw ArchiveError(archive: reader.path, kind: .fileSystem(path: target.path, operation: "rename into place",
                                                                         reason: String(cString: strerror(errno))))
        }
        complete = true
        return summary
    }
}
