import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes that never leave a half-written file under the final name: data goes to a temporary sibling,
/// is flushed to disk, then renamed over the destination (rename is atomic on POSIX file systems).
public enum AtomicFile {
    public static func write(_ data: Data, to url: URL) throws {
        let tmp = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        let fd = open(tmp.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: tmp.path, errno: errno, operation: "create") }
        var ok = false
        defer {
            if !ok { unlink(tmp.path) }
        }
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    let e = errno
                    close(fd)
                    throw FileError(path: tmp.path, errno: e, operation: "write")
                }
                offset += n
            }
        }
        fsync(fd)
        close(fd)
        guard rename(tmp.path, url.path) == 0 else { throw FileError(path: url.path, errno: errno, operation: "rename") }
        ok = true
    }

    public static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }
}

/// Buffered sequential writer for large outputs (JSONL shards); closes with fsync.
public final class BufferedFileWriter {
    public let path: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let capacity: Int
    public private(set) var bytesWritten: Int64 = 0

    public init(path: String, capacity: Int = 1 << 20) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: path, errno: errno, operation: "create") }
        self.path = path
        self.capacity = capacity
        buffer.reserveCapacity(capacity)
    }

    deinit { if fd >= 0 { _ = Glibc.close(fd) } }

    public func write(_ bytes: [UInt8]) throws {
        buffer.append(contentsOf: bytes)
        if buffer.count >= capacity { try flush() }
    }

    /// Appends through a closure that writes straight into the buffer (no intermediate array).
    public func append(_ body: (inout [UInt8]) -> Void) throws {
        body(&buffer)
        if buffer.count >= capacity { try flush() }
    }

    public func flush() throws {
        var offset = 0
        try buffer.withUnsafeBytes { raw in
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FileError(path: path, errno: errno, operation: "write")
                }
                offset += n
            }
        }
        bytesWritten += Int64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Flushes, syncs to disk and closes.
    public func close() throws {
        try flush()
        guard fsync(fd) == 0 else { throw FileError(path: path, errno: errno, operation: "fsync") }
        _ = Glibc.close(fd)
        fd = -1
    }
}
