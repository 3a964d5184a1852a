// String scanning for JSONByteParser: a word-at-a-time fast path over plain ASCII, strict UTF-8
// validation of everything else, and escape decoding (including UTF-16 surrogate pairs).

extension JSONByteParser {
    /// Parses the string whose opening quote is at `i`; leaves `i` after the closing quote.
    ///
    /// Strings without escapes are decoded straight from the input; the first escape switches to
    /// copying runs into `scratch`. Bytes are validated here, so `String(decoding:)` never repairs.
    mutating func parseString() throws(JSONParseError) -> String {
        i += 1
        let start = i
        var runStart = i
        var usesScratch = false
        while true {
            while i + 8 <= n {
                let w = SWAR.load(p + i)
                let special = SWAR.has(w, 0x22) | SWAR.has(w, 0x5C) | SWAR.hasLess(w, 0x20) | (w & SWAR.highBits)
                if special != 0 {
                    // The lowest flagged byte is exact for each test, hence for their union.
                    i += special.trailingZeroBitCount >> 3
                    break
                }
                i += 8
            }
            guard i < n else { throw fail(.unexpectedEnd, at: n) }
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                let s: String
                if usesScratch {
                    scratch.append(contentsOf: UnsafeBufferPointer(start: p + runStart, count: i - runStart))
                    s = String(decoding: scratch, as: UTF8.self)
                } else {
                    s = String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)
                }
                i += 1
                return s
            }
            if c == UInt8(ascii: "\\") {
                if !usesScratch {
                    usesScratch = true
                    scratch.removeAll(keepingCapacity: true)
                }
                scratch.append(contentsOf: UnsafeBufferPointer(start: p + runStart, count: i - runStart))
                try parseEscape()
                runStart = i
                continue
            }
            if c < 0x20 { throw fail(.controlCharacterInString, at: i) }
            if c < 0x80 {
                i += 1
                continue
            }
            let length = UTF8Validation.sequenceLength(p + i, available: n - i)
            if length == 0 { throw fail(.invalidUTF8, at: i) }
            i += length
        }
    }

    /// Decodes the escape whose backslash is at `i` into `scratch`; leaves `i` after it.
    mutating func parseEscape() throws(JSONParseError) {
        let escapeStart = i
        guard i + 1 < n else { throw fail(.unexpectedEnd, at: n) }
        let decoded: UInt8
        switch p[i + 1] {
        case UInt8(ascii: "\""): decoded = 0x22
        case UInt8(ascii: "\\"): decoded = 0x5C
        case UInt8(ascii: "/"): decoded = 0x2F
        case UInt8(ascii: "b"): decoded = 0x08
        case UInt8(ascii: "f"): decoded = 0x0C
        case UInt8(ascii: "n"): decoded = 0x0A
        case UInt8(ascii: "r"): decoded = 0x0D
        case UInt8(ascii: "t"): decoded = 0x09
        case UInt8(ascii: "u"):
            try parseUnicodeEscape()
            return
        default:
            throw fail(.invalidEscape, at: escapeStart)
        }
        scratch.append(decoded)
        i += 2
    }

    /// `\uXXXX`, possibly the high half of a surrogate pair that must be followed by `\uXXXX` low half.
    mutating func parseUnicodeEscape() throws(JSONParseError) {
        let escapeStart = i
        let unit = try hex4(at: i + 2, escapeStart: escapeStart)
        i += 6
        var scalar = unit
        switch unit {
        case 0xD800...0xDBFF:
            guard i < n else { throw fail(.unexpectedEnd, at: n) }
            guard p[i] == UInt8(ascii: "\\") else { throw fail(.loneSurrogate, at: escapeStart) }
            guard i + 1 < n else { throw fail(.unexpectedEnd, at: n) }
            guard p[i + 1] == UInt8(ascii: "u") else { throw fail(.loneSurrogate, at: escapeStart) }
            let low = try hex4(at: i + 2, escapeStart: i)
            guard (0xDC00...0xDFFF).contains(low) else { throw fail(.loneSurrogate, at: escapeStart) }
            i += 6
            scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
        case 0xDC00...0xDFFF:
            throw fail(.loneSurrogate, at: escapeStart)
        default:
            break
        }
        UTF8Validation.append(scalar: scalar, to: &scratch)
    }

    /// Four hex digits at `j`; a non-hex digit is `invalidEscape` at the escape's backslash.
    func hex4(at j: Int, escapeStart: Int) throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for k in 0..<4 {
            guard j + k < n else { throw fail(.unexpectedEnd, at: n) }
            let c = p[j + k]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw fail(.invalidEscape, at: escapeStart)
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }
}
