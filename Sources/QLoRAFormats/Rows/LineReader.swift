// Streaming line splitter for JSONL and other line-oriented files.

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

    /// The number of the last line delivered (0 before the first).
    public var lineNumber: Int { state.lineNumber }

    /// Calls `body(line, lineNumber, terminated)` for each line in order. `line` is valid only during
    /// the call. Errors from the source or from `body` stop reading and propagate unchanged; a line
    /// longer than `maxLineLength` throws `ReaderError.tooLong`.
    public func forEachLine(
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
                    throw ReaderError(path: input.path, line: line, kind: .tooLong(limit: limit))
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
                    throw ReaderError(path: input.path, line: line, kind: .tooLong(limit: limit))
                }
                try body(UnsafeRawBufferPointer(start: input.base + lineStart, count: input.count - lineStart),
                         line, false)
                return
            }
            let shift = try input.refill(keepingFrom: start, line: line + 1)
            start -= shift
            scan -= shift
        }
    }
}
