// Streaming RFC 4180 CSV reader.

/// Reads comma-separated records (RFC 4180) in buffered chunks.
///
/// Fields may be quoted; inside quotes `""` stands for `"` and commas and line breaks are data.
/// Records end at LF or CRLF (a `\r` before a line end is not data, also at end of file). A
/// completely empty line is skipped; a UTF-8 byte order mark at the start is skipped. Fields are
/// returned as Strings after UTF-8 validation. Header rows and column counts are the caller's
/// business. Errors are `ReaderError`s: quote errors name the line of the offending byte (for an
/// unterminated field, the line of its opening quote); invalid UTF-8 and NUL bytes (which JSON
/// rejects too) name the record's first line, and are per-record problems a caller may turn into
/// rejected rows (`forEachRecord(invalid:_:)`).
public struct CSVReader {
    /// Default read-ahead buffer size: 1 MiB.
    public static let defaultBufferSize = 1 << 20
    /// Default longest record held: 256 MiB (a longer one is an error, or skipped with `forEachRecord(invalid:tooLong:_:)`).
    public static let defaultMaxRecordLength = 1 << 28

    private let input: InputBuffer

    /// Reads records from `source`; `path` names the file in errors.
    public init(source: any ByteSource, path: String, bufferSize: Int = CSVReader.defaultBufferSize,
                maxRecordLength: Int = CSVReader.defaultMaxRecordLength) {
        input = InputBuffer(source: source, path: path, capacity: bufferSize, maxRetained: maxRecordLength)
    }

    /// Opens `path` with `openByteSource` (gzip for `.gz`) and reads its records.
    public init(path: String, bufferSize: Int = CSVReader.defaultBufferSize,
                maxRecordLength: Int = CSVReader.defaultMaxRecordLength) throws(ReaderError) {
        self.init(source: try openByteSource(path: path), path: path, bufferSize: bufferSize,
                  maxRecordLength: maxRecordLength)
    }

    /// The file's path as given.
    public var path: String { input.path }

    /// Bytes taken from the source so far (decompressed bytes for gzip), for progress reports.
    public var bytesRead: Int { input.bytesRead }

    /// How far into the file on disk reading has got (compressed bytes for gzip), for progress against its size.
    public var fileBytesRead: Int { input.fileOffset }

    private enum State { case fieldStart, unquoted, quoted, quoteSeen, crAfterQuote }

    /// A field's content as offsets from the record's first byte.
    private struct FieldRange {
        var start: Int
        var end: Int
        var quoted: Bool
        var doubledQuotes: Bool
    }

    /// Calls `body(fields, lineNumber)` for each record, `lineNumber` being the line where the
    /// record starts. Reads the file once. Errors from `body` propagate unchanged; a `ReaderError`
    /// from the source (truncated gzip, say) gains the line of the record being read.
    public func forEachRecord(_ body: (_ fields: [String], _ lineNumber: Int) throws -> Void) throws {
        try forEachRecord(invalid: nil, body)
    }

    /// Like `forEachRecord(_:)`, but a record that is well-formed CSV yet not valid text (invalid UTF-8,
    /// a NUL byte) goes to `invalid` with its error (kind and first line) and raw bytes, and reading
    /// goes on; nil throws the error instead.
    ///
    /// With `tooLong`, a record longer than `maxRecordLength` is not an error: it is parsed as it streams past with
    /// nothing of it kept (memory stays bounded by the limit), `tooLong(lineNumber, length)` is called in its place,
    /// and reading goes on with the next record, as `LineReader` does for JSONL lines.
    public func forEachRecord(
        invalid: ((_ error: ReaderError, _ record: UnsafeRawBufferPointer) throws -> Void)?,
        tooLong: ((_ lineNumber: Int, _ length: Int) throws -> Void)? = nil,
        _ body: (_ fields: [String], _ lineNumber: Int) throws -> Void
    ) throws {
        let input = self.input
        precondition(!input.started, "CSVReader.forEachRecord reads the file once")
        input.started = true
        let path = input.path
        var i = try input.byteOrderMarkLength()
        var line = 1
        var recordStart = i
        var recordLine = 1
        var fieldStart = i
        var closingQuote = 0
        var quoteLine = 0
        var doubledQuotes = false
        var state = State.fieldStart
        var ranges: [FieldRange] = []
        var fields: [String] = []
        var unescaped: [UInt8] = []
        // Skipping an overlong record: its bytes are dropped as they are parsed, and `recordStart` goes on counting
        // from where the record began (it becomes negative), so `end - recordStart` is still the record's length.
        var skipping = false
        // The last byte a skipping refill dropped: while skipping, a field can start before the buffer (its index
        // negative), and the byte before index 0 (a CR before the LF that ends the record) is this one.
        var lastDropped: UInt8 = 0

        /// The byte before index `i` of the buffer, `i` > 0 or the last dropped one.
        func byte(before i: Int, _ base: UnsafePointer<UInt8>) -> UInt8 { i > 0 ? base[i - 1] : lastDropped }

        func fail(_ kind: ReaderError.Kind, _ line: Int) -> ReaderError {
            ReaderError(path: path, line: line, kind: kind)
        }

        func addField(_ start: Int, _ end: Int, quoted: Bool) {
            ranges.append(FieldRange(start: start - recordStart, end: end - recordStart, quoted: quoted,
                                     doubledQuotes: quoted && doubledQuotes))
            doubledQuotes = false
        }

        /// Delivers the record ending before `end` (its terminator excluded) and resets for the next.
        func finishRecord(end: Int, next: Int) throws {
            defer {
                ranges.removeAll(keepingCapacity: true)
                recordStart = next
                recordLine = line
                state = .fieldStart
            }
            if let tooLong, skipping || end - recordStart > input.maxRetained {
                skipping = false
                try tooLong(recordLine, end - recordStart)
                return
            }
            if ranges.count == 1 && !ranges[0].quoted && ranges[0].start == ranges[0].end { return }
            let record = UnsafeRawBufferPointer(start: input.base + recordStart, count: end - recordStart)
            var problem: ReaderError?
            if UTF8Validation.firstInvalidOffset(record) != nil {
                problem = fail(.invalidUTF8, recordLine)
            } else if record.contains(0) {
                problem = fail(.nulByte, recordLine)
            }
            if let problem {
                guard let invalid else { throw problem }
                try invalid(problem, record)
                return
            }
            fields.removeAll(keepingCapacity: true)
            for range in ranges {
                let bytes = UnsafeRawBufferPointer(rebasing: record[range.start..<range.end])
                if range.doubledQuotes {
                    unescaped.removeAll(keepingCapacity: true)
                    var k = 0
                    while k < bytes.count {
                        unescaped.append(bytes[k])
                        k += bytes[k] == UInt8(ascii: "\"") ? 2 : 1
                    }
                    fields.append(String(decoding: unescaped, as: UTF8.self))
                } else {
                    fields.append(String(decoding: bytes, as: UTF8.self))
                }
            }
            try body(fields, recordLine)
        }

        while true {
            if i == input.count {
                if input.isAtEOF { break }
                if tooLong != nil, skipping || input.count - recordStart > input.maxRetained { skipping = true }
                let keep = skipping ? input.count : recordStart
                if keep > 0 { lastDropped = input[keep - 1] }
                let shift = try input.refill(keepingFrom: keep, line: recordLine)
                i -= shift
                recordStart -= shift
                fieldStart -= shift
                closingQuote -= shift
                continue
            }
            let base = input.base.assumingMemoryBound(to: UInt8.self)
            let count = input.count
            switch state {
            case .fieldStart:
                let c = base[i]
                if c == UInt8(ascii: "\"") {
                    state = .quoted
                    fieldStart = i + 1
                    quoteLine = line
                    i += 1
                } else if c == UInt8(ascii: ",") {
                    addField(i, i, quoted: false)
                    i += 1
                } else {
                    state = .unquoted
                    fieldStart = i
                }
            case .unquoted:
                i = SWAR.firstIndex(of: UInt8(ascii: ","), 0x0A, UInt8(ascii: "\""), in: base, from: i, to: count)
                if i == count { continue }
                let c = base[i]
                if c == UInt8(ascii: "\"") { throw fail(.quoteInUnquotedField, line) }
                if c == UInt8(ascii: ",") {
                    addField(fieldStart, i, quoted: false)
                    state = .fieldStart
                    i += 1
                } else {
                    let end = i > fieldStart && byte(before: i, base) == 0x0D ? i - 1 : i
                    addField(fieldStart, end, quoted: false)
                    line += 1
                    i += 1
                    try finishRecord(end: end, next: i)
                }
            case .quoted:
                i = SWAR.firstIndex(of: UInt8(ascii: "\""), 0x0A, 0x0A, in: base, from: i, to: count)
                if i == count { continue }
                if base[i] == 0x0A {
                    line += 1
                } else {
                    closingQuote = i
                    state = .quoteSeen
                }
                i += 1
            case .quoteSeen:
                let c = base[i]
                switch c {
                case UInt8(ascii: "\""):
                    doubledQuotes = true
                    state = .quoted
                case UInt8(ascii: ","):
                    addField(fieldStart, closingQuote, quoted: true)
                    state = .fieldStart
                case 0x0A:
                    addField(fieldStart, closingQuote, quoted: true)
                    line += 1
                    try finishRecord(end: i, next: i + 1)
                case 0x0D:
                    state = .crAfterQuote
                default:
                    throw fail(.characterAfterClosingQuote(c), line)
                }
                i += 1
            case .crAfterQuote:
                guard base[i] == 0x0A else { throw fail(.characterAfterClosingQuote(0x0D), line) }
                addField(fieldStart, closingQuote, quoted: true)
                line += 1
                try finishRecord(end: i - 1, next: i + 1)
                i += 1
            }
        }
        var end = input.count
        let next = end
        switch state {
        case .fieldStart:
            guard !ranges.isEmpty else { return }
            addField(end, end, quoted: false)
        case .unquoted:
            // A CR before the end of the file ends the record as it would before an LF.
            if end > fieldStart && byte(before: end, input.base.assumingMemoryBound(to: UInt8.self)) == 0x0D { end -= 1 }
            addField(fieldStart, end, quoted: false)
        case .quoted:
            throw fail(.unterminatedQuotedField, quoteLine)
        case .quoteSeen, .crAfterQuote:
            addField(fieldStart, closingQuote, quoted: true)
        }
        try finishRecord(end: end, next: next)
    }
}
