import Testing
import QLoRAFormats

@Suite("LineReader")
struct LineReaderTests {
    @Test func splitsLinesWithNumbers() throws {
        #expect(try RowsFixture.lines(of: "a\nbb\n\nccc\n") == [DeliveredLine("a", 1), DeliveredLine("bb", 2), DeliveredLine("", 3), DeliveredLine("ccc", 4)])
    }

    @Test func reportsUnterminatedFinalLine() throws {
        #expect(try RowsFixture.lines(of: "a\nlast") == [DeliveredLine("a", 1), DeliveredLine("last", 2, false)])
        #expect(try RowsFixture.lines(of: "only") == [DeliveredLine("only", 1, false)])
    }

    @Test func emptySegmentAfterLastNewlineIsNotALine() throws {
        #expect(try RowsFixture.lines(of: "a\n") == [DeliveredLine("a", 1)])
        #expect(try RowsFixture.lines(of: "") == [])
        #expect(try RowsFixture.lines(of: "\n") == [DeliveredLine("", 1)])
    }

    @Test func stripsCarriageReturnOnlyBeforeNewline() throws {
        #expect(try RowsFixture.lines(of: "a\r\nb\rc\r\n\r\nend\r") ==
                [DeliveredLine("a", 1), DeliveredLine("b\rc", 2), DeliveredLine("", 3), DeliveredLine("end\r", 4, false)])
    }

    @Test func skipsByteOrderMarkOnlyAtStart() throws {
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        #expect(try RowsFixture.lines(of: bom + Array("x\n".utf8) + bom + Array("y".utf8)) ==
                [DeliveredLine("x", 1), DeliveredLine("\u{FEFF}y", 2, false)])
        #expect(try RowsFixture.lines(of: bom) == [])
        #expect(try RowsFixture.lines(of: bom, bufferSize: 1) == [])
        #expect(try RowsFixture.lines(of: [0xEF, 0xBB]) == [DeliveredLine("\u{FFFD}", 1, false)])
    }

    @Test(arguments: [1, 2, 3, 4, 7, 16, 1000])
    func linesSpanningBufferBoundariesMatchSplit(bufferSize: Int) throws {
        var rng = RowsRandom(seed: UInt64(bufferSize))
        var text = "\u{FEFF}"
        var expected: [DeliveredLine] = []
        for n in 1...300 {
            let length = Int.random(in: 0...40, using: &rng)
            let body = String((0..<length).map { _ in "ab€\r,\"{}".randomElement(using: &rng)! })
            let crlf = Bool.random(using: &rng)
            text += body + (crlf ? "\r\n" : "\n")
            expected.append(DeliveredLine(!crlf && body.hasSuffix("\r") ? String(body.dropLast()) : body, n))
        }
        text += "tail"
        expected.append(DeliveredLine("tail", 301, false))
        #expect(try RowsFixture.lines(of: text, bufferSize: bufferSize) == expected)
    }

    @Test func deliversOneMegabyteLineThroughSmallBuffer() throws {
        var rng = RowsRandom(seed: 9)
        let long = (0..<(1 << 20)).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
        let input = Array("short\n".utf8) + long + Array("\r\nafter\n".utf8) + long
        let reader = LineReader(source: MemoryByteSource(input), path: "long.txt", bufferSize: 4096)
        var seen: [(count: Int, number: Int, terminated: Bool, matches: Bool)] = []
        try reader.forEachLine { line, number, terminated in
            seen.append((line.count, number, terminated, line.count == long.count && line.elementsEqual(long)))
        }
        #expect(seen.map(\.count) == [5, 1 << 20, 5, 1 << 20])
        #expect(seen.map(\.number) == [1, 2, 3, 4])
        #expect(seen.map(\.terminated) == [true, true, true, false])
        #expect(seen.map(\.matches) == [false, true, false, true])
    }

    @Test func rejectsLineLongerThanLimit() throws {
        let input = Array("ok\n0123456789\nnext\n".utf8)
        for bufferSize in [4, 64] {
            let reader = LineReader(source: MemoryByteSource(input), path: "f.jsonl", bufferSize: bufferSize, maxLineLength: 8)
            var delivered: [Int] = []
            #expect(throws: ReaderError(path: "f.jsonl", line: 2, kind: .tooLong(limit: 8))) {
                try reader.forEachLine { _, number, _ in delivered.append(number) }
            }
            #expect(delivered == [1])
        }
    }

    @Test func exposesProgressInsideCallback() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let path = dir + "/rows.jsonl"
            let bytes = Array(String(repeating: "{\"a\": \"0123456789\"}\n", count: 10_000).utf8)
            try RowsFixture.writeFile(path, bytes)
            let reader = try LineReader(path: path, bufferSize: 4096)
            var progress: [Int] = []
            try reader.forEachLine { _, _, _ in progress.append(reader.bytesRead) }
            #expect(progress.count == 10_000)
            #expect(progress == progress.sorted())
            #expect(progress.first! < bytes.count)
            #expect(reader.bytesRead == bytes.count)
            #expect(reader.lineNumber == 10_000)
        }
    }

    @Test func continuesAfterCallbackThrows() throws {
        struct Stop: Error {}
        let reader = LineReader(source: MemoryByteSource("1\n2\n3\n4"), path: "x", bufferSize: 2)
        var seen: [Int] = []
        #expect(throws: Stop.self) {
            try reader.forEachLine { _, number, _ in
                seen.append(number)
                if number == 2 { throw Stop() }
            }
        }
        try reader.forEachLine { _, number, _ in seen.append(number) }
        #expect(seen == [1, 2, 3, 4])
    }

    @Test func readsGzipFileLines() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let path = dir + "/rows.jsonl.gz"
            try RowsFixture.writeGzip(path, Array("\u{FEFF}{\"a\":1}\r\n{\"a\":2}\n{\"a\":3}".utf8))
            let reader = try LineReader(path: path, bufferSize: 3)
            var values: [JSONValue] = []
            var numbers: [Int] = []
            try reader.forEachLine { line, number, _ in
                values.append(try JSONParser.parse(line)["a"]!)
                numbers.append(number)
            }
            #expect(values == [1, 2, 3])
            #expect(numbers == [1, 2, 3])
        }
    }

    @Test func parseErrorsMapToFileLines() throws {
        let text = "{\"a\": 1}\n{\"a\": 2}\n{\"a\": \"bad \\q\"}\n"
        let reader = LineReader(source: MemoryByteSource(text), path: "rows.jsonl")
        var failure: (line: Int, error: JSONParseError)?
        try reader.forEachLine { line, number, _ in
            do throws(JSONParseError) { _ = try JSONParser.parse(line) } catch { failure = (number, error) }
        }
        #expect(failure?.line == 3)
        #expect(failure?.error == JSONParseError(kind: .invalidEscape, offset: 11, line: 1, column: 12))
    }

    /// With `tooLong`, an over-long line is skipped as it streams past and reported in its place; reading goes on.
    @Test(arguments: [1, 3, 8, 64, 4096])
    func overLongLinesAreSkippedAndReported(bufferSize: Int) throws {
        let text = "short\n" + String(repeating: "x", count: 100) + "\r\nafter\n" + String(repeating: "z", count: 17) + "\nok\n"
            + String(repeating: "y", count: 40)
        let reader = LineReader(source: MemoryByteSource(Array(text.utf8)), path: "mem.txt", bufferSize: bufferSize, maxLineLength: 16)
        var lines: [DeliveredLine] = []
        var long: [[Int]] = []
        try reader.forEachLine(tooLong: { long.append([$0, $1]) }) { line, number, terminated in
            lines.append(DeliveredLine(String(decoding: line, as: UTF8.self), number, terminated))
        }
        #expect(lines == [DeliveredLine("short", 1), DeliveredLine("after", 3), DeliveredLine("ok", 5)])
        // Lengths: the whole line when it fit in the buffer (without its \r), else what streamed past (with it).
        #expect(long.map { $0[0] } == [2, 4, 6])
        #expect(long[0][1] >= 100 && long[0][1] <= 101 && long[1][1] == 17 && long[2][1] == 40, "\(long)")
        // Without `tooLong` the same input is an error naming the line.
        let strict = LineReader(source: MemoryByteSource(Array(text.utf8)), path: "mem.txt", bufferSize: bufferSize, maxLineLength: 16)
        #expect(throws: ReaderError.self) { try strict.forEachLine { _, _, _ in } }
    }
}
