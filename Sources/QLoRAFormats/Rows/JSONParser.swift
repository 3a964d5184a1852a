// Strict RFC 8259 parser over raw bytes and its error type. Values and containers live here; string
// scanning with its UTF-8 validation and escapes is in JSONParser+Strings.swift.

/// Parses one JSON document (RFC 8259, strict) from bytes.
///
/// Accepts exactly one value with optional surrounding whitespace. Strings must be well-formed UTF-8
/// without unescaped control characters; `\uXXXX` surrogates must pair up; object keys must be unique
/// (exact code-point comparison); arrays and objects nest at most `maxDepth` deep. Numbers become
/// `Double`s, correctly rounded; a number beyond the `Double` range is `invalidNumber`. A byte order
/// mark is not accepted (strip it first, as the line readers do).
public enum JSONParser {
    /// The deepest nesting of arrays and objects accepted; the top-level container is depth 1.
    public static let maxDepth = 512

    /// Parses `bytes` as one JSON document.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONParseError(kind: .unexpectedEnd, offset: 0, line: 1, column: 1)
        }
        var parser = JSONByteParser(base.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        return try parser.parseDocument()
    }

    /// Parses `bytes` as one JSON document.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) -> JSONValue in try parse(raw) }
        }
        return try result.get()
    }

    /// Parses `bytes` as one JSON document; offsets are relative to the slice's start.
    public static func parse(_ bytes: ArraySlice<UInt8>) throws(JSONParseError) -> JSONValue {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONParseError) -> JSONValue in try parse(raw) }
        }
        return try result.get()
    }

    /// Parses the UTF-8 encoding of `text` as one JSON document.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue {
        var text = text
        let result = text.withUTF8 { buffer in
            Result { () throws(JSONParseError) -> JSONValue in try parse(UnsafeRawBufferPointer(buffer)) }
        }
        return try result.get()
    }
}

/// Why and where `JSONParser` rejected its input.
///
/// `offset` is the 0-based byte offset into the input; `line` is 1-based (lines end at `\n`);
/// `column` is the 1-based byte position within that line. When the input is one line of a larger
/// file, the file line is `firstLineOfInput + line - 1`.
public struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kinds of syntax error.
    public enum Kind: Equatable, Sendable {
        /// A string contains an ill-formed UTF-8 sequence; the position is its first byte.
        case invalidUTF8
        /// The input ended inside a value (or was empty); the position is the end of input.
        case unexpectedEnd
        /// A byte that cannot start or continue the expected token.
        case unexpectedCharacter(UInt8)
        /// A backslash escape other than `\" \\ \/ \b \f \n \r \t \uXXXX`; the position is the backslash.
        case invalidEscape
        /// A `\uXXXX` surrogate escape without its partner; the position is the first backslash.
        case loneSurrogate
        /// An unescaped byte below 0x20 inside a string; the position is that byte.
        case controlCharacterInString
        /// A malformed number, or one too large for a `Double`; the position is the number's first byte.
        case invalidNumber
        /// Non-whitespace after the top-level value; the position is its first byte.
        case trailingCharacters
        /// An object repeats a key; the position is the opening quote of the repeated key.
        case duplicateKey(String)
        /// Arrays/objects nest deeper than `JSONParser.maxDepth`; the position is the bracket too deep.
        case depthLimitExceeded
    }

    public let kind: Kind
    /// 0-based byte offset into the input.
    public let offset: Int
    /// 1-based line within the input.
    public let line: Int
    /// 1-based byte column within the line.
    public let column: Int

    public init(kind: Kind, offset: Int, line: Int, column: Int) {
        self.kind = kind
        self.offset = offset
        self.line = line
        self.column = column
    }

    /// Builds an error at `offset`, deriving line and column by scanning `input` up to it.
    init(_ kind: Kind, at offset: Int, in input: UnsafeRawBufferPointer) {
        var line = 1
        var lineStart = 0
        let end = min(offset, input.count)
        for i in 0..<end where input[i] == 0x0A {
            line += 1
            lineStart = i + 1
        }
        self.init(kind: kind, offset: offset, line: line, column: offset - lineStart + 1)
    }

    /// The message without position, e.g. "invalid UTF-8".
    public var message: String {
        switch kind {
        case .invalidUTF8: return "invalid UTF-8"
        case .unexpectedEnd: return "unexpected end of input"
        case .unexpectedCharacter(let b): return "unexpected \(describeByte(b))"
        case .invalidEscape: return "invalid escape sequence"
        case .loneSurrogate: return "unpaired surrogate in \\u escape"
        case .controlCharacterInString: return "unescaped control character in string"
        case .invalidNumber: return "invalid number"
        case .trailingCharacters: return "unexpected characters after the JSON value"
        case .duplicateKey(let key): return "duplicate key \"\(key)\""
        case .depthLimitExceeded: return "nesting deeper than \(JSONParser.maxDepth) levels"
        }
    }

    /// E.g. "invalid UTF-8 at line 1, column 17".
    public var description: String { "\(message) at line \(line), column \(column)" }
}

/// Recursive-descent parser state over one contiguous input. `i` is the read position.
struct JSONByteParser {
    let p: UnsafePointer<UInt8>
    let n: Int
    var i = 0
    /// Reused buffer for strings that contain escapes.
    var scratch: [UInt8] = []

    init(_ p: UnsafePointer<UInt8>, count: Int) {
        self.p = p
        self.n = count
    }

    func fail(_ kind: JSONParseError.Kind, at offset: Int) -> JSONParseError {
        JSONParseError(kind, at: offset, in: UnsafeRawBufferPointer(start: p, count: n))
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while i < n {
            let c = p[i]
            guard c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 else { return }
            i += 1
        }
    }

    mutating func parseDocument() throws(JSONParseError) -> JSONValue {
        let value = try parseValue(depth: 0)
        skipWhitespace()
        if i < n { throw fail(.trailingCharacters, at: i) }
        return value
    }

    /// Parses the value starting at the next non-whitespace byte; `depth` counts enclosing containers.
    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        skipWhitespace()
        guard i < n else { throw fail(.unexpectedEnd, at: n) }
        switch p[i] {
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        case let c: throw fail(.unexpectedCharacter(c), at: i)
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let lp = literal.utf8Start
        for k in 1..<literal.utf8CodeUnitCount {
            guard i + k < n else { throw fail(.unexpectedEnd, at: n) }
            let c = p[i + k]
            if c != lp[k] { throw fail(.unexpectedCharacter(c), at: i + k) }
        }
        i += literal.utf8CodeUnitCount
    }

    mutating func parseArray(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > JSONParser.maxDepth { throw fail(.depthLimitExceeded, at: i) }
        i += 1
        skipWhitespace()
        guard i < n else { throw fail(.unexpectedEnd, at: n) }
        var elements: [JSONValue] = []
        if p[i] == UInt8(ascii: "]") {
            i += 1
            return .array(elements)
        }
        while true {
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            guard i < n else { throw fail(.unexpectedEnd, at: n) }
            switch p[i] {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "]"): i += 1; return .array(elements)
            case let c: throw fail(.unexpectedCharacter(c), at: i)
            }
        }
    }

    mutating func parseObject(depth: Int) throws(JSONParseError) -> JSONValue {
        if depth > JSONParser.maxDepth { throw fail(.depthLimitExceeded, at: i) }
        i += 1
        skipWhitespace()
        guard i < n else { throw fail(.unexpectedEnd, at: n) }
        if p[i] == UInt8(ascii: "}") {
            i += 1
            return .object(JSONObject())
        }
        var pairs: [(key: String, value: JSONValue)] = []
        pairs.reserveCapacity(8)    // one allocation for typical rows instead of growing 1, 2, 4, 8
        var seen: Set<String>? = nil
        while true {
            skipWhitespace()
            guard i < n else { throw fail(.unexpectedEnd, at: n) }
            guard p[i] == UInt8(ascii: "\"") else { throw fail(.unexpectedCharacter(p[i]), at: i) }
            let keyOffset = i
            let key = try parseString()
            if isDuplicate(key, in: pairs, seen: &seen) { throw fail(.duplicateKey(key), at: keyOffset) }
            skipWhitespace()
            guard i < n else { throw fail(.unexpectedEnd, at: n) }
            guard p[i] == UInt8(ascii: ":") else { throw fail(.unexpectedCharacter(p[i]), at: i) }
            i += 1
            let value = try parseValue(depth: depth)
            pairs.append((key: key, value: value))
            skipWhitespace()
            guard i < n else { throw fail(.unexpectedEnd, at: n) }
            switch p[i] {
            case UInt8(ascii: ","): i += 1
            case UInt8(ascii: "}"): i += 1; return .object(JSONObject(pairs))
            case let c: throw fail(.unexpectedCharacter(c), at: i)
            }
        }
    }

    /// Linear scan for small objects; past 16 keys a hash set of the keys filters candidates (it
    /// hashes canonical equivalence, so a hit is confirmed by exact comparison).
    @inline(__always)
    func isDuplicate(_ key: String, in pairs: [(key: String, value: JSONValue)],
                     seen: inout Set<String>?) -> Bool {
        if pairs.count < 16 {
            for pair in pairs where sameScalars(pair.key, key) { return true }
            return false
        }
        if seen == nil { seen = Set(pairs.lazy.map(\.key)) }
        if seen!.insert(key).inserted { return false }
        return pairs.contains { sameScalars($0.key, key) }
    }

    /// Parses a number per the RFC grammar. Up to 19 significant digits with a decimal exponent in
    /// ±22 and a mantissa below 2^53 convert exactly with one multiplication or division (Clinger's
    /// fast path); anything else goes through the standard library's correctly rounded conversion.
    mutating func parseNumber() throws(JSONParseError) -> Double {
        let start = i
        var negative = false
        if p[i] == UInt8(ascii: "-") {
            negative = true
            i += 1
        }
        guard i < n else { throw fail(.invalidNumber, at: start) }
        var mantissa: UInt64 = 0
        var digits = 0
        var exact = true
        var exponent = 0
        let first = p[i]
        if first == UInt8(ascii: "0") {
            i += 1
            if i < n, isDigit(p[i]) { throw fail(.invalidNumber, at: start) }
        } else if isDigit(first) {
            while i < n, isDigit(p[i]) {
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(p[i] &- 0x30)
                    digits += 1
                } else {
                    exact = false
                }
                i += 1
            }
        } else {
            throw fail(.invalidNumber, at: start)
        }
        if i < n, p[i] == UInt8(ascii: ".") {
            i += 1
            guard i < n, isDigit(p[i]) else { throw fail(.invalidNumber, at: start) }
            while i < n, isDigit(p[i]) {
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(p[i] &- 0x30)
                    digits += 1
                    exponent -= 1
                } else {
                    exact = false
                }
                i += 1
            }
        }
        if i < n, p[i] | 0x20 == UInt8(ascii: "e") {
            i += 1
            var expNegative = false
            if i < n, p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") {
                expNegative = p[i] == UInt8(ascii: "-")
                i += 1
            }
            guard i < n, isDigit(p[i]) else { throw fail(.invalidNumber, at: start) }
            var e = 0
            while i < n, isDigit(p[i]) {
                if e < 100_000 { e = e * 10 + Int(p[i] &- 0x30) }
                i += 1
            }
            exponent += expNegative ? -e : e
        }
        if exact && mantissa <= 1 << 53 && exponent >= -22 && exponent <= 22 {
            var value = Double(mantissa)
            if exponent < 0 {
                value /= exactPowerOfTen(-exponent)
            } else if exponent > 0 {
                value *= exactPowerOfTen(exponent)
            }
            return negative ? -value : value
        }
        let text = String(decoding: UnsafeBufferPointer(start: p + start, count: i - start), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw fail(.invalidNumber, at: start) }
        return value
    }
}

@inline(__always)
func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }

/// 10^k for 0 <= k <= 22, all exactly representable as Double.
@inline(__always)
func exactPowerOfTen(_ k: Int) -> Double {
    var result = 1.0
    var base = 10.0
    var k = k
    // Products of exact powers of ten below 10^22 stay exact, so square-and-multiply is exact too.
    while k > 0 {
        if k & 1 == 1 { result *= base }
        base *= base
        k >>= 1
    }
    return result
}
