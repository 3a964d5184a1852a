import Testing
import QLoRAFormats

@Suite("JSONWriter")
struct JSONWriterTests {
    @Test func writesCompactJSONWithKeysInStoredOrder() {
        let value: JSONValue = ["z": [1, 2.5, true, false, nil], "a": ["nested": [:]], "e": []]
        #expect(JSONWriter.string(value) == #"{"z":[1,2.5,true,false,null],"a":{"nested":{}},"e":[]}"#)
        #expect(value.description == JSONWriter.string(value))
    }

    @Test func descriptionShowsNonFiniteNumbersWithoutFailing() {
        let value: JSONValue = [.number(.nan), .number(-.infinity), 1]
        #expect(value.description == "[nan,-inf,1]")
    }

    @Test func writesNonFiniteNumbersAsNullInsteadOfTrapping() {
        // The policy (JSONWriter's doc comment): NaN and ±infinity are written as null.
        let value: JSONValue = [.number(.nan), .number(.infinity), .number(-.infinity), 1.5, ["loss": .number(.nan)]]
        #expect(JSONWriter.string(value) == #"[null,null,null,1.5,{"loss":null}]"#)
        var out: [UInt8] = []
        JSONWriter.writeNumber(.signalingNaN, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "null")
    }

        @Test func escapesOnlyWhatJSONRequires() {
        var out: [UInt8] = []
        JSONWriter.writeString("q\"b\\s/n\nr\rt\tb\u{8}f\u{C} \u{0}\u{1}\u{1F}\u{7F} é€😀", into: &out)
        let expected = #""q\"b\\s/n\nr\rt\tb\bf\f \u0000\u0001\u001f"# + "\u{7F} é€😀\""
        #expect(String(decoding: out, as: UTF8.self) == expected)
    }

    @Test func appendsToExistingBytes() {
        var out = Array("x=".utf8)
        JSONWriter.write(["k": "v"] as JSONValue, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"x={"k":"v"}"#)
    }

    @Test(arguments: [
        (0.0, "0"), (-0.0, "-0"), (1.0, "1"), (-42.0, "-42"), (1e15, "1000000000000000"),
        (9007199254740991.0, "9007199254740991"), (9007199254740992.0, "9007199254740992"),
        (1e18, "1000000000000000000"), (-4611686018427387904.0, "-4611686018427387904"), (9223372036854775808.0, "9.223372036854776e+18"), (1e19, "1e+19"),
        (0.1, "0.1"), (2.5, "2.5"), (-1.25e-7, "-1.25e-07"), (1e300, "1e+300"), (.leastNonzeroMagnitude, "5e-324"),
        (123456.789, "123456.789"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    ])
    func writesNumbersAsIntegersOrShortestRoundTrip(number: Double, text: String) throws {
        var out: [UInt8] = []
        JSONWriter.writeNumber(number, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == text)
        let back = try JSONParser.parse(out)
        #expect(back == .number(number))
        #expect(back.numberValue?.sign == number.sign)
    }

    @Test func rewritesCompactInputByteForByte() throws {
        let samples = [
            #"{"instruction":"Janet’s ducks lay 16 eggs","input":"","output":"a\nb #### 18","n":3,"f":0.5}"#,
            #"[null,true,false,-1,1e-07,"\u0001",{"":[]}]"#,
            #""\"quoted\" and \\ back""#,
        ]
        for text in samples {
            let value = try JSONParser.parse(text)
            #expect(JSONWriter.string(value) == text)
        }
    }

    @Test func roundTripsRandomValues() throws {
        var rng = RowsRandom(seed: 42)
        for _ in 0..<2_000 {
            let value = randomValue(depth: 0, using: &rng)
            let bytes = JSONWriter.encode(value)
            let parsed = try JSONParser.parse(bytes)
            #expect(parsed == value)
            #expect(JSONWriter.encode(parsed) == bytes)
        }
    }

    private func randomValue(depth: Int, using rng: inout RowsRandom) -> JSONValue {
        switch Int.random(in: 0..<(depth < 4 ? 7 : 4), using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .number(randomNumber(using: &rng))
        case 3: return .string(randomString(using: &rng))
        case 4, 5:
            return .array((0..<Int.random(in: 0...5, using: &rng)).map { _ in randomValue(depth: depth + 1, using: &rng) })
        default:
            var object = JSONObject()
            for k in 0..<Int.random(in: 0...5, using: &rng) {
                object[randomString(using: &rng) + "#\(k)"] = randomValue(depth: depth + 1, using: &rng)
            }
            return .object(object)
        }
    }

    private func randomNumber(using rng: inout RowsRandom) -> Double {
        switch Int.random(in: 0..<3, using: &rng) {
        case 0: return Double(Int.random(in: -1_000_000...1_000_000, using: &rng))
        case 1: return Double.random(in: -1...1, using: &rng)
        default:
            while true {
                let d = Double(bitPattern: rng.next())
                if d.isFinite { return d }
            }
        }
    }

    private func randomString(using rng: inout RowsRandom) -> String {
        var scalars = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...12, using: &rng) {
            let v: UInt32
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: v = UInt32.random(in: 0...0x7F, using: &rng)
            case 1: v = UInt32.random(in: 0x80...0xD7FF, using: &rng)
            case 2: v = UInt32.random(in: 0xE000...0xFFFF, using: &rng)
            default: v = UInt32.random(in: 0x10000...0x10FFFF, using: &rng)
            }
            scalars.append(Unicode.Scalar(v)!)
        }
        return String(scalars)
    }
}
