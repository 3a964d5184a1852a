import Testing
import QLoRAFormats

@Suite("CSVReader")
struct CSVReaderTests {
    private struct Record: Equatable, CustomStringConvertible {
        let fields: [String]
        let line: Int
        init(_ fields: [String], _ line: Int) {
            self.fields = fields
            self.line = line
        }
        var description: String { "\(line):\(fields)" }
    }

    private func records(_ bytes: [UInt8], bufferSize: Int = 64) throws -> [Record] {
        let reader = CSVReader(source: MemoryByteSource(bytes), path: "data.csv", bufferSize: bufferSize)
        var out: [Record] = []
        try reader.forEachRecord { fields, line in out.append(Record(fields, line)) }
        return out
    }

    private func records(_ text: String, bufferSize: Int = 64) throws -> [Record] {
        try records(Array(text.utf8), bufferSize: bufferSize)
    }

    private func failure(_ bytes: [UInt8], bufferSize: Int = 64) -> ReaderError? {
        do {
            _ = try records(bytes, bufferSize: bufferSize)
            return nil
        } catch let error as ReaderError {
            return error
        } catch {
            return nil
        }
    }

    private func failure(_ text: String, bufferSize: Int = 64) -> ReaderError? {
        failure(Array(text.utf8), bufferSize: bufferSize)
    }

    private static let sample = "prompt,completion\r\n"
        + "Are you sapient?,No.\r\n"
        + "You are immortal,\"Not quite, but I can be perpetuated.\"\r\n"
        + "What is a chat robot?,\"A program that simulates \"\"chat\"\" with\r\na human.\"\n"
        + "\n"
        + "empty,,\"\"\n"
        + "\r\n"
        + "naïve café,\"multi\nline\nfield\",3\n"
        + "last,no newline"

    private static let sampleRecords = [
        Record(["prompt", "completion"], 1),
        Record(["Are you sapient?", "No."], 2),
        Record(["You are immortal", "Not quite, but I can be perpetuated."], 3),
        Record(["What is a chat robot?", "A program that simulates \"chat\" with\r\na human."], 4),
        Record(["empty", "", ""], 7),
        Record(["naïve café", "multi\nline\nfield", "3"], 9),
        Record(["last", "no newline"], 12),
    ]

    @Test func readsQuotedFieldsEmbeddedQuotesAndNewlines() throws {
        #expect(try records(Self.sample) == Self.sampleRecords)
    }

    @Test(arguments: [1, 2, 3, 5, 8, 4096])
    func recordsSpanningBufferBoundariesAreIntact(bufferSize: Int) throws {
        #expect(try records(Self.sample, bufferSize: bufferSize) == Self.sampleRecords)
    }

    @Test func skipsByteOrderMarkAndEmptyLinesButKeepsEmptyFields() throws {
        #expect(try records([0xEF, 0xBB, 0xBF] + Array("a,b\n\n\r\n,\n\"\"\nx,\n".utf8), bufferSize: 2) == [
            Record(["a", "b"], 1), Record(["", ""], 4), Record([""], 5), Record(["x", ""], 6),
        ])
        #expect(try records("") == [])
        #expect(try records("\n\n") == [])
        #expect(try records("a,") == [Record(["a", ""], 1)])
        #expect(try records("\"q\"") == [Record(["q"], 1)])
        #expect(try records("a\r") == [Record(["a"], 1)])
        #expect(try records("\"a\"\r") == [Record(["a"], 1)])
    }

    @Test func keepsCarriageReturnInsideField() throws {
        #expect(try records("a\rb,c\n") == [Record(["a\rb", "c"], 1)])
    }

    @Test func rejectsUnterminatedQuotedFieldAtOpeningLine() {
        let error = failure("a,b\nc,\"open\nstill open\n\nend")
        #expect(error == ReaderError(path: "data.csv", line: 2, kind: .unterminatedQuotedField))
        #expect(error?.description == "data.csv:2: unterminated quoted field")
    }

    @Test func rejectsQuoteInUnquotedField() {
        #expect(failure("a,b\nc,d\"e\n") == ReaderError(path: "data.csv", line: 2, kind: .quoteInUnquotedField))
        #expect(failure("\"x\ny\",ab\"c\n", bufferSize: 1) == ReaderError(path: "data.csv", line: 2, kind: .quoteInUnquotedField))
    }

    @Test func rejectsCharactersAfterClosingQuote() {
        #expect(failure("h\n\"ab\"c,d\n") == ReaderError(path: "data.csv", line: 2, kind: .characterAfterClosingQuote(UInt8(ascii: "c"))))
        #expect(failure("\"a\" ,b\n") == ReaderError(path: "data.csv", line: 1, kind: .characterAfterClosingQuote(0x20)))
        #expect(failure("\"a\"\rb\n") == ReaderError(path: "data.csv", line: 1, kind: .characterAfterClosingQuote(0x0D)))
        #expect(failure("\"a\"x")?.description == "data.csv:1: unexpected 'x' after a closing quote")
    }

    @Test func rejectsInvalidUTF8AtRecordStartLine() {
        let bytes = Array("ok,1\n\"multi\nline ".utf8) + [0xC3, 0x28] + Array("\",2\n".utf8)
        #expect(failure(bytes) == ReaderError(path: "data.csv", line: 2, kind: .invalidUTF8))
        #expect(failure([0x61, 0xED, 0xA0, 0x80, 0x0A], bufferSize: 1) == ReaderError(path: "data.csv", line: 1, kind: .invalidUTF8))
    }

    @Test func rejectsRecordLongerThanLimit() {
        let reader = CSVReader(source: MemoryByteSource("a,b\n\"" + String(repeating: "x", count: 200) + "\"\n"),
                               path: "data.csv", bufferSize: 16, maxRecordLength: 64)
        var count = 0
        #expect(throws: ReaderError(path: "data.csv", line: 2, kind: .tooLong(limit: 64))) {
            try reader.forEachRecord { _, _ in count += 1 }
        }
        #expect(count == 1)
    }

    /// With `tooLong`, an overlong record (here with quoted commas, quotes and line breaks inside, and a last one
    /// without a final newline) is skipped and reported with its first line and full length, at every buffer size;
    /// the records around it come through with their own line numbers.
    @Test(arguments: [1, 3, 16, 64, 4096])
    func overlongRecordsAreSkippedAndReported(bufferSize: Int) throws {
        let long = "\"" + String(repeating: "x,\"\"\n", count: 40) + "\",tail"
        let text = "a,b\n" + long + "\n1,2\n" + String(repeating: "y", count: 100) + ",z\n3,4\n" + long
        let reader = CSVReader(source: MemoryByteSource(Array(text.utf8)), path: "data.csv", bufferSize: bufferSize,
                               maxRecordLength: 64)
        var delivered: [Record] = []
        var skipped: [String] = []
        try reader.forEachRecord(invalid: nil, tooLong: { line, length in skipped.append("\(line):\(length)") }) { fields, line in
            delivered.append(Record(fields, line))
        }
        #expect(delivered == [Record(["a", "b"], 1), Record(["1", "2"], 43), Record(["3", "4"], 45)])
        #expect(skipped == ["2:\(long.utf8.count)", "44:102", "46:\(long.utf8.count)"])
    }

    /// The same with CRLF line ends: a skipped record's length excludes its CR at every buffer size, also when the
    /// buffer holds one byte and the CR was dropped before its LF arrived (the reader once read the byte before its
    /// buffer there: AddressSanitizer's heap-buffer-overflow in scripts/sanitize.sh address).
    @Test(arguments: [1, 2, 3, 16, 4096])
    func overlongCRLFRecordsAreSkippedWithTheirLength(bufferSize: Int) throws {
        let long = String(repeating: "y", count: 100) + ",z"
        let text = "a,b\r\n" + long + "\r\n1,2\r\n" + long + "\r"
        let reader = CSVReader(source: MemoryByteSource(Array(text.utf8)), path: "data.csv", bufferSize: bufferSize,
                               maxRecordLength: 64)
        var delivered: [Record] = []
        var skipped: [String] = []
        try reader.forEachRecord(invalid: nil, tooLong: { line, length in skipped.append("\(line):\(length)") }) { fields, line in
            delivered.append(Record(fields, line))
        }
        #expect(delivered == [Record(["a", "b"], 1), Record(["1", "2"], 3)])
        #expect(skipped == ["2:102", "4:102"])
    }

    @Test func readsGzipCSVFile() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let path = dir + "/data.csv.gz"
            try RowsFixture.writeGzip(path, Array(Self.sample.utf8))
            let reader = try CSVReader(path: path, bufferSize: 7)
            var out: [Record] = []
            try reader.forEachRecord { fields, line in out.append(Record(fields, line)) }
            #expect(out == Self.sampleRecords)
            #expect(reader.bytesRead == Self.sample.utf8.count)
        }
    }
}
