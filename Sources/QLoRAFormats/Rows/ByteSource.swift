// Pull-based byte sources for the streaming readers (plain files through POSIX read(2), gzip files
// through zlib, bytes in memory) and ReaderError, the error type of the sources and the row readers.

import CZlib

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
    /// How far into the file on disk the source has read, when that differs from the bytes it delivered (the
    /// compressed offset of a gzip file); nil when they are the same. Progress bars use it: a file's size on disk
    /// is known up front, its decompressed size is not.
    var fileOffset: Int64? { get }
}

extension ByteSource {
    public var fileOffset: Int64? { nil }
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
        self.fd = try openReadOnly(path)
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

/// Opens the regular file `path` read-only (`RegularFile.openReadOnly`: a FIFO or a device is refused
/// without blocking); failure is `cannotOpen` with the reason.
private func openReadOnly(_ path: String) throws(ReaderError) -> Int32 {
    do {
        return try RegularFile.openReadOnly(path)
    } catch {
        throw ReaderError(path: path, kind: .cannotOpen(reason: error.description))
    }
}

/// Reads the decompressed bytes of a gzip file (concatenated members included).
///
/// Stricter than plain `gzread`: a file that does not start with the gzip magic bytes throws
/// `notGzip` (zlib would pass it through), and data that ends before a member's trailer throws
/// `truncatedGzip` (zlib only records that in `gzerror` and then reports end of file). Bad deflate
/// data or a CRC/length mismatch throws `corruptGzip` with zlib's message. Not thread-safe.
public final class GzipByteSource: ByteSource {
    /// The path as given.
    public let path: String
    private let file: gzFile

    /// Size of zlib's internal input buffer; larger than its 8 KiB default to cut system calls.
    static let zlibBufferSize: UInt32 = 256 * 1024

    /// Opens `path` and checks the gzip magic bytes.
    public init(path: String) throws(ReaderError) {
        self.path = path
        let fd = try openReadOnly(path)

        var magic: (UInt8, UInt8) = (0, 0)
        let got = withUnsafeMutableBytes(of: &magic) { pread(fd, $0.baseAddress, 2, 0) }
        if got < 0 {
            let reason = systemMessage(errno)
            close(fd)
            throw ReaderError(path: path, kind: .readFailed(reason: reason))
        }
        if got < 2 {
            close(fd)
            // An empty or one-byte file cannot hold a gzip header: it was cut short.
            if got == 0 || magic.0 == 0x1F { throw ReaderError(path: path, kind: .truncatedGzip) }
            throw ReaderError(path: path, kind: .notGzip)
        }
        guard magic == (0x1F, 0x8B) else {
            close(fd)
            throw ReaderError(path: path, kind: .notGzip)
        }
        guard let file = gzdopen(fd, "rb") else {
            close(fd)
            throw ReaderError(path: path, kind: .cannotOpen(reason: "zlib could not allocate its state"))
        }
        gzbuffer(file, Self.zlibBufferSize)
        self.file = file
    }

    deinit { gzclose(file) }

    public var fileOffset: Int64? { Int64(gzoffset(file)) }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return 0 }
        let request = UInt32(min(buffer.count, Int(Int32.max)))
        let n = gzread(file, base, request)
        if n > 0 { return Int(n) }
        // 0 is either a clean end of file or a truncated stream (Z_BUF_ERROR); -1 is an error.
        var code: Int32 = Z_OK
        let rawMessage = gzerror(file, &code)
        if code == Z_OK && n == 0 { return 0 }
        throw ReaderError(path: path, kind: Self.kind(code: code, message: rawMessage.map { String(cString: $0) }))
    }

    /// Maps a zlib error code and its `gzerror` text ("<fd:N>: reason") to a ReaderError kind.
    static func kind(code: Int32, message: String?) -> ReaderError.Kind {
        var reason = message ?? "zlib error \(code)"
        if reason.hasPrefix("<fd:"), let colon = reason.firstRange(of: ": ") {
            reason = String(reason[colon.upperBound...])
        }
        switch code {
        case Z_BUF_ERROR: return .truncatedGzip
        case Z_ERRNO: return .readFailed(reason: reason)
        default: return .corruptGzip(reason: reason)
        }
    }
}

/// A failure opening, reading or scanning a data file. Every error carries the path; syntax errors
/// also carry the 1-based line. `description` reads "path:line: message" or "path: message".
public struct ReaderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Equatable, Sendable {
        /// `open` failed; `reason` is the system's message (strerror), e.g. "No such file or directory".
        case cannotOpen(reason: String)
        /// `read` failed; `reason` is the system's message.
        case readFailed(reason: String)
        /// A `.gz` file that does not start with the gzip magic bytes.
        case notGzip
        /// gzip data that fails to inflate or fails its CRC/length check; `reason` is zlib's message.
        case corruptGzip(reason: String)
        /// gzip data that ends before its end-of-stream trailer.
        case truncatedGzip
        /// A line, record or array element longer than the configured limit (bytes).
        case tooLong(limit: Int)
        /// The first non-whitespace byte of a JSON array file is not `[` (nil: the file is empty).
        case notAnArray(found: UInt8?)
        /// The file ended before the top-level array's closing `]`.
        case unterminatedArray
        /// The file ended inside a string that starts on the reported line.
        case unterminatedString
        /// A byte that does not fit the array syntax, e.g. a missing comma; `expected` describes what fits.
        case unexpectedCharacter(UInt8, expected: String)
        /// A comma directly before the closing `]`.
        case trailingComma
        /// Non-whitespace after the top-level array's closing `]`.
        case trailingCharacters(UInt8)
        /// The file ended inside a quoted CSV field that starts on the reported line.
        case unterminatedQuotedField
        /// A `"` inside a CSV field that did not start with a quote.
        case quoteInUnquotedField
        /// Something other than `,` or a line end after a quoted CSV field's closing quote.
        case characterAfterClosingQuote(UInt8)
        /// A record that is not well-formed UTF-8.
        case invalidUTF8
        /// A record holding a NUL byte (text never does; JSON rejects it unescaped too).
        case nulByte
    }

    /// The file the error is about, as given by the caller.
    public let path: String
    /// The 1-based line the error is about, nil for errors about the file as a whole.
    public let line: Int?
    public let kind: Kind

    public init(path: String, line: Int? = nil, kind: Kind) {
        self.path = path
        self.line = line
        self.kind = kind
    }

    /// The message without location.
    public var message: String {
        switch kind {
        case .cannotOpen(let reason): return "cannot open: \(reason)"
        case .readFailed(let reason): return "read failed: \(reason)"
        case .notGzip: return "not gzip data (wrong magic bytes)"
        case .corruptGzip(let reason): return "corrupt gzip data: \(reason)"
        case .truncatedGzip: return "truncated gzip data (unexpected end of file)"
        case .tooLong(let limit): return "a single line, record or array element exceeds \(limit) bytes"
        case .notAnArray(let found):
            return "top-level value is not an array (found \(found.map(describeByte) ?? "end of file"))"
        case .unterminatedArray: return "end of file inside the top-level array"
        case .unterminatedString: return "unterminated string"
        case .unexpectedCharacter(let byte, let expected): return "unexpected \(describeByte(byte)), expected \(expected)"
        case .trailingComma: return "trailing comma before ']'"
        case .trailingCharacters(let byte): return "unexpected \(describeByte(byte)) after the top-level array"
        case .unterminatedQuotedField: return "unterminated quoted field"
        case .quoteInUnquotedField: return "'\"' inside an unquoted field"
        case .characterAfterClosingQuote(let byte): return "unexpected \(describeByte(byte)) after a closing quote"
        case .invalidUTF8: return "invalid UTF-8"
        case .nulByte: return "NUL byte in a field"
        }
    }

    public var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }
}
