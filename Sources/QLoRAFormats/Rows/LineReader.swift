// Streaming line splitter for JSONL and other line-oriented files, and InputBuffer, the growable
// read-ahead window it shares with JSONArrayReader and CSVReader.

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Splits a byte stream into lines without copying them.
///
/// Lines end at `\n`; a `\r` directly before the `\n` is dropped too. A final line without `\n` is
/// delivered with `terminated == false` (its bytes kept as they are); an empty segment after the last
/// `\n` is not a line. A UTF-8 byte order mark at the very start is skipped. Lines are numbered from 1
/// and may be longer than the buffer, which grows as needed up to `maxLineLength`. Bytes are not
/// validated: that is the caller's job (e.g. `JSONParser`).
///
/// `forEachLine` is non-mutating so the callback may read `bytesRead` for progress. Calling it again
/// after it returned (or threw) continues after the last delivered line.
public struct LineReader {
    /// Default read-ahead buffer size: 1 MiB.
    public static let defaultBufferSize = 1 << 20
    /// Default longest accepted line: 1 GiB.
    public static let defaultMaxLineLength = 1 << 30

    private let input: InputBuffer
    private let state = State()

    private final class State {
        var position = 0
        var lineNumber = 0
    }

    /// Reads lines from `source`; `path` names the file in errors.
    public init(source: any ByteSource, path: String, bufferSize: Int = LineReader.defaultBufferSize,
                maxLineLength: Int = LineReader.defaultMaxLineLength) {
        input = InputBuffer(source: source, path: path, capacity: bufferSize, maxRetained: maxLineLength)
    }

    /// Opens `path` with `openByteSource` (gzip for `.gz`) and reads its lines.
    public init(path: String, bufferSize: Int = LineReader.defaultBufferSize,
                maxLineLength: Int = LineReader.defaultMaxLineLength) throws(ReaderError) {
        self.init(source: try openByteSource(path: path), path: path, bufferSize: bufferSize,
                  maxLineLength: maxLineLength)
    }

    /// The file's path as given.
    public var path: String { input.path }

    /// Bytes taken from the source so far (decompressed bytes for gzip), for progress reports.
    public var bytesRead: Int { input.bytesRead }

    /// How far into the file on disk reading has got (compressed bytes for gzip), for progress against its size.
    public var fileBytesRead: Int { input.fileOffset }

    /// The number of the last line delivered (0 before the first).
    public var lineNumber: Int { state.lineNumber }

    /// Calls `body(line, lineNumber, terminated)` for each line in order. `line` is valid only during
    /// the call. Errors from `body` stop reading and propagate unchanged; so do the source's, except
    /// that a `ReaderError` (truncated gzip, say) gains the number of the line being read. A line
    /// longer than `maxLineLength` throws `ReaderError.tooLong`.
    ///
    /// With `tooLong`, a line longer than `maxLineLength` is not an error: its bytes are skipped as they stream past
    /// (memory stays bounded by the limit), `tooLong(lineNumber, length)` is called in its place, and reading goes on
    /// with the next line (a dataset rejects the row instead of failing, or holding gigabytes for one line).
    public func forEachLine(
        tooLong: ((_ lineNumber: Int, _ length: Int) throws -> Void)? = nil,
        _ body: (_ line: UnsafeRawBufferPointer, _ lineNumber: Int, _ terminated: Bool) throws -> Void
    ) throws {
        let input = self.input
        if !input.started {
            state.position = try input.byteOrderMarkLength()
            input.started = true
        }
        var start = state.position      // first byte of the current line
        var scan = start                // where the search for '\n' resumes
        var line = state.lineNumber
        defer {
            state.position = start
            state.lineNumber = line
        }
        let limit = input.maxRetained
        while true {
            let available = input.count - scan
            if available > 0, let found = memchr(input.base + scan, 0x0A, available) {
                let newline = UnsafeMutableRawPointer(found) - input.base
                var end = newline
                if end > start && input[end - 1] == 0x0D { end -= 1 }
                let lineStart = start
                line += 1
                start = newline + 1
                scan = start
                if end - lineStart > limit {
                    guard let tooLong else { throw ReaderError(path: input.path, line: line, kind: .tooLong(limit: limit)) }
                    try tooLong(line, end - lineStart)
                    continue
                }
                try body(UnsafeRawBufferPointer(start: input.base + lineStart, count: end - lineStart), line, true)
                continue
            }
            scan = input.count
            if input.isAtEOF {
                guard start < input.count else { return }
                let lineStart = start
                line += 1
                start = input.count
                if input.count - lineStart > limit {
                    guard let tooLong else { throw ReaderError(path: input.path, line: line, kind: .tooLong(limit: limit)) }
                    try tooLong(line, input.count - lineStart)
                    return
                }
                try body(UnsafeRawBufferPointer(start: input.base + lineStart, count: input.count - lineStart),
                         line, false)
                return
            }
            if let tooLong, input.count - start > limit {
                // Skip the rest of this line as it streams past, keeping nothing of it.
                var skipped = input.count - start
                line += 1
                while true {
                    _ = try input.refill(keepingFrom: input.count, line: line)
                    if input.count == 0 {
                        guard input.isAtEOF else { continue }
                        start = 0
                        scan = 0
                        try tooLong(line, skipped)
                        return
                    }
                    if let found = memchr(input.base, 0x0A, input.count) {
                        let newline = UnsafeMutableRawPointer(found) - input.base
                        skipped += newline
                        start = newline + 1
                        scan = start
                        try tooLong(line, skipped)
                        break
                    }
                    skipped += input.count
                    if input.isAtEOF {
                        start = input.count
                        scan = start
                        try tooLong(line, skipped)
                        return
                    }
                }
                continue
            }
            let shift = try input.refill(keepingFrom: start, line: line + 1)
            start -= shift
            scan -= shift
        }
    }
}

/// A window of bytes read from a `ByteSource`: valid bytes are `base[0..<count]`. `refill` drops an
/// already-consumed prefix, grows the window when a single line/record fills it, and appends what
/// the source delivers next. A reference type so that a reader's progress (`bytesRead`) can be
/// observed from inside the reader's callback.
final class InputBuffer {
    let path: String
    private var source: any ByteSource
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    private(set) var count = 0
    private(set) var isAtEOF = false
    /// Total bytes delivered by the source so far.
    private(set) var bytesRead = 0

    /// How far into the file on disk reading has got (the compressed offset for gzip, else `bytesRead`).
    var fileOffset: Int { source.fileOffset.map { Int($0) } ?? bytesRead }
    /// The longest unfinished line/record/element the buffer may have to hold.
    let maxRetained: Int
    /// Set once the reader has consumed its start (BOM handling); readers use it to detect reuse.
    var started = false

    init(source: any ByteSource, path: String, capacity: Int, maxRetained: Int) {
        precondition(capacity > 0, "buffer size must be positive")
        precondition(maxRetained > 0, "length limit must be positive")
        self.source = source
        self.path = path
        self.capacity = capacity
        self.maxRetained = maxRetained
        self.base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    @inline(__always)
    subscript(i: Int) -> UInt8 { base.load(fromByteOffset: i, as: UInt8.self) }

    /// Discards `base[0..<keepFrom]`, moving the rest to the front, then reads once from the source.
    /// Returns `keepFrom`: callers subtract it from every index they hold. Sets `isAtEOF` when the
    /// source is exhausted. Throws `tooLong` (at `line`) when more than `maxRetained` bytes are kept;
    /// a `ReaderError` from the source without a line gets `line`, other errors pass unchanged.
    func refill(keepingFrom keepFrom: Int, line: Int) throws -> Int {
        precondition(!isAtEOF && keepFrom >= 0 && keepFrom <= count)
        if keepFrom > 0 {
            if count > keepFrom { (base + 0).copyMemory(from: base + keepFrom, byteCount: count - keepFrom) }
            count -= keepFrom
        }
        if count > maxRetained {
            throw ReaderError(path: path, line: line, kind: .tooLong(limit: maxRetained))
        }
        if count == capacity { grow(to: capacity * 2) }
        let n: Int
        do {
            n = try source.read(into: UnsafeMutableRawBufferPointer(start: base + count, count: capacity - count))
        } catch let error as ReaderError where error.line == nil {
            // A source failing mid-file (say truncated gzip) is reported at the line being read.
            throw ReaderError(path: error.path, line: line, kind: error.kind)
        }
        precondition(n >= 0 && n <= capacity - count, "ByteSource returned an invalid count")
        if n == 0 {
            isAtEOF = true
        } else {
            count += n
            bytesRead += n
        }
        return keepFrom
    }

    /// Reads until at least three bytes are buffered (or the end), then returns 3 if they are a
    /// UTF-8 byte order mark, else 0: the offset where content starts.
    func byteOrderMarkLength() throws -> Int {
        while count < 3 && !isAtEOF { _ = try refill(keepingFrom: 0, line: 1) }
        guard count >= 3, self[0] == 0xEF, self[1] == 0xBB, self[2] == 0xBF else { return 0 }
        return 3
    }

    private func grow(to newCapacity: Int) {
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }
}
