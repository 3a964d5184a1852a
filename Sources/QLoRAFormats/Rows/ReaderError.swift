// Errors of the byte sources and the streaming row readers; every one names the file.

/// A failure opening, reading or scanning a data file. Every error carries the path; syntax errors
/// also carry the 1-based line. `description` reads "path:line: message" or "path: message".
public struct ReaderError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Kind: Equatable, Sendable {
        /// `open` failed; `reason` is the system's message (strerror), e.g. "No such file or directory".
        case cannotOpen(reason: String)
        /// `read` failed; `reason` is the system's message.
        case readFailed(reason: String)
        /// A `.gz` file that does not start with the gzip magic bytes.
        case notGzip
        /// gzip data that fails to inflate or fails its CRC/length check; `reason` is zlib's message.
        case corruptGzip(reason: String)
        /// gzip data that ends before its end-of-stream trailer.
        case truncatedGzip
        /// A line, record or array element longer than the configured limit (bytes).
        case tooLong(limit: Int)
        /// The first non-whitespace byte of a JSON array file is not `[` (nil: the file is empty).
        case notAnArray(found: UInt8?)
        /// The file ended before the top-level array's closing `]`.
        case unterminatedArray
        /// The file ended inside a string that starts on the reported line.
        case unterminatedString
        /// A byte that does not fit the array syntax, e.g. a missing comma; `expected` describes what fits.
        case unexpectedCharacter(UInt8, expected: String)
        /// A comma directly before the closing `]`.
        case trailingComma
        /// Non-whitespace after the top-level array's closing `]`.
        case trailingCharacters(UInt8)
        /// The file ended inside a quoted CSV field that starts on the reported line.
        case unterminatedQuotedField
        /// A `"` inside a CSV field that did not start with a quote.
        case quoteInUnquotedField
        /// Something other than `,` or a line end after a quoted CSV field's closing quote.
        case characterAfterClosingQuote(UInt8)
        /// A record that is not well-formed UTF-8.
        case invalidUTF8
    }

    /// The file the error is about, as given by the caller.
    public let path: String
    /// The 1-based line the error is about, nil for errors about the file as a whole.
    public let line: Int?
    public let kind: Kind

    public init(path: String, line: Int? = nil, kind: Kind) {
        self.path = path
        self.line = line
        self.kind = kind
    }

    /// The message without location.
    public var message: String {
        switch kind {
        case .cannotOpen(let reason): return "cannot open: \(reason)"
        case .readFailed(let reason): return "read failed: \(reason)"
        case .notGzip: return "not gzip data (wrong magic bytes)"
        case .corruptGzip(let reason): return "corrupt gzip data: \(reason)"
        case .truncatedGzip: return "truncated gzip data (unexpected end of file)"
        case .tooLong(let limit): return "a single line, record or array element exceeds \(limit) bytes"
        case .notAnArray(let found):
            return "top-level value is not an array (found \(found.map(describeByte) ?? "end of file"))"
        case .unterminatedArray: return "end of file inside the top-level array"
        case .unterminatedString: return "unterminated string"
        case .unexpectedCharacter(let byte, let expected): return "unexpected \(describeByte(byte)), expected \(expected)"
        case .trailingComma: return "trailing comma before ']'"
        case .trailingCharacters(let byte): return "unexpected \(describeByte(byte)) after the top-level array"
        case .unterminatedQuotedField: return "unterminated quoted field"
        case .quoteInUnquotedField: return "'\"' inside an unquoted field"
        case .characterAfterClosingQuote(let byte): return "unexpected \(describeByte(byte)) after a closing quote"
        case .invalidUTF8: return "invalid UTF-8"
        }
    }

    public var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }
}
