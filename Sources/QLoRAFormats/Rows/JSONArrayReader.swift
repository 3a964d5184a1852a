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
    /// Default longest element held: 1 GiB (a longer one is an error, or skipped with `forEachElement(tooLong:_:)`).
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
    ///
    /// With `tooLong`, an element longer than `maxElementLength` is not an error: it is scanned as it streams past
    /// with nothing of it kept (memory stays bounded by the limit), `tooLong(lineNumber, length)` is called in its
    /// place, and reading goes on with the next element, as `LineReader` does for JSONL lines.
    public func forEachElement(
        tooLong: ((_ lineNumber: Int, _ length: Int) throws -> Void)? = nil,
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
        var skipped = 0                 // bytes of an overlong element already dropped (with `tooLong`)

        func fail(_ kind: ReaderError.Kind, _ line: Int) -> ReaderError {
            ReaderError(path: path, line: line, kind: kind)
        }

        /// Hands the finished element to `body`, or reports it to `tooLong` (or fails) when over the limit.
        func deliver(_ tail: UnsafeRawBufferPointer) throws {
            let length = skipped + tail.count
            defer {
                skipped = 0
                elementStart = -1
            }
            guard length > limit else { return try body(tail, elementLine) }
            guard let tooLong else { throw fail(.tooLong(limit: limit), elementLine) }
            try tooLong(elementLine, length)
        }

        while true {
            if i == input.count {
                if input.isAtEOF { break }
                var keep = elementStart >= 0 ? elementStart : i
                if tooLong != nil, elementStart >= 0, skipped > 0 || input.count - elementStart > limit {
                    skipped += input.count - elementStart
                    keep = input.count
                }
                let shift = try input.refill(keepingFrom: keep, line: elementStart >= 0 ? elementLine : line)
                i -= shift
                if elementStart >= 0 { elementStart = skipped > 0 ? 0 : elementStart - shift }
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
                try deliver(UnsafeRawBufferPointer(start: base + elementStart, count: i - elementStart))
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
                            // Nesting deeper than the element limit is refused (the bracket stack stays bounded
                            // even while an overlong element is skipped).
                            guard closers.count < limit else { throw fail(.tooLong(limit: limit), elementLine) }
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
                try deliver(UnsafeRawBufferPointer(start: base + elementStart, count: i - elementStart))
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
