import Testing
import QLoRAFormats

@Suite("JSONParser values")
struct JSONParserValueTests {
    @Test func parsesNestedDocumentPreservingKeyOrder() throws {
        let value = try JSONParser.parse(#" {"z": [1, -2.5, true, false, null], "a": {"b": "c"}, "m": {}} "#)
        let expected: JSONValue = ["z": [1, -2.5, true, false, nil], "a": ["b": "c"], "m": .object(JSONObject())]
        #expect(value == expected)
        #expect(value.objectValue?.keys == ["z", "a", "m"])
        #expect(value["a"]?["b"]?.stringValue == "c")
        #expect(value["missing"] == nil)
    }

    @Test func objectEqualityIsOrderSensitive() throws {
        let ab = try JSONParser.parse(#"{"a":1,"b":2}"#)
        let ba = try JSONParser.parse(#"{"b":2,"a":1}"#)
        #expect(ab != ba)
        #expect(ab["a"] == ba["a"])
    }

    @Test func decodesEveryEscape() throws {
        let value = try JSONParser.parse(#""\"\\\/\b\f\n\r\t\u00e9\u20AC\uD83D\uDE00\u0000x""#)
        #expect(value == .string("\"\\/\u{8}\u{C}\n\r\t\u{E9}\u{20AC}\u{1F600}\u{0}x"))
    }

    @Test func keepsRawUTF8InStrings() throws {
        let value = try JSONParser.parse("[\"Janet’s ducks 🦆 and ünïcödé text that is longer than eight bytes\"]")
        #expect(value == ["Janet’s ducks 🦆 and ünïcödé text that is longer than eight bytes"])
    }

    @Test(arguments: [
        ("0", 0.0), ("-0", -0.0), ("12", 12), ("-12", -12), ("1.5", 1.5), ("1e3", 1000), ("1E+3", 1000),
        ("2.5e-3", 0.0025), ("0.1", 0.1), ("123456789012345678901234567890", 1.2345678901234568e29),
        ("0.30000000000000004", 0.30000000000000004), ("2.2250738585072014e-308", 2.2250738585072014e-308),
        ("5e-324", .leastNonzeroMagnitude), ("1.7976931348623157e308", 1.7976931348623157e308), ("9007199254740993", 9007199254740992),
        ("0.8444218515250481", 0.8444218515250481), ("1e-400", 0),
    ])
    func parsesNumbersCorrectlyRounded(text: String, expected: Double) throws {
        let value = try JSONParser.parse(text)
        #expect(value == .number(expected))
        #expect(value.numberValue?.sign == expected.sign)
    }

    @Test func numbersMatchStandardLibraryConversion() throws {
        var rng = RowsRandom(seed: 7)
        for _ in 0..<20_000 {
            let mantissa = UInt64.random(in: 0...UInt64(99_999_999_999_999_999), using: &rng)
            let exponent = Int.random(in: -40...40, using: &rng)
            let text = "\(mantissa)e\(exponent)"
            #expect(try JSONParser.parse(text) == .number(Double(text)!), "\(text)")
            let decimal = "0.\(mantissa)"
            #expect(try JSONParser.parse(decimal) == .number(Double(decimal)!), "\(decimal)")
        }
    }

    @Test func acceptsCanonicallyEquivalentButDistinctKeys() throws {
        let value = try JSONParser.parse("{\"\u{E9}\":1,\"e\u{301}\":2}")
        #expect(value.objectValue?.count == 2)
        #expect(value["e\u{301}"] == .number(2))
        #expect(value["\u{E9}"] == .number(1))
    }

    @Test func acceptsExactlyMaxDepth() throws {
        let text = String(repeating: "[", count: JSONParser.maxDepth) + String(repeating: "]", count: JSONParser.maxDepth)
        var value = try JSONParser.parse(text)
        var depth = 0
        while case .array(let elements) = value {
            depth += 1
            value = elements.first ?? .null
        }
        #expect(depth == 512)
    }

    @Test func typeNamesAreJSONNames() {
        let values: [JSONValue] = [nil, true, 1, "s", [], [:]]
        #expect(values.map(\.typeName) == ["null", "boolean", "number", "string", "array", "object"])
    }

    @Test func parsesFromUnsafeBytesAndSlices() throws {
        let bytes = Array("xx[1]yy".utf8)
        #expect(try JSONParser.parse(bytes[2..<5]) == [1])
        let value = try bytes.withUnsafeBytes { raw throws(JSONParseError) in
            try JSONParser.parse(UnsafeRawBufferPointer(rebasing: raw[2..<5]))
        }
        #expect(value == [1])
    }
}

@Suite("JSONParser errors")
struct JSONParserErrorTests {
    private func error(_ kind: JSONParseError.Kind, _ offset: Int, _ line: Int, _ column: Int) -> JSONParseError {
        JSONParseError(kind: kind, offset: offset, line: line, column: column)
    }

    @Test(arguments: [
        ([0xC0, 0xAF], "overlong 2-byte"),
        ([0xE0, 0x80, 0xAF], "overlong 3-byte"),
        ([0xF0, 0x80, 0x80, 0xAF], "overlong 4-byte"),
        ([0xED, 0xA0, 0x80], "UTF-8 encoded surrogate"),
        ([0xF4, 0x90, 0x80, 0x80], "above U+10FFFF"),
        ([0xF5, 0x80, 0x80, 0x80], "invalid lead byte"),
        ([0x80], "stray continuation byte"),
        ([0xE2, 0x82], "truncated 3-byte sequence"),
        ([0xF0, 0x9F, 0x98], "truncated 4-byte sequence"),
    ] as [([UInt8], String)])
    func rejectsInvalidUTF8InStrings(bad: [UInt8], why: String) {
        // {"text": "abcdef<bad>"}: the bad sequence starts at offset 16, column 17.
        let input = Array(#"{"text": "abcdef"#.utf8) + bad + Array(#""}"#.utf8)
        let failure = RowsFixture.parseFailure(input)
        #expect(failure == error(.invalidUTF8, 16, 1, 17), "\(why)")
        #expect(failure?.description == "invalid UTF-8 at line 1, column 17")
    }

    @Test func rejectsInvalidUTF8AfterLongASCIIRunOnLaterLine() {
        let input = Array("[\n\"aaaaaaaaaaaaaaaaaaaaaaaa".utf8) + [0xFF] + Array("\"]".utf8)
        #expect(RowsFixture.parseFailure(input) == error(.invalidUTF8, 27, 2, 26))
    }

    @Test func rejectsTruncatedUTF8AtEndOfInput() {
        #expect(RowsFixture.parseFailure([0x22, 0x61, 0xE2, 0x82]) == error(.invalidUTF8, 2, 1, 3))
    }

    @Test(arguments: [
        ("", 0, 1, 1), ("   ", 3, 1, 4), ("{\"a\": [1, 2", 11, 1, 12), ("[\n1,\n", 5, 3, 1),
        ("\"abc", 4, 1, 5), ("tr", 2, 1, 3), ("{\"a\"", 4, 1, 5), ("\"\\u12", 5, 1, 6), ("\"\\", 2, 1, 3),
        ("\"\\uD800", 7, 1, 8), ("\"\\uD800\\", 8, 1, 9), ("nul", 3, 1, 4),
    ])
    func reportsUnexpectedEndAtEndOfInput(text: String, offset: Int, line: Int, column: Int) {
        #expect(RowsFixture.parseFailure(text) == error(.unexpectedEnd, offset, line, column))
    }

    @Test(arguments: [
        ("[1, 2 3]", UInt8(ascii: "3"), 6, 1, 7),
        ("{\"a\" 1}", UInt8(ascii: "1"), 5, 1, 6),
        ("{\"a\":1,}", UInt8(ascii: "}"), 7, 1, 8),
        ("[1,]", UInt8(ascii: "]"), 3, 1, 4),
        ("{1:2}", UInt8(ascii: "1"), 1, 1, 2),
        ("[\n  trux]", UInt8(ascii: "x"), 7, 2, 6),
        ("'a'", UInt8(ascii: "'"), 0, 1, 1),
        ("\u{FEFF}{}", 0xEF, 0, 1, 1),
        ("[1}", UInt8(ascii: "}"), 2, 1, 3),
    ] as [(String, UInt8, Int, Int, Int)])
    func reportsUnexpectedCharacter(text: String, byte: UInt8, offset: Int, line: Int, column: Int) {
        #expect(RowsFixture.parseFailure(text) == error(.unexpectedCharacter(byte), offset, line, column))
    }

    @Test(arguments: [#""\x""#, #""\u12G4""#, #""\U0041""#, #""\'""#])
    func rejectsInvalidEscape(text: String) {
        #expect(RowsFixture.parseFailure(text) == error(.invalidEscape, 1, 1, 2))
    }

    @Test(arguments: [#""\uD800""#, #""\uDC00""#, #""\uD800\u0041""#, #""\uD800x""#, #""\uDBFF\uDBFF""#])
    func rejectsLoneSurrogateEscape(text: String) {
        #expect(RowsFixture.parseFailure(text) == error(.loneSurrogate, 1, 1, 2))
    }

    @Test func rejectsLoneSurrogateAfterValidPairOnSecondLine() {
        let text = "[\"\\uD83D\\uDE00\",\n \"ok \\uDE00\"]"
        #expect(RowsFixture.parseFailure(text) == error(.loneSurrogate, 22, 2, 6))
    }

    @Test(arguments: [(0x00 as UInt8), 0x09, 0x0A, 0x1F])
    func rejectsControlCharacterInString(byte: UInt8) {
        let input = Array("{\"k\": \"ab".utf8) + [byte] + Array("\"}".utf8)
        #expect(RowsFixture.parseFailure(input) == error(.controlCharacterInString, 9, 1, 10))
    }

    @Test(arguments: ["-", "01", "-01", "1.", "1.e5", ".5", "1e", "1e+", "-a", "1e400", "-1e400", "00"])
    func rejectsInvalidNumber(text: String) {
        // Every number starts at offset 3 of "[0,<number>]"... except those not starting a value.
        let input = "[0,\(text)]"
        if text == ".5" {
            #expect(RowsFixture.parseFailure(input) == error(.unexpectedCharacter(UInt8(ascii: ".")), 3, 1, 4))
        } else {
            #expect(RowsFixture.parseFailure(input) == error(.invalidNumber, 3, 1, 4))
        }
    }

    @Test(arguments: [("{} x", 3, 1, 4), ("1 2", 2, 1, 3), ("\"a\"\n\n]", 5, 3, 1), ("nullx", 4, 1, 5), ("0x10", 1, 1, 2)])
    func rejectsTrailingCharacters(text: String, offset: Int, line: Int, column: Int) {
        #expect(RowsFixture.parseFailure(text) == error(.trailingCharacters, offset, line, column))
    }

    @Test func rejectsDuplicateKeyAtItsPosition() {
        let text = "{\"a\": 1,\n  \"b\": {\"x\": 1, \"y\": 2},\n  \"a\": 3}"
        let failure = RowsFixture.parseFailure(text)
        #expect(failure == error(.duplicateKey("a"), 36, 3, 3))
        #expect(failure?.description == "duplicate key \"a\" at line 3, column 3")
    }

    @Test func rejectsDuplicateKeyInLargeObject() {
        let members = (0..<40).map { "\"k\($0)\": \($0)" }.joined(separator: ",")
        let text = "{" + members + ",\"k17\": 0}"
        #expect(RowsFixture.parseFailure(text)?.kind == .duplicateKey("k17"))
        #expect(RowsFixture.parseFailure(text)?.offset == text.utf8.count - 9)
        #expect(RowsFixture.parseFailure("{" + members + "}") == nil)
    }

    @Test func rejectsDuplicateKeySpelledWithEscape() {
        #expect(RowsFixture.parseFailure(#"{"ab":1,"a\u0062":2}"#) == error(.duplicateKey("ab"), 8, 1, 9))
    }

    @Test func rejectsNestingBeyondDepthLimit() {
        let text = String(repeating: "[{\"a\":", count: 256) + "[]" + String(repeating: "}]", count: 256)
        // 512 containers are fine; the 513th bracket (the innermost "[") is too deep.
        #expect(RowsFixture.parseFailure(text) == error(.depthLimitExceeded, 256 * 6, 1, 256 * 6 + 1))
        let deep = String(repeating: "[", count: 100_000)
        #expect(RowsFixture.parseFailure(deep) == error(.depthLimitExceeded, 512, 1, 513))
    }

    @Test func describesErrorsWithLineAndColumn() {
        #expect(RowsFixture.parseFailure("[\n\n  tru")?.description == "unexpected end of input at line 3, column 6")
        #expect(RowsFixture.parseFailure("[1 2]")?.description == "unexpected '2' at line 1, column 4")
        #expect(RowsFixture.parseFailure([0x5B, 0x01])?.description == "unexpected byte 0x01 at line 1, column 2")
    }
}
