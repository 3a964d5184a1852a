// The error type of `JSONParser`, positioned by byte offset, line and column within the parsed input.

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
