import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Inputs (datasets, tokenizers, tasks, models) must be regular files: opening a FIFO blocks until a
/// writer appears, and a device such as `/dev/zero` never ends. Every reader of such an input opens it
/// through here: `O_NONBLOCK` so that a FIFO cannot hang the open, then `fstat` on the descriptor
/// (symlinks are followed; what they point at must be a regular file).
public enum RegularFile {
    /// Why a path could not be opened as a regular file.
    public enum Failure: Error, Equatable, Sendable, CustomStringConvertible {
        /// `open` or `fstat` failed; the system's message.
        case system(String)
        /// The path names something else; what it is ("a FIFO", "a character device", ...).
        case notRegular(String)

        public var description: String {
            switch self {
            case .system(let reason): return reason
            case .notRegular(let what): return "not a regular file (\(what))"
            }
        }
    }

    /// What a file mode describes, for messages: "a directory", "a FIFO", "a character device", ...
    static func describe(mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFSOCK: return "a socket"
        default: return "not a file"
        }
    }

    /// What `path` is when it exists but is not a regular file (after symlinks): "a FIFO", "a character
    /// device", ...; nil for a regular file or a missing path (the caller reports that its own way).
    /// `allowDirectory` accepts directories too (a model or tokenizer may be a directory).
    public static func irregularKind(atPath path: String, allowDirectory: Bool = false) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let type = info.st_mode & S_IFMT
        if type == S_IFREG || (allowDirectory && type == S_IFDIR) { return nil }
        return describe(mode: info.st_mode)
    }

    /// Opens `path` read-only (close-on-exec, blocking reads), failing without blocking unless it is
    /// a regular file. The caller closes the descriptor.
    public static func openReadOnly(_ path: String) throws(Failure) -> Int32 {
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw .system(String(cString: strerror(errno))) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw .system(reason)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw .notRegular(describe(mode: info.st_mode))
        }
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) }
        return fd
    }

    /// The whole content of the regular file at `path`.
    public static func read(_ path: String) throws(Failure) -> [UInt8] {
        let fd = try openReadOnly(path)
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                out.append(contentsOf: chunk[0..<n])
            } else if n == 0 {
                return out
            } else if errno != EINTR {
                throw .system(String(cString: strerror(errno)))
            }
        }
    }
}
