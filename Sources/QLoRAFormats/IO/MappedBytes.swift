import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Owns the bytes a file reader parses: a read-only private mapping of a regular file (unmapped in
/// deinit) or a heap copy (for readers fed from memory). Shared by the GGUF and safetensors readers.
final class MappedBytes: @unchecked Sendable {
    enum Failure: Error {
        case cannotOpen(String)
        case cannotMap(String)
    }

    let base: UnsafeRawPointer
    let count: Int
    private let mapped: Bool

    /// Maps the regular file at `path`. An empty file gets a zero-length heap buffer (mmap rejects length 0).
    init(mapping path: String) throws(Failure) {
        let fd: Int32
        do { fd = try RegularFile.openReadOnly(path) } catch { throw .cannotOpen(error.description) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .cannotOpen(Self.systemMessage(errno)) }
        guard let size = Int(exactly: info.st_size), size >= 0 else { throw .cannotOpen("bad file size \(info.st_size)") }
        if size == 0 {
            base = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 16))
            count = 0
            mapped = false
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw .cannotMap(Self.systemMessage(errno))
        }
        base = UnsafeRawPointer(p)
        count = size
        mapped = true
    }

    /// Copies `bytes` into a private heap buffer.
    init(copying bytes: [UInt8]) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { source in
            if let src = source.baseAddress { p.copyMemory(from: src, byteCount: source.count) }
        }
        base = UnsafeRawPointer(p)
        count = bytes.count
        mapped = false
    }

    /// Drops the resident pages wholly inside `range` (a read-only file mapping re-reads them on the next
    /// access), so streaming over a large file does not grow the resident set. No-op for heap copies.
    func releasePages(_ range: Range<Int>) {
        guard mapped, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = min(range.upperBound, count) / page * page
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    deinit {
        if mapped {
            munmap(UnsafeMutableRawPointer(mutating: base), count)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    private static func systemMessage(_ code: Int32) -> String { String(cString: strerror(code)) }
}
