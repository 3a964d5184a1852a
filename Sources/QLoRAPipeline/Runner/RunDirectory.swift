import Foundation
import QLoRAFormats
#if canImport(Glibc)
import Glibc
#endif

/// The on-disk layout of one run:
///
///     <run>/spec.yaml            the spec as run (normalized)
///     <run>/lock                 flock: one `qlora run` at a time; holds the holder's pid and command
///     <run>/events.jsonl         stage starts, finishes, failures, skips
///     <run>/<stage>/manifest.json + artifacts
///     <run>/<stage>.tmp-<id>/    a stage being written (removed or renamed into place)
public struct RunDirectory: Sendable {
    public let url: URL

    public init(url: URL) { self.url = url }

    public func stageURL(_ stage: StageID) -> URL { url.appendingPathComponent(stage.rawValue) }
    public func manifestURL(_ stage: StageID) -> URL { stageURL(stage).appendingPathComponent("manifest.json") }
    public var eventsURL: URL { url.appendingPathComponent("events.jsonl") }
    public var lockURL: URL { url.appendingPathComponent("lock") }

    public func manifest(_ stage: StageID) -> StageManifest? { StageManifest.read(from: manifestURL(stage)) }

    public func create() throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw FileError(path: url.path, message: "cannot create the run directory: \(error.localizedDescription)")
        }
    }

    /// Takes the run's exclusive lock or throws `RunLockedError` naming the current holder. `lock` and
    /// `events.jsonl` are opened with `O_NOFOLLOW`: either being a symbolic link (which would make a run
    /// truncate or append to a file outside its directory) is an error naming it.
    public func lock(command: String) throws -> RunLock {
        let lock = try RunLock(path: lockURL.path, command: command)
        var info = stat()
        if lstat(eventsURL.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
            throw symbolicLinkError(eventsURL.path)
        }
        return lock
    }

    /// A fresh temporary directory for `stage`, next to its final location (same file system, so the
    /// final rename is atomic).
    public func makeTemporaryStageDirectory(_ stage: StageID) throws -> URL {
        let tmp = url.appendingPathComponent("\(stage.rawValue).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: false)
        return tmp
    }

    /// Removes leftovers of interrupted runs (`*.tmp-*`). Only called while holding the lock, so
    /// nothing else can be writing them.
    public func removeStaleTemporaries() throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        var removed: [String] = []
        for name in names where name.contains(".tmp-") {
            try FileManager.default.removeItem(at: url.appendingPathComponent(name))
            removed.append(name)
        }
        return removed.sorted()
    }

    /// Moves a finished temporary stage directory into place, replacing the previous one. A crash between
    /// the two renames leaves no stage directory (the stage reruns) and a `.tmp-` leftover (cleaned up).
    public func commit(_ stage: StageID, from tmp: URL) throws {
        let final = stageURL(stage)
        let fm = FileManager.default
        if fm.fileExists(atPath: final.path) {
            let old = url.appendingPathComponent("\(stage.rawValue).tmp-old-\(getpid())")
            guard rename(final.path, old.path) == 0 else { throw FileError(path: final.path, errno: errno, operation: "rename") }
            guard rename(tmp.path, final.path) == 0 else { throw FileError(path: tmp.path, errno: errno, operation: "rename") }
            try fm.removeItem(at: old)
        } else {
            guard rename(tmp.path, final.path) == 0 else { throw FileError(path: tmp.path, errno: errno, operation: "rename") }
        }
        syncDirectory(url.path)
    }

    /// Appends one JSON object per line to events.jsonl.
    public func appendEvent(_ fields: [String: EventValue]) {
        var line = "{\"time\":\"\(Date().iso8601)\""
        for key in fields.keys.sorted() {
            line += ",\(jsonString(key)):\(fields[key]!.json)"
        }
        line += "}\n"
        // O_NOFOLLOW: never append through a symbolic link (`lock(command:)` reports one).
        let fd = open(eventsURL.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { return }
        _ = line.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
}

/// A value in an events.jsonl record.
public enum EventValue: Sendable {
    case string(String)
    case number(Double)
    case int(Int)

    var json: String {
        switch self {
        case .string(let s): return jsonString(s)
        case .number(let d): return d.isFinite ? "\(d)" : "null"
        case .int(let i): return "\(i)"
        }
    }
}

func jsonString(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

func syncDirectory(_ path: String) {
    let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd >= 0 {
        fsync(fd)
        close(fd)
    }
}

/// A run-directory file that is a symbolic link (refused rather than followed out of the run directory).
func symbolicLinkError(_ path: String) -> FileError {
    FileError(path: path, message: "is a symbolic link; a run never follows one out of its run directory (remove it)")
}

/// Another process holds the run directory.
public struct RunLockedError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var holder: String
    public var description: String {
        "run directory is in use: \(path) is locked by \(holder.isEmpty ? "another process" : holder); wait for it to finish or stop it"
    }
}

/// An exclusive `flock` on `<run>/lock`, released when the process exits (even on kill -9).
public final class RunLock: @unchecked Sendable {
    private var fd: Int32

    init(path: String, command: String) throws {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else {
            if errno == ELOOP { throw symbolicLinkError(path) }
            throw FileError(path: path, errno: errno, operation: "open lock")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let e = errno
            var holder = ""
            if e == EWOULDBLOCK, let text = try? String(contentsOfFile: path, encoding: .utf8) {
                holder = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            close(fd)
            fd = -1
            if e == EWOULDBLOCK { throw RunLockedError(path: path, holder: holder) }
            throw FileError(path: path, errno: e, operation: "flock")
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, 255)
        let info = "pid \(getpid()) on \(String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) since \(Date().iso8601) (\(command))\n"
        ftruncate(fd, 0)
        _ = info.withCString { pwrite(fd, $0, strlen($0), 0) }
    }

    public func release() {
        guard fd >= 0 else { return }
        ftruncate(fd, 0)
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { release() }
}
