// Byte-level helpers shared by the row readers: strict UTF-8 validation (Unicode 15, table 3-7) and
// word-at-a-time (SWAR) scans that let ASCII-heavy text skip eight bytes per step.

/// Strict UTF-8 checks over raw bytes; rejects overlong forms, UTF-8-encoded surrogates, code points
/// above U+10FFFF and truncated sequences.
enum UTF8Validation {
    /// Length (2...4) of the well-formed multi-byte sequence starting at `p[0]` (a byte >= 0x80),
    /// or 0 when the sequence is ill-formed or runs past `available` bytes.
    @inline(__always)
    static func sequenceLength(_ p: UnsafePointer<UInt8>, available: Int) -> Int {
        let b0 = p[0]
        switch b0 {
        case 0xC2...0xDF:
            guard available >= 2, isContinuation(p[1]) else { return 0 }
            return 2
        case 0xE0...0xEF:
            guard available >= 3 else { return 0 }
            let b1 = p[1]
            let lower: UInt8 = b0 == 0xE0 ? 0xA0 : 0x80     // 0xE0 0x80...0x9F is overlong
            let upper: UInt8 = b0 == 0xED ? 0x9F : 0xBF     // 0xED 0xA0...0xBF encodes surrogates
            guard b1 >= lower, b1 <= upper, isContinuation(p[2]) else { return 0 }
            return 3
        case 0xF0...0xF4:
            guard available >= 4 else { return 0 }
            let b1 = p[1]
            let lower: UInt8 = b0 == 0xF0 ? 0x90 : 0x80     // 0xF0 0x80...0x8F is overlong
            let upper: UInt8 = b0 == 0xF4 ? 0x8F : 0xBF     // above 0xF4 0x8F is > U+10FFFF
            guard b1 >= lower, b1 <= upper, isContinuation(p[2]), isContinuation(p[3]) else { return 0 }
            return 4
        default:
            return 0    // stray continuation byte, 0xC0/0xC1 (overlong), 0xF5...0xFF
        }
    }

    @inline(__always)
    static func isContinuation(_ byte: UInt8) -> Bool { byte & 0xC0 == 0x80 }

    /// Offset of the first byte of the first ill-formed sequence in `bytes`, or nil if all is valid.
    static func firstInvalidOffset(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard let raw = bytes.baseAddress else { return nil }
        let p = raw.assumingMemoryBound(to: UInt8.self)
        let n = bytes.count
        var i = 0
        while i < n {
            while i + 8 <= n, SWAR.load(p + i) & SWAR.highBits == 0 { i += 8 }
            guard i < n else { break }
            if p[i] < 0x80 { i += 1; continue }
            let len = sequenceLength(p + i, available: n - i)
            if len == 0 { return i }
            i += len
        }
        return nil
    }

    /// Appends the UTF-8 encoding of a Unicode scalar value (not a surrogate, <= 0x10FFFF).
    @inline(__always)
    static func append(scalar v: UInt32, to out: inout [UInt8]) {
        if v < 0x80 {
            out.append(UInt8(v))
        } else if v < 0x800 {
            out.append(UInt8(0xC0 | (v >> 6)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        } else if v < 0x10000 {
            out.append(UInt8(0xE0 | (v >> 12)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        } else {
            out.append(UInt8(0xF0 | (v >> 18)))
            out.append(UInt8(0x80 | ((v >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((v >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (v & 0x3F)))
        }
    }
}

/// SIMD-within-a-register tests on eight bytes at a time. Each `has…` returns non-zero exactly when
/// some byte of the word matches (the bit positions may be imprecise, presence is exact).
enum SWAR {
    static let ones: UInt64 = 0x0101_0101_0101_0101
    static let highBits: UInt64 = 0x8080_8080_8080_8080

    @inline(__always)
    static func load(_ p: UnsafePointer<UInt8>) -> UInt64 {
        UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
    }

    /// Non-zero when some byte equals zero.
    @inline(__always)
    static func hasZero(_ w: UInt64) -> UInt64 { (w &- ones) & ~w & highBits }

    /// Non-zero when some byte equals `byte`.
    @inline(__always)
    static func has(_ w: UInt64, _ byte: UInt8) -> UInt64 { hasZero(w ^ (ones &* UInt64(byte))) }

    /// The first index in `from..<end` whose byte is `a`, `b` or `c`, or `end` if none.
    @inline(__always)
    static func firstIndex(of a: UInt8, _ b: UInt8, _ c: UInt8,
                           in p: UnsafePointer<UInt8>, from: Int, to end: Int) -> Int {
        var i = from
        while i + 8 <= end {
            let w = load(p + i)
            let hits = has(w, a) | has(w, b) | has(w, c)
            if hits != 0 { return i + hits.trailingZeroBitCount >> 3 }   // lowest hit is exact
            i += 8
        }
        while i < end {
            let x = p[i]
            if x == a || x == b || x == c { return i }
            i += 1
        }
        return end
    }

    /// Non-zero when some byte is below `limit` (limit <= 128).
    @inline(__always)
    static func hasLess(_ w: UInt64, _ limit: UInt8) -> UInt64 { (w &- ones &* UInt64(limit)) & ~w & highBits }
}

/// Renders a byte for an error message: `'x'` for printable ASCII, `byte 0xNN` otherwise.
func describeByte(_ byte: UInt8) -> String {
    if byte >= 0x20 && byte < 0x7F {
        return "'\(Character(Unicode.Scalar(byte)))'"
    }
    let hex = String(byte, radix: 16, uppercase: true)
    return "byte 0x" + (hex.count == 1 ? "0" + hex : hex)
}
