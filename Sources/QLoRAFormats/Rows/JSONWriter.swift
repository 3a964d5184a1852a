// Compact, deterministic JSON output appended to byte arrays.

/// Writes compact, deterministic JSON: no whitespace, object keys in stored order, the minimal
/// escapes (`\" \\ \n \r \t \b \f`, other bytes below 0x20 as `\u00xx` with lowercase hex), non-ASCII
/// as raw UTF-8, `/` unescaped. Integral numbers below 2^63 in magnitude are written as exact
/// integers without a decimal point (`-0.0` as `-0`); other numbers use the shortest representation
/// that reads back to the same `Double` (e.g. `0.1`, `1e-07`, `1e+19`). `JSONParser.parse(JSONWriter.encode(v)) == v` for every finite value.
/// JSON has no NaN or infinity: non-finite numbers are written as `null` (as JavaScript's
/// `JSON.stringify` does), so writing never fails; readers of metrics see a missing value.
public enum JSONWriter {
    /// Appends the JSON text of `value` to `out` (non-finite numbers as `null`).
    public static func write(_ value: JSONValue, into out: inout [UInt8]) {
        append(value, to: &out, lenient: false)
    }

    /// Appends the JSON text of `object` to `out` (non-finite numbers as `null`).
    public static func write(_ object: JSONObject, into out: inout [UInt8]) {
        append(object, to: &out, lenient: false)
    }

    /// `lenient` writes non-finite numbers as `nan`/`inf` (not JSON) instead of `null`: for
    /// `description`, which shows what a hand-built value holds.
    private static func append(_ value: JSONValue, to out: inout [UInt8], lenient: Bool) {
        switch value {
        case .null:
            appendASCII("null", to: &out)
        case .bool(let b):
            appendASCII(b ? "true" : "false", to: &out)
        case .number(let d):
            if lenient && !d.isFinite {
                out.append(contentsOf: d.description.utf8)
            } else {
                writeNumber(d, into: &out)
            }
        case .string(let s):
            writeString(s, into: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (k, element) in elements.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                append(element, to: &out, lenient: lenient)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            append(object, to: &out, lenient: lenient)
        }
    }

    private static func append(_ object: JSONObject, to out: inout [UInt8], lenient: Bool) {
        out.append(UInt8(ascii: "{"))
        for (k, pair) in object.pairs.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            writeString(pair.key, into: &out)
            out.append(UInt8(ascii: ":"))
            append(pair.value, to: &out, lenient: lenient)
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

    /// Appends a JSON number; `null` for NaN and ±infinity, which JSON cannot represent.
    public static func writeNumber(_ number: Double, into out: inout [UInt8]) {
        guard number.isFinite else {
            appendASCII("null", to: &out)
            return
        }
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

    /// Like `string`, but non-finite numbers appear as `nan`/`inf` instead of `null`.
    static func debugString(_ value: JSONValue) -> String {
        var out: [UInt8] = []
        append(value, to: &out, lenient: true)
        return String(decoding: out, as: UTF8.self)
    }

    private static func appendEscaped(_ bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        guard let p = bytes.baseAddress else { return }
        let n = bytes.count
        var runStart = 0
        var k = 0
        while true {
            // Skip eight bytes at a time while none needs escaping.
            while k + 8 <= n {
                let w = SWAR.load(p + k)
                let hits = SWAR.hasLess(w, 0x20) | SWAR.has(w, 0x22) | SWAR.has(w, 0x5C)
                if hits != 0 {
                    k += hits.trailingZeroBitCount >> 3
                    break
                }
                k += 8
            }
            guard k < n else { break }
            let c = p[k]
            guard c < 0x20 || c == 0x22 || c == 0x5C else {
                k += 1
                continue
            }
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
                out.append(UInt8(ascii: "u"))
                out.append(0x30)
                out.append(0x30)
                out.append(hex.utf8Start[Int(c >> 4)])
                out.append(hex.utf8Start[Int(c & 0xF)])
            }
            k += 1
        }
        if n > runStart { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...])) }
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
