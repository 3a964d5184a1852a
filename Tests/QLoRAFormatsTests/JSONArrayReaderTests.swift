import Testing
import QLoRAFormats

@Suite("JSONArrayReader")
struct JSONArrayReaderTests {
    private struct Element: Equatable, CustomStringConvertible {
        let text: String
        let line: Int
        init(_ text: String, _ line: Int) {
            self.text = text
            self.line = line
        }
        var description: String { "\(line):\(text)" }
    }

    private func elements(_ text: String, bufferSize: Int = 64) throws -> [Element] {
        try elements(Array(text.utf8), bufferSize: bufferSize)
    }

    private func elements(_ bytes: [UInt8], bufferSize: Int = 64) throws -> [Element] {
        let reader = JSONArrayReader(source: MemoryByteSource(bytes), path: "data.json", bufferSize: bufferSize)
        var out: [Element] = []
        try reader.forEachElement { element, line in out.append(Element(String(decoding: element, as: UTF8.self), line)) }
        return out
    }

    private func failure(_ text: String, bufferSize: Int = 64) -> ReaderError? {
        do {
            _ = try elements(text, bufferSize: bufferSize)
            return nil
        } catch let error as ReaderError {
            return error
        } catch {
            return nil
        }
    }

    private static let sample = """
        [
          {"instruction": "say \\"hi]\\"", "tags": ["a", "}"]},
          [1, [2, {"x": "\\\\"}]],
          "a string, with [brackets]",
          -12.5e3, true,
          null
          ,
          {}
        ]

        """

    private static let sampleElements = [
        Element(#"{"instruction": "say \"hi]\"", "tags": ["a", "}"]}"#, 2),
        Element(#"[1, [2, {"x": "\\"}]]"#, 3),
        Element(#""a string, with [brackets]""#, 4),
        Element("-12.5e3", 5), Element("true", 5), Element("null", 6), Element("{}", 8),
    ]

    @Test func deliversElementBytesWithStartLines() throws {
        #expect(try elements(Self.sample) == Self.sampleElements)
    }

    @Test(arguments: [1, 2, 3, 5, 8, 13, 4096])
    func elementsSpanningBufferBoundariesAreIntact(bufferSize: Int) throws {
        #expect(try elements(Self.sample, bufferSize: bufferSize) == Self.sampleElements)
    }

    /// With `tooLong`, an overlong element (an object with strings, escapes and line breaks inside, and a long
    /// number) is skipped and reported with its first line and full length, at every buffer size; the elements
    /// around it come through with their own line numbers.
    @Test(arguments: [1, 3, 16, 64, 4096])
    func overlongElementsAreSkippedAndReported(bufferSize: Int) throws {
        let long = "{\"a\": [" + String(repeating: "\"x\\\"]}\",\n", count: 30) + "1]}"
        let number = String(repeating: "7", count: 90)
        let text = "[1,\n" + long + ",\n{\"b\": 2}, " + number + ",\n\"ok\"]"
        let reader = JSONArrayReader(source: MemoryByteSource(Array(text.utf8)), path: "data.json", bufferSize: bufferSize,
                                     maxElementLength: 64)
        var delivered: [Element] = []
        var skipped: [String] = []
        try reader.forEachElement(tooLong: { line, length in skipped.append("\(line):\(length)") }) { element, line in
            delivered.append(Element(String(decoding: element, as: UTF8.self), line))
        }
        #expect(delivered == [Element("1", 1), Element("{\"b\": 2}", 33), Element("\"ok\"", 34)])
        #expect(skipped == ["2:\(long.utf8.count)", "33:90"])
    }

    @Test func elementsParseWithJSONParser() throws {
        let reader = JSONArrayReader(source: MemoryByteSource(Self.sample), path: "data.json", bufferSize: 7)
        var types: [String] = []
        try reader.forEachElement { element, _ in types.append(try JSONParser.parse(element).typeName) }
        #expect(types == ["object", "array", "string", "number", "boolean", "null", "object"])
    }

    @Test func acceptsEmptyArraysAndByteOrderMark() throws {
        #expect(try elements("[]") == [])
        #expect(try elements(" \n[ \n ] \n") == [])
        #expect(try elements([0xEF, 0xBB, 0xBF] + Array("[1]".utf8), bufferSize: 1) == [Element("1", 1)])
    }

    @Test func trailingWhitespaceIsNotRetainedAsAnElement() throws {
        for text in ["[]", "[1]", "[1, 2]"] {
            let padded = text + String(repeating: " \n", count: 100)
            let reader = JSONArrayReader(source: MemoryByteSource(padded), path: "data.json", bufferSize: 4, maxElementLength: 8)
            var count = 0
            try reader.forEachElement { _, _ in count += 1 }
            #expect(count == text.filter { $0.isNumber }.count)
        }
    }

    @Test func rejectsTopLevelNonArray() {
        #expect(failure("\n\n{\"a\": 1}") == ReaderError(path: "data.json", line: 3, kind: .notAnArray(found: UInt8(ascii: "{"))))
        #expect(failure("") == ReaderError(path: "data.json", line: 1, kind: .notAnArray(found: nil)))
        #expect(failure("  \n ") == ReaderError(path: "data.json", line: 2, kind: .notAnArray(found: nil)))
        #expect(failure("\n\"x\"")?.description == "data.json:2: top-level value is not an array (found '\"')")
    }

    @Test func rejectsUnterminatedArray() {
        #expect(failure("[1,\n2") == ReaderError(path: "data.json", line: 2, kind: .unterminatedArray))
        #expect(failure("[\n{\"a\": [1]}\n") == ReaderError(path: "data.json", line: 3, kind: .unterminatedArray))
        #expect(failure("[\n{\"a\": [1]") == ReaderError(path: "data.json", line: 2, kind: .unterminatedArray))
        #expect(failure("[") == ReaderError(path: "data.json", line: 1, kind: .unterminatedArray))
    }

    @Test func rejectsUnterminatedStringAtItsStartLine() {
        #expect(failure("[1,\n\"abc\n\n") == ReaderError(path: "data.json", line: 2, kind: .unterminatedString))
        #expect(failure("[{\"a\":\n \"b\\\"]}", bufferSize: 2) == ReaderError(path: "data.json", line: 2, kind: .unterminatedString))
    }

    @Test func rejectsMissingComma() {
        #expect(failure("[1,\n 2 3]") == ReaderError(path: "data.json", line: 2, kind: .unexpectedCharacter(UInt8(ascii: "3"), expected: "',' or ']'")))
        #expect(failure("[{\"a\":1}\n{\"b\":2}]") == ReaderError(path: "data.json", line: 2, kind: .unexpectedCharacter(UInt8(ascii: "{"), expected: "',' or ']'")))
        #expect(failure("[\"a\"\"b\"]")?.description == "data.json:1: unexpected '\"', expected ',' or ']'")
    }

    @Test func rejectsTrailingComma() {
        #expect(failure("[1,\n2,\n]") == ReaderError(path: "data.json", line: 3, kind: .trailingComma))
        #expect(failure("[1,]")?.description == "data.json:1: trailing comma before ']'")
    }

    @Test func rejectsMisplacedCommas() {
        #expect(failure("[,1]") == ReaderError(path: "data.json", line: 1, kind: .unexpectedCharacter(UInt8(ascii: ","), expected: "an array element")))
        #expect(failure("[1,\n,2]") == ReaderError(path: "data.json", line: 2, kind: .unexpectedCharacter(UInt8(ascii: ","), expected: "an array element")))
    }

    @Test func rejectsMismatchedBrackets() {
        #expect(failure("[\n{\"a\": [1}]") == ReaderError(path: "data.json", line: 2, kind: .unexpectedCharacter(UInt8(ascii: "}"), expected: "']'")))
        #expect(failure("[1}") == ReaderError(path: "data.json", line: 1, kind: .unexpectedCharacter(UInt8(ascii: "}"), expected: "',' or ']'")))
    }

    @Test func rejectsCharactersAfterTheArray() {
        #expect(failure("[1]\n\nx") == ReaderError(path: "data.json", line: 3, kind: .trailingCharacters(UInt8(ascii: "x"))))
        #expect(failure("[1][2]") == ReaderError(path: "data.json", line: 1, kind: .trailingCharacters(UInt8(ascii: "["))))
    }

    @Test func rejectsElementLongerThanLimit() {
        let reader = JSONArrayReader(source: MemoryByteSource("[\"short\",\n\"" + String(repeating: "x", count: 100) + "\"]"),
                                     path: "data.json", bufferSize: 8, maxElementLength: 32)
        var count = 0
        #expect(throws: ReaderError(path: "data.json", line: 2, kind: .tooLong(limit: 32))) {
            try reader.forEachElement { _, _ in count += 1 }
        }
        #expect(count == 1)
    }

    @Test func streamsLargeArrayFileInBoundedBuffer() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let path = dir + "/big.json.gz"
            var text = "[\n"
            for k in 0..<50_000 {
                text += (k == 0 ? "" : ",\n") + "  {\"id\": \(k), \"text\": \"row \(k) with \\\"quotes\\\" and ] brackets\"}"
            }
            text += "\n]\n"
            try RowsFixture.writeGzip(path, Array(text.utf8))
            let reader = try JSONArrayReader(path: path, bufferSize: 4096)
            var ids: [Int] = []
            var lines: [Int] = []
            try reader.forEachElement { element, line in
                ids.append(Int(try JSONParser.parse(element)["id"]!.numberValue!))
                lines.append(line)
            }
            #expect(ids == Array(0..<50_000))
            #expect(lines == Array(2..<50_002))
            #expect(reader.bytesRead == text.utf8.count)
        }
    }
}
