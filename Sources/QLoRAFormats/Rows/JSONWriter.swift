// Compact, deterministic JSON output appended to byte arrays.

/// Writes compact, deterministic JSON: no whitespace, object keys in stored order, the minimal
/// escapes (`\" \\ \n \r \t \b \f`, other bytes below 0x20 as `\u00xx` with lowercase hex), non-ASCII
/// as raw UTF-8, `/` unescaped. Integral numbers below 2^63 in magnitude are written as exact
/// integers without a decimal point (`-0.0` as `-0`); other numbers use the shortest representation
/// that reads back to the same `Double` (e.g. `0.1`, `1e-07`, `1e+19`). `JSONParser.parse(JSONWriter.encode(v)) == v` for every finite value.
public enum JSONWriter {
    /// Appends the JSON text of `value` to `out`. Precondition: every number is finite.
    public static func write(_ value: JSONValue, into out: inout [UInt8]) {
        switch value {
        case .null:
            appendASCII("null", to: &out)
        case .bool(let b):
            appendASCII(b ? "true" : "false", to: &out)
        case .number(let d):
            writeNumber(d, into: &out)
        case .string(let s):
            writeString(s, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (k, element) in elements.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                write(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            write(object, into: &out)
        }
    }

    /// Appends the JSON text of `object` to `out`. Precondition: every number is finite.
    public static func write(_ object: JSONObject, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (k, pair) in object.pairs.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            writeString(pair.key, into: &out)
            out.append(UInt8(ascii: ":"))
            write(pair.value, into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    /// Appends `string` as a quoted, escaped JSON string.
    public static func writeString(_ string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if string.utf8.withContiguousStorageIfAvailable({ appendEscaped($0, to: &out) }) == nil {
            var copy = string
            copy.withUTF8 { appendEscaped($0, to: &out) }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends a JSON number. Precondition: `number` is finite.
    public static func writeNumber(_ number: Double, into out: inout [UInt8]) {
        precondition(number.isFinite, "JSON cannot represent \(number)")
        if number.magnitude < 9_223_372_036_854_775_808, number.rounded(.towardZero) == number {
            if number == 0 && number.sign == .minus {
                appendASCII("-0", to: &out)
            } else {
                appendInteger(Int64(number), to: &out)
            }
            return
        }
        // Swift's description is the shortest round-trip form, e.g. "0.1", "1e-07", "1.5e+300":
        // always valid JSON for finite values. Integral values reach here only at 2^63 and above,
        // printed in exponent form; a ".0" ending is dropped defensively all the same.
        var text = number.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        out.append(contentsOf: text.utf8)
    }

    /// The JSON text of `value` as bytes.
    public static func encode(_ value: JSONValue) -> [UInt8] {
        var out: [UInt8] = []
        write(value, into: &out)
        return out
    }

    /// The JSON text of `value` as a String.
    public static func string(_ value: JSONValue) -> String {
        String(decoding: encode(value), as: UTF8.self)
    }

    private static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var runStart = 0
        for k in 0..<bytes.count {
            let c = bytes[k]
            guard c < 0x20 || c == 0x22 || c == 0x5C else { continue }
            if k > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<k])) }
            runStart = k + 1
            out.append(UInt8(ascii: "\\"))
            switch c {
            case 0x22: out.append(UInt8(ascii: "\""))
            case 0x5C: out.append(UInt8(ascii: "\\"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "t"))
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            default:
                let hex: StaticString = "0123456789abcdef"
                out.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30,
                                        hex.utf8Start[Int(c >> 4)], hex.utf8Start[Int(c & 0xF)]])
            }
        }
        if bytes.count > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...])) }
    }

    private static func appendASCII(_ text: StaticString, to out: inout [UInt8]) {
        out.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    private static func appendInteger(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes of scratch, filled from the end
        withUnsafeMutableBytes(of: &digits) { buffer in
            var k = buffer.count
            repeat {
                k -= 1
                buffer[k] = UInt8(truncatingIfNeeded: magnitude % 10) + 0x30
                magnitude /= 10
            } while magnitude > 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[k...]))
        }
    }
}
