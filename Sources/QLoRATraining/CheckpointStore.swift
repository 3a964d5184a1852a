import Foundation
import QLoRAFormats
#if canImport(Glibc)
import Glibc
#endif

/// Training checkpoints on disk: one directory per saved step, written atomically, verified on resume.
///
/// Layout: `<directory>/step-00000050/` holding the caller's files plus `checkpoint.json` (written last: the
/// SHA-256 and size of every file, and the step). A checkpoint is written into a hidden temporary sibling,
/// every file synced, then the directory renamed into place and the parent synced, so a crash at any point
/// leaves either the previous set of checkpoints or the new complete one. After a save, all but the newest
/// `keep` checkpoints are removed. `latest()` returns the newest checkpoint whose files all verify, and
/// names every newer one it had to skip and why.
public struct CheckpointStore: Sendable {
    public let directory: URL
    public let keep: Int
    static let manifestName = "checkpoint.json"
    static let prefix = "step-"

    public init(directory: URL, keep: Int) {
        self.directory = directory
        self.keep = max(1, keep)
    }

    /// A checkpoint found on disk.
    public struct Entry: Sendable, Equatable {
        public var step: Int
        public var url: URL
    }

    /// A checkpoint `latest()` passed over.
    public struct Skipped: Sendable, Equatable {
        public var url: URL
        public var reason: String
    }

    static func name(step: Int) -> String { prefix + String(format: "%08ld", step) }

    /// Writes `files` (name → bytes) as the checkpoint of `step`; returns its directory.
    @discardableResult
    public func save(step: Int, files: [String: [UInt8]]) throws -> URL {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let final = directory.appendingPathComponent(Self.name(step: step))
        let tmp = directory.appendingPathComponent(".tmp-\(Self.name(step: step))-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: false)
        var ok = false
        defer { if !ok { try? FileManager.default.removeItem(at: tmp) } }
        var entries: [(String, JSONValue)] = []
        for name in files.keys.sorted() {
            let bytes = files[name]!
            try Self.writeSynced(bytes, to: tmp.appendingPathComponent(name))
            entries.append((name, .object(JSONObject([("sha256", .string(FileDigest.of(data: Data(bytes)).sha256)),
                                                      ("size", .number(Double(bytes.count)))]))))
        }
        let manifest = JSONValue.object(JSONObject([("format", .number(1)), ("step", .number(Double(step))),
                                                    ("files", .object(JSONObject(entries)))]))
        try Self.writeSynced(JSONWriter.encode(manifest) + [UInt8(ascii: "\n")], to: tmp.appendingPathComponent(Self.manifestName))
        Self.syncDirectory(tmp)
        if FileManager.default.fileExists(atPath: final.path) { try FileManager.default.removeItem(at: final) }
        guard rename(tmp.path, final.path) == 0 else { throw FileError(path: final.path, errno: errno, operation: "rename") }
        ok = true
        Self.syncDirectory(directory)
        prune()
        return final
    }

    /// Every checkpoint directory, newest first (by step).
    public func all() -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.compactMap { name -> Entry? in
            guard name.hasPrefix(Self.prefix), let step = Int(name.dropFirst(Self.prefix.count)) else { return nil }
            return Entry(step: step, url: directory.appendingPathComponent(name))
        }.sorted { $0.step > $1.step }
    }

    /// The newest checkpoint whose manifest and files verify, and the newer ones skipped (with reasons).
    public func latest() -> (entry: Entry?, skipped: [Skipped]) {
        var skipped: [Skipped] = []
        for entry in all() {
            if let problem = verify(entry.url) {
                skipped.append(Skipped(url: entry.url, reason: problem))
            } else {
                return (entry, skipped)
            }
        }
        return (nil, skipped)
    }

    /// nil when every file listed in the manifest is present with its recorded size and SHA-256.
    public func verify(_ url: URL) -> String? {
        let manifestURL = url.appendingPathComponent(Self.manifestName)
        guard let data = FileManager.default.contents(atPath: manifestURL.path) else { return "\(Self.manifestName) is missing" }
        guard let manifest = try? JSONParser.parse(Array(data)).objectValue, let files = manifest["files"]?.objectValue else {
            return "\(Self.manifestName) is not valid JSON"
        }
        for (name, value) in files.pairs {
            guard let sha = value.objectValue?["sha256"]?.stringValue, let size = value.objectValue?["size"]?.numberValue else {
                return "\(Self.manifestName): bad entry for \(name)"
            }
            guard let bytes = FileManager.default.contents(atPath: url.appendingPathComponent(name).path) else { return "\(name) is missing" }
            if bytes.count != Int(size) { return "\(name) has \(bytes.count) bytes, expected \(Int(size))" }
            if FileDigest.of(data: bytes).sha256 != sha { return "\(name) does not match its SHA-256" }
        }
        return nil
    }

    /// Removes all but the newest `keep` checkpoints and leftover temporary directories.
    public func prune() {
        for entry in all().dropFirst(keep) { try? FileManager.default.removeItem(at: entry.url) }
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix(".tmp-") && !name.contains("-\(getpid())-") {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
    }

    static func writeSynced(_ bytes: [UInt8], to url: URL) throws {
        let fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: url.path, errno: errno, operation: "create") }
        defer { close(fd) }
        var done = 0
        try bytes.withUnsafeBytes { raw in
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileError(path: url.path, errno: errno, operation: "write")
                }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw FileError(path: url.path, errno: errno, operation: "fsync") }
    }

    static func syncDirectory(_ url: URL) {
        let fd = open(url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }
}
