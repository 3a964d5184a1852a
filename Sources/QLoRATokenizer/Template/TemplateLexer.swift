// Tokenizer for the Jinja2 subset, replicating jinja2 3.1's lexer with the settings transformers
// uses for chat templates: trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False and the
// default delimiters `{% %}`, `{{ }}`, `{# #}`.
//
// Whitespace rules, exactly as jinja2 applies them:
// - A tag opened with `-` (`{%-`, `{{-`, `{#-`) removes all whitespace (newlines included) before it.
// - lstrip_blocks: before a block or comment tag not opened with `-` or `+`, the spaces and tabs
//   between the start of its line and the tag are removed. "Start of line" means after a newline in
//   the preceding text, or at the start of the text when the previous tag ended with a newline
//   (or at the start of the template).
// - A tag closed with `-` (`-%}`, `-}}`, `-#}`) removes all whitespace after it.
// - trim_blocks: the first newline after a block or comment tag closed without `-` or `+` is removed.
// - `{%+` disables lstrip for that tag; `+%}` disables trim_blocks for that tag.
// - One trailing newline at the end of the template is dropped; `\r\n` and `\r` become `\n`.

struct TemplateToken: Sendable {
    enum Kind: Sendable, Equatable {
        case data(String)
        case variableBegin
        case variableEnd
        case blockBegin
        case blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case eof
    }

    let kind: Kind
    let line: Int
}

struct TemplateLexerOptions: Sendable {
    var trimBlocks = true
    var lstripBlocks = true
}

struct TemplateLexer {
    private let src: [Unicode.Scalar]
    private let name: String
    private let options: TemplateLexerOptions
    private var pos = 0
    private var line = 1
    /// Source position up to which `line` has been counted.
    private var linePos = 0
    private var lineStarting = true
    private var tokens: [TemplateToken] = []

    init(_ source: String, name: String, options: TemplateLexerOptions = TemplateLexerOptions()) {
        // Normalize newlines and drop one trailing newline (keep_trailing_newline=False).
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(source.unicodeScalars.count)
        var it = source.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = it.next()
        while let c = pending {
            pending = it.next()
            if c == "\r" {
                scalars.append("\n")
                if pending == "\n" { pending = it.next() }
            } else {
                scalars.append(c)
            }
        }
        if scalars.last == "\n" { scalars.removeLast() }
        self.src = scalars
        self.name = name
        self.options = options
    }

    static func tokenize(
        _ source: String, name: String, options: TemplateLexerOptions = TemplateLexerOptions()
    ) throws(TemplateError) -> [TemplateToken] {
        var lexer = TemplateLexer(source, name: name, options: options)
        try lexer.run()
        return lexer.tokens
    }

    // MARK: - Helpers

    private func error(_ message: String, line: Int) -> TemplateError {
        TemplateError(kind: .syntax, templateName: name, line: line, message: message)
    }

    /// Advances the line counter to source position `p`.
    private mutating func countLines(to p: Int) {
        if p > linePos {
            var i = linePos
            while i < p {
                if src[i] == "\n" { line += 1 }
                i += 1
            }
            linePos = p
        }
    }

    private func at(_ p: Int, _ s: String) -> Bool {
        var i = p
        for c in s.unicodeScalars {
            if i >= src.count || src[i] != c { return false }
            i += 1
        }
        return true
    }

    private func string(_ a: Int, _ b: Int) -> String {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: src[a..<b])
        return String(s)
    }

    /// Python's `\s` (str patterns): Unicode whitespace.
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x20, 0x1C...0x1F, 0x85, 0xA0: return true
        case 0..<0x80: return false
        default: return c.properties.isWhitespace
        }
    }

    private func skipSpace(from p: Int) -> Int {
        var i = p
        while i < src.count, Self.isSpace(src[i]) { i += 1 }
        return i
    }

    // MARK: - Root state

    private enum TagKind { case comment, block, variable, raw }

    private mutating func run() throws(TemplateError) {
        while pos < src.count {
            // Find the earliest tag opener from `pos`.
            var i = pos
            var found: (start: Int, kind: TagKind, signEnd: Int, sign: Unicode.Scalar?)?
            while i + 1 < src.count {
                if src[i] == "{" {
                    let n = src[i + 1]
                    var kind: TagKind?
                    if n == "#" { kind = .comment } else if n == "%" { kind = .block } else if n == "{" { kind = .variable }
                    if var k = kind {
                        var signEnd = i + 2
                        var sign: Unicode.Scalar?
                        if signEnd < src.count, src[signEnd] == "-" || src[signEnd] == "+" {
                            sign = src[signEnd]
                            signEnd += 1
                        }
                        if k == .block, let rawEnd = matchRawBegin(at: i) {
                            k = .raw
                            signEnd = rawEnd
                        }
                        found = (i, k, signEnd, sign)
                        break
                    }
                }
                i += 1
            }
            guard let tag = found else {
                countLines(to: pos)
                emit(.data(string(pos, src.count)), line: line)
                pos = src.count
                break
            }

            // Text before the tag, with whitespace control applied.
            var textEnd = tag.start
            if tag.sign == "-" {
                while textEnd > pos, Self.isSpace(src[textEnd - 1]) { textEnd -= 1 }
            } else if tag.sign != "+", options.lstripBlocks, tag.kind != .variable {
                var lPos = textEnd
                while lPos > pos, src[lPos - 1] != "\n" { lPos -= 1 }
                if lPos > pos || lineStarting {
                    var allSpace = lPos < tag.start
                    var j = lPos
                    while j < tag.start {
                        if !Self.isSpace(src[j]) {
                            allSpace = false
                            break
                        }
                        j += 1
                    }
                    if allSpace { textEnd = lPos }
                }
            }
            if textEnd > pos {
                countLines(to: pos)
                emit(.data(string(pos, textEnd)), line: line)
            }
            countLines(to: tag.start)
            let tagLine = line
            pos = tag.signEnd
            lineStarting = src[pos - 1] == "\n"

            switch tag.kind {
            case .comment:
                try lexComment(line: tagLine)
            case .raw:
                try lexRaw(line: tagLine)
            case .block:
                emit(.blockBegin, line: tagLine)
                try lexTag(isBlock: true, openLine: tagLine)
            case .variable:
                emit(.variableBegin, line: tagLine)
                try lexTag(isBlock: false, openLine: tagLine)
            }
        }
        countLines(to: src.count)
        emit(.eof, line: line)
    }

    private mutating func emit(_ kind: TemplateToken.Kind, line: Int) {
        tokens.append(TemplateToken(kind: kind, line: line))
    }

    /// Matches `{%[-+]?\s*raw\s*(-%}\s*|%})` at `p`; returns the end position.
    private func matchRawBegin(at p: Int) -> Int? {
        var i = p + 2
        if i < src.count, src[i] == "-" || src[i] == "+" { i += 1 }
        i = skipSpace(from: i)
        guard at(i, "raw") else { return nil }
        i = skipSpace(from: i + 3)
        if at(i, "-%}") { return skipSpace(from: i + 3) }
        if at(i, "%}") { return i + 2 }
        return nil
    }

    /// Matches a block end at `p` (`+%}`, `-%}\s*`, or `%}` plus one newline with trim_blocks).
    private func matchBlockEnd(at p: Int, close: String) -> Int? {
        let closeLen = close.unicodeScalars.count
        if src[p] == "+", at(p + 1, close) { return p + 1 + closeLen }
        if src[p] == "-", at(p + 1, close) { return skipSpace(from: p + 1 + closeLen) }
        if at(p, close) {
            var e = p + closeLen
            if options.trimBlocks, e < src.count, src[e] == "\n" { e += 1 }
            return e
        }
        return nil
    }

    private mutating func lexComment(line openLine: Int) throws(TemplateError) {
        var i = pos
        while i < src.count {
            // The regex `(.*?)(\+#}|\-#}\s*|#}\n?)` matches at the earliest position.
            if src[i] == "+" || src[i] == "-" || src[i] == "#", let end = matchBlockEnd(at: i, close: "#}") {
                pos = end
                lineStarting = src[end - 1] == "\n"
                return
            }
            i += 1
        }
        throw error("missing end of comment tag (comment opened here)", line: openLine)
    }

    private mutating func lexRaw(line openLine: Int) throws(TemplateError) {
        // Body up to `{%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?)`.
        var i = pos
        while i + 1 < src.count {
            if src[i] == "{", src[i + 1] == "%" {
                var j = i + 2
                var sign: Unicode.Scalar?
                if j < src.count, src[j] == "-" || src[j] == "+" {
                    sign = src[j]
                    j += 1
                }
                j = skipSpace(from: j)
                if at(j, "endraw") {
                    j = skipSpace(from: j + 6)
                    if j < src.count, let end = matchBlockEnd(at: j, close: "%}") {
                        var textEnd = i
                        if sign == "-" {
                            while textEnd > pos, Self.isSpace(src[textEnd - 1]) { textEnd -= 1 }
                        } else if sign != "+", options.lstripBlocks {
                            var lPos = textEnd
                            while lPos > pos, src[lPos - 1] != "\n" { lPos -= 1 }
                            if lPos > pos || lineStarting {
                                let ws = src[lPos..<i]
                                if !ws.isEmpty, ws.allSatisfy(Self.isSpace) { textEnd = lPos }
                            }
                        }
                        if textEnd > pos {
                            countLines(to: pos)
                            emit(.data(string(pos, textEnd)), line: line)
                        }
                        pos = end
                        lineStarting = src[end - 1] == "\n"
                        return
                    }
                }
            }
            i += 1
        }
        throw error("missing end of raw directive ('{% raw %}' opened here)", line: openLine)
    }

    // MARK: - Inside `{% %}` and `{{ }}`

    private static let operators2: [String] = ["//", "**", "==", "!=", ">=", "<="]
    private static let operators1: Set<Unicode.Scalar> = [
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    private mutating func lexTag(isBlock: Bool, openLine: Int) throws(TemplateError) {
        var balancing: [Unicode.Scalar] = []
        let close = isBlock ? "%}" : "}}"
        while true {
            guard pos < src.count else {
                countLines(to: pos)
                throw error(
                    "unexpected end of template: '\(isBlock ? "{%" : "{{")' opened on line \(openLine) is never closed",
                    line: openLine)
            }
            countLines(to: pos)
            let c = src[pos]
            // End of tag (only when brackets are balanced).
            if balancing.isEmpty {
                if isBlock {
                    if let end = matchBlockEnd(at: pos, close: close) {
                        emit(.blockEnd, line: line)
                        pos = end
                        lineStarting = src[end - 1] == "\n"
                        return
                    }
                } else {
                    if c == "-", at(pos + 1, close) {
                        emit(.variableEnd, line: line)
                        pos = skipSpace(from: pos + 3)
                        lineStarting = src[pos - 1] == "\n"
                        return
                    }
                    if at(pos, close) {
                        emit(.variableEnd, line: line)
                        pos += 2
                        lineStarting = false
                        return
                    }
                }
            }
            if Self.isSpace(c) {
                pos = skipSpace(from: pos)
                continue
            }
            if let (tok, end) = try lexNumber(at: pos) {
                emit(tok, line: line)
                pos = end
                continue
            }
            if c == "_" || (c.value < 0x80 && c.properties.isAlphabetic) || (c.value >= 0x80 && c.properties.isXIDStart) {
                var e = pos + 1
                while e < src.count {
                    let d = src[e]
                    let ok =
                        d == "_" || (d.value < 0x80 && (d.properties.isAlphabetic || ("0"..."9").contains(d)))
                        || (d.value >= 0x80 && d.properties.isXIDContinue)
                    if !ok { break }
                    e += 1
                }
                emit(.name(string(pos, e)), line: line)
                pos = e
                continue
            }
            if c == "'" || c == "\"" {
                let (value, end) = try lexString(at: pos, quote: c)
                emit(.string(value), line: line)
                pos = end
                continue
            }
            // Operators, longest first.
            if pos + 1 < src.count {
                let two = string(pos, pos + 2)
                if Self.operators2.contains(two) {
                    emit(.op(two), line: line)
                    pos += 2
                    continue
                }
            }
            if Self.operators1.contains(c) {
                switch c {
                case "{": balancing.append("}")
                case "(": balancing.append(")")
                case "[": balancing.append("]")
                case "}", ")", "]":
                    guard let expected = balancing.popLast() else {
                        throw error("unexpected '\(c)'", line: line)
                    }
                    if expected != c {
                        throw error("unexpected '\(c)', expected '\(expected)'", line: line)
                    }
                default: break
                }
                emit(.op(String(c)), line: line)
                pos += 1
                continue
            }
            throw error("unexpected character '\(c)'", line: line)
        }
    }

    private func isDigit(_ p: Int) -> Bool {
        p < src.count && src[p].value >= 0x30 && src[p].value <= 0x39
    }

    /// `(\d+_)*\d+` starting at p; returns the end, or nil when no digit is there.
    private func digitRun(_ p: Int) -> Int? {
        guard isDigit(p) else { return nil }
        var e = p
        while true {
            while isDigit(e) { e += 1 }
            if e < src.count, src[e] == "_", isDigit(e + 1) {
                e += 1
                continue
            }
            return e
        }
    }

    private func lexNumber(at p: Int) throws(TemplateError) -> (TemplateToken.Kind, Int)? {
        guard isDigit(p) else { return nil }
        // Prefixed integers: 0b, 0o, 0x.
        if src[p] == "0", p + 1 < src.count {
            let radixChar = src[p + 1]
            let radix: Int? =
                (radixChar == "b" || radixChar == "B") ? 2
                : (radixChar == "o" || radixChar == "O") ? 8 : (radixChar == "x" || radixChar == "X") ? 16 : nil
            if let radix {
                var e = p + 2
                var digits = ""
                while e < src.count {
                    let d = src[e]
                    if d == "_" {
                        e += 1
                        continue
                    }
                    guard let v = Int(String(d), radix: 16), v < radix else { break }
                    digits.unicodeScalars.append(d)
                    e += 1
                }
                if !digits.isEmpty {
                    guard let v = Int(digits, radix: radix) else { throw error("integer literal too large", line: line) }
                    return (.integer(v), e)
                }
            }
        }
        let intEnd = digitRun(p)!
        // Float: `\d+ ( (\.\d+)? e[+-]?\d+ | \.\d+ )`, not directly after a '.'.
        let afterDot = p > 0 && src[p - 1] == "."
        if !afterDot {
            var e = intEnd
            var isFloat = false
            if e < src.count, src[e] == ".", let fracEnd = digitRun(e + 1) {
                e = fracEnd
                isFloat = true
            }
            if e < src.count, src[e] == "e" || src[e] == "E" {
                var x = e + 1
                if x < src.count, src[x] == "+" || src[x] == "-" { x += 1 }
                if let expEnd = digitRun(x) {
                    e = expEnd
                    isFloat = true
                }
            }
            if isFloat {
                let text = string(p, e).filter { $0 != "_" }
                guard let v = Double(text) else { throw error("invalid float literal", line: line) }
                return (.float(v), e)
            }
        }
        let text = string(p, intEnd).filter { $0 != "_" }
        guard let v = Int(text) else { throw error("integer literal too large", line: line) }
        return (.integer(v), intEnd)
    }

    /// A quoted string with Python escape sequences (jinja2 decodes with `unicode-escape`).
    private func lexString(at p: Int, quote: Unicode.Scalar) throws(TemplateError) -> (String, Int) {
        var out = String.UnicodeScalarView()
        var i = p + 1
        let startLine = line
        while i < src.count {
            let c = src[i]
            if c == quote { return (String(out), i + 1) }
            if c == "\\", i + 1 < src.count {
                let e = src[i + 1]
                i += 2
                switch e {
                case "\n": break
                case "\\": out.append("\\")
                case "'": out.append("'")
                case "\"": out.append("\"")
                case "a": out.append("\u{07}")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "v": out.append("\u{0B}")
                case "0"..."7":
                    var v = Int(e.value - 0x30)
                    var n = 1
                    while n < 3, i < src.count, ("0"..."7").contains(src[i]) {
                        v = v * 8 + Int(src[i].value - 0x30)
                        i += 1
                        n += 1
                    }
                    guard let s = Unicode.Scalar(v) else { throw error("invalid octal escape", line: startLine) }
                    out.append(s)
                case "x", "u", "U":
                    let n = e == "x" ? 2 : e == "u" ? 4 : 8
                    guard i + n <= src.count, let v = UInt32(string(i, i + n), radix: 16),
                        let s = Unicode.Scalar(v)
                    else {
                        throw error("invalid \\\(e) escape in string literal", line: startLine)
                    }
                    out.append(s)
                    i += n
                default:
                    out.append("\\")
                    out.append(e)
                }
                continue
            }
            out.append(c)
            i += 1
        }
        throw error("unterminated string literal", line: startLine)
    }
}
