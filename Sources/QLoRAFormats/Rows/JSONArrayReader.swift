// Streams the elements of a top-level JSON array without loading the file.

/// Finds the byte range of each element of a file holding one top-level JSON array, reading in
/// buffered chunks so files of any size stream in bounded memory (one element at a time).
///
/// The scan tracks strings, escapes and bracket nesting only: it checks the array's own syntax
/// (opening `[`, commas, closing `]`, nothing after it, brackets balanced and matched within each
/// element) and leaves each element's content to `JSONParser`. A UTF-8 byte order mark is skipped.
/// All errors are `ReaderError`s with the line they concern.
public struct JSONArrayReader {
    /// Default read-ahead buffer size: 1 MiB.
    public static let defaultBufferSize = 1 << 20
    /// Default longest accepted element: 1 GiB.
    public static let defaultMaxElementLength = 1 << 30

    private let input: InputBuffer

    /// Reads the array from `source`; `path` names the file in errors.
    public init(source: any ByteSource, path: String, bufferSize: Int = JSONArrayReader.defaultBufferSize,
                maxElementLength: Int = JSONArrayReader.defaultMaxElementLength) {
        input = InputBuffer(source: source, path: path, capacity: bufferSize, maxRetained: maxElementLength)
    }

    /// Opens `path` with `openByteSource` (gzip for `.gz`) and reads its array.
    public init(path: String, bufferSize: Int = JSONArrayReader.defaultBufferSize,
                maxElementLength: Int = JSONArrayReader.defaultMaxElementLength) throws(ReaderError) {
        self.init(source: try openByteSource(path: path), path: path, bufferSize: bufferSize,
                  maxElementLength: maxElementLength)
    }

    /// The file's path as given.
    public var path: String { input.path }

    /// Bytes taken from the source so far (decompressed bytes for gzip), for progress reports.
    public var bytesRead: Int { input.bytesRead }

    /// How far into the file on disk reading has got (compressed bytes for gzip), for progress against its size.
    public var fileBytesRead: Int { input.fileOffset }

    private enum Phase {
        case beforeArray, firstElement, nextElement, scalar, element, afterElement, afterArray
    }

    /// Calls `body(element, lineNumber)` for each element in order, with the element's bytes (valid
    /// only during the call; leading/trailing whitespace excluded) and the line where it starts.
    /// A JSON parse error at `err.line` within the element is at file line `lineNumber + err.line - 1`.
    /// Reads the file once. Errors from `body` propagate unchanged; a `ReaderError` from the source
    /// (truncated gzip, say) gains the line being read.
    public func forEachElement(
        _ body: (_ element: UnsafeRawBufferPointer, _ lineNumber: Int) throws -> Void
    ) throws {
        let input = self.input
        precondition(!input.started, "JSONArrayReader.forEachElement reads the file once")
        input.started = true
        let path = input.path
        let limit = input.maxRetained
        var i = try input.byteOrderMarkLength()
        var line = 1
        var phase = Phase.beforeArray
        var elementStart = -1           // buffer index of the current element's first byte
        var elementLine = 0
        var stringLine = 0              // where the string being scanned began
        var inString = false
        var escaped = false
        var closers: [UInt8] = []       // closing brackets the current element still owes

        func fail(_ kind: ReaderError.Kind, _ line: Int) -> ReaderError {
            ReaderError(path: path, line: line, kind: kind)
        }

        while true {
            if i == input.count {
                if input.isAtEOF { break }
                let keep = elementStart >= 0 ? elementStart : i
                let shift = try input.refill(keepingFrom: keep, line: elementStart >= 0 ? elementLine : line)
                i -= shift
                if elementStart >= 0 { elementStart -= shift }
                continue
            }
            let base = input.base.assumingMemoryBound(to: UInt8.self)
            let count = input.count
            let c = base[i]
            switch phase {
            case .beforeArray, .afterElement, .afterArray, .firstElement, .nextElement:
                if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 {
                    if c == 0x0A { line += 1 }
                    i += 1
                    continue
                }
                switch phase {
                case .beforeArray:
                    guard c == UInt8(ascii: "[") else { throw fail(.notAnArray(found: c), line) }
                    phase = .firstElement
                    i += 1
                case .afterElement:
                    switch c {
                    case UInt8(ascii: ","): phase = .nextElement
                    case UInt8(ascii: "]"): phase = .afterArray
                    default: throw fail(.unexpectedCharacter(c, expected: "',' or ']'"), line)
                    }
                    i += 1
                case .afterArray:
                    throw fail(.trailingCharacters(c), line)
                default:    // .firstElement, .nextElement
                    switch c {
                    case UInt8(ascii: "]"):
                        if phase == .nextElement { throw fail(.trailingComma, line) }
                        phase = .afterArray
                        i += 1
                        continue
                    case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: ":"):
                        throw fail(.unexpectedCharacter(c, expected: "an array element"), line)
                    case UInt8(ascii: "["), UInt8(ascii: "{"):
                        closers.removeAll(keepingCapacity: true)
                        closers.append(c + 2)   // '[' + 2 == ']', '{' + 2 == '}'
                        phase = .element
                    case UInt8(ascii: "\""):
                        closers.removeAll(keepingCapacity: true)
                        inString = true
                        stringLine = line
                        phase = .element
                    default:
                        phase = .scalar
                    }
                    elementStart = i
                    elementLine = line
                    i += 1
                }
            case .scalar:
                while i < count, !isScalarEnd(base[i]) { i += 1 }
                if i == count { continue }
                if i - elementStart > limit { throw fail(.tooLong(limit: limit), elementLine) }
                try body(UnsafeRawBufferPointer(start: base + elementStart, count: i - elementStart), elementLine)
                elementStart = -1
                phase = .afterElement
            case .element:
                var finished = false
                scan: while i < count {
                    if inString {
                        if escaped {
                            escaped = false
                            if base[i] == 0x0A { line += 1 }
                            i += 1
                            continue
                        }
                        i = SWAR.firstIndex(of: 0x22, 0x5C, 0x0A, in: base, from: i, to: count)
                        if i == count { break scan }
                        switch base[i] {
                        case 0x0A: line += 1
                        case UInt8(ascii: "\\"): escaped = true
                        case UInt8(ascii: "\""):
                            inString = false
                            if closers.isEmpty {
                                i += 1
                                finished = true
                                break scan
                            }
                        default: break
                        }
                    } else {
                        let b = base[i]
                        switch b {
                        case UInt8(ascii: "\""):
                            inString = true
                            stringLine = line
                        case UInt8(ascii: "["), UInt8(ascii: "{"):
                            closers.append(b + 2)
                        case UInt8(ascii: "]"), UInt8(ascii: "}"):
                            guard closers.last == b else {
                                throw fail(.unexpectedCharacter(b, expected: describeByte(closers.last!)), line)
                            }
                            closers.removeLast()
                            if closers.isEmpty {
                                i += 1
                                finished = true
                                break scan
                            }
                        case 0x0A: line += 1
                        default: break
                        }
                    }
                    i += 1
                }
                guard finished else { continue }
                if i - elementStart > limit { throw fail(.tooLong(limit: limit), elementLine) }
                try body(UnsafeRawBufferPointer(start: base + elementStart, count: i - elementStart), elementLine)
                elementStart = -1
                phase = .afterElement
            }
        }
        switch phase {
        case .afterArray: return
        case .beforeArray: throw fail(.notAnArray(found: nil), line)
        case .element where inString: throw fail(.unterminatedString, stringLine)
        default: throw fail(.unterminatedArray, line)
        }
    }
}

/// Bytes that end a number or literal element: whitespace, structural characters, a quote.
@inline(__always)
private func isScalarEnd(_ c: UInt8) -> Bool {
    switch c {
    case 0x20, 0x0A, 0x0D, 0x09, UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"),
         UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: "\""):
        return true
    default:
        return false
    }
}
