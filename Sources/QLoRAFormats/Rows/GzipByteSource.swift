// Decompressing byte source over zlib's gz* file API, strict about truncation and corruption.

import CZlib

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

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
        var fd: Int32
        repeat {
            fd = open(path, O_RDONLY | O_CLOEXEC)
        } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw ReaderError(path: path, kind: .cannotOpen(reason: systemMessage(errno))) }

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
