// Pull-based byte sources for the streaming readers: plain files through POSIX read(2), gzip files
// through zlib (GzipByteSource.swift), chosen by file name.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A sequential stream of bytes.
public protocol ByteSource {
    /// Fills a prefix of `buffer` (which is non-empty) and returns its length; 0 means end of data.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Reads a file with POSIX `open`/`read`. Not thread-safe: use one source from one task at a time.
/// The descriptor is closed when the source is deallocated.
public final class FileByteSource: ByteSource {
    /// The path as given.
    public let path: String
    private let fd: Int32

    /// Opens `path` for reading; throws `ReaderError.cannotOpen` with the system's reason.
    public init(path: String) throws(ReaderError) {
        self.path = path
        var fd: Int32
        repeat {
            fd = open(path, O_RDONLY | O_CLOEXEC)
        } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw ReaderError(path: path, kind: .cannotOpen(reason: systemMessage(errno))) }
        self.fd = fd
    }

    deinit { close(fd) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        while true {
            #if canImport(Darwin)
            let n = Darwin.read(fd, base, buffer.count)
            #elseif canImport(Musl)
            let n = Musl.read(fd, base, buffer.count)
            #else
            let n = Glibc.read(fd, base, buffer.count)
            #endif
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw ReaderError(path: path, kind: .readFailed(reason: systemMessage(errno)))
        }
    }
}

/// Opens `path` as a `GzipByteSource` when it ends in `.gz`, else as a `FileByteSource`.
public func openByteSource(path: String) throws(ReaderError) -> any ByteSource {
    if path.hasSuffix(".gz") { return try GzipByteSource(path: path) }
    return try FileByteSource(path: path)
}

/// Wraps bytes already in memory (tests, small inputs); hands them out in order.
public struct MemoryByteSource: ByteSource, Sendable {
    private let bytes: [UInt8]
    private var position = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public init(_ text: String) { self.bytes = Array(text.utf8) }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let n = min(buffer.count, bytes.count - position)
        guard n > 0 else { return 0 }
        bytes.withUnsafeBytes { source in
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[position..<(position + n)]))
        }
        position += n
        return n
    }
}

/// The system's text for an errno value.
func systemMessage(_ code: Int32) -> String {
    String(cString: strerror(code))
}
