import Foundation

/// Adapter packages as archives: written reproducibly from a staged directory, verified without trusting
/// anything in them, and opened (safely unpacked to a scratch directory) for `--adapter ARCHIVE`.
public enum AdapterPackage {
    /// Writes `members` (relative names of regular files under `directory`) into `archive`, the format
    /// chosen by the archive's extension; reproducible and atomic (``ArchiveWriter``).
    public static func write(directory: URL, members: [String], to archive: URL) throws {
        try ArchiveWriter.write(members.map { ArchiveMember(name: $0, file: directory.appendingPathComponent($0)) },
                                to: archive, format: try ArchiveFormat(fileName: archive.lastPathComponent))
    }

    /// Unpacks `archive` safely (limits, no links or paths leaving the scratch directory) and verifies the
    /// result (``AdapterVerifier``); errors name the archive and the member.
    public static func verify(archive: URL, limits: ArchiveLimits = .adapter) throws -> AdapterVerifier.Report {
        let opened = try open(archive: archive, limits: limits)
        defer { opened.close() }
        return try AdapterVerifier.verify(directory: opened.directory, source: archive.lastPathComponent)
    }

    /// An adapter directory: the given one, or an archive unpacked into a scratch directory (removed by `close`).
    public struct Opened: Sendable {
        public let directory: URL
        let scratch: URL?
        public func close() {
            if let scratch { try? FileManager.default.removeItem(at: scratch) }
        }
    }

    /// `path` as an adapter directory: a directory is used in place; an archive (`.tar.gz`, `.tar.zst`, `.zip`)
    /// is unpacked safely into a fresh scratch directory.
    public static func open(path: String, limits: ArchiveLimits = .adapter) throws -> Opened {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw FileError(path: path, message: "no such adapter file or directory")
        }
        if isDirectory.boolValue { return Opened(directory: URL(fileURLWithPath: path), scratch: nil) }
        return try open(archive: URL(fileURLWithPath: path), limits: limits)
    }

    static func open(archive: URL, limits: ArchiveLimits) throws -> Opened {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qlora-adapter-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let target = scratch.appendingPathComponent("adapter")
        do { _ = try ArchiveReader.extract(archive: archive, to: target, limits: limits) } catch {
            try? FileManager.default.removeItem(at: scratch)
            throw error
        }
        return Opened(directory: target, scratch: scratch)
    }
}
