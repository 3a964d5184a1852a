import Foundation
import QLoRAFormats

/// `normalizer` components (spec §5.2).
indirect enum Normalizer {
    case prepend(String)
    case replace(Pattern, String)
    case unicode(UnicodeForm)
    case lowercase
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    enum UnicodeForm { case nfc, nfd, nfkc, nfkd }

    init(_ c: JSONCursor) throws(TokenizerError) {
        switch try c.type {
        case "Prepend": self = .prepend(try c.string("prepend"))
        case "Replace": self = .replace(try patternOf(c.require("pattern")), try c.string("content"))
        case "NFC": self = .unicode(.nfc)
        case "NFD": self = .unicode(.nfd)
        case "NFKC": self = .unicode(.nfkc)
        case "NFKD": self = .unicode(.nfkd)
        case "Lowercase": self = .lowercase
        case "Strip": self = .strip(left: try c.bool("strip_left", default: true), right: try c.bool("strip_right", default: true))
        case "Sequence":
            var items: [Normalizer] = []
            for item in try c.require("normalizers").array { items.append(try Normalizer(item)) }
            self = .sequence(items)
        case let other: throw c.fail("unsupported normalizer type `\(other)`")
        }
    }

    func apply(_ s: String) -> String {
        switch self {
        case .prepend(let p): return s.isEmpty ? s : p + s
        case .replace(let pattern, let content):
            var out = ""
            var last = s.startIndex
            for r in pattern.matches(in: Substring(s)) {
                out += s[last..<r.lowerBound]
                out += content
                last = r.upperBound
            }
            return out + s[last...]
        case .unicode(let form):
            switch form {
            case .nfc: return s.precomposedStringWithCanonicalMapping
            case .nfd: return s.decomposedStringWithCanonicalMapping
            case .nfkc: return s.precomposedStringWithCompatibilityMapping
            case .nfkd: return s.decomposedStringWithCompatibilityMapping
            }
        case .lowercase: return s.lowercased()
        case .strip(let left, let right):
            var sub = Substring(s)
            var scalars = Substring.UnicodeScalarView(sub.unicodeScalars)
            if left { scalars = Substring.UnicodeScalarView(scalars.drop(while: \.properties.isWhitespace)) }
            if right { while let l = scalars.last, l.properties.isWhitespace { scalars.removeLast() } }
            sub = Substring(scalars)
            return String(sub)
        case .sequence(let items): return items.reduce(s) { $1.apply($0) }
        }
    }
}

/// Reads `{"String": s}` or `{"Regex": r}`.
func patternOf(_ c: JSONCursor) throws(TokenizerError) -> Pattern {
    if let s = c.optional("String") { return .literal(try s.string) }
    if let r = c.optional("Regex") {
        let source = try r.string
        do { return try Pattern.regex(source) } catch { throw r.fail("invalid regex: \(error)") }
    }
    throw c.fail("expected {\"String\": …} or {\"Regex\": …}")
}

enum PrependScheme: String { case always, first, never }

/// `pre_tokenizer` components (spec §5.3).
indirect enum PreTokenizer {
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case split(Pattern, SplitBehavior, invert: Bool)
    case digits(individual: Bool)
    case metaspace(replacement: String, prepend: PrependScheme, split: Bool)
    case sequence([PreTokenizer])

    init(_ c: JSONCursor) throws(TokenizerError) {
        switch try c.type {
        case "ByteLevel":
            self = .byteLevel(addPrefixSpace: try c.bool("add_prefix_space", default: true),
                              useRegex: try c.bool("use_regex", default: true))
        case "Split":
            let raw = try c.string("behavior")
            guard let behavior = SplitBehavior(rawValue: raw) else { throw (try c.require("behavior")).fail("unknown split behavior `\(raw)`") }
            self = .split(try patternOf(c.require("pattern")), behavior, invert: try c.bool("invert", default: false))
        case "Digits": self = .digits(individual: try c.bool("individual_digits", default: false))
        case "Metaspace":
            let replacement = try c.optional("replacement")?.string ?? "▁"
            var scheme = PrependScheme.always
            if let s = c.optional("prepend_scheme") {
                let raw = try s.string
                guard let p = PrependScheme(rawValue: raw) else { throw s.fail("unknown prepend_scheme `\(raw)`") }
                scheme = p
            } else if let legacy = c.optional("add_prefix_space"), !(try legacy.bool) {
                scheme = .never
            }
            self = .metaspace(replacement: replacement, prepend: scheme, split: try c.bool("split", default: true))
        case "Sequence":
            var items: [PreTokenizer] = []
            for item in try c.require("pretokenizers").array { items.append(try PreTokenizer(item)) }
            self = .sequence(items)
        case let other: throw c.fail("unsupported pre-tokenizer type `\(other)`")
        }
    }

    func apply(_ pieces: [Piece]) -> [Piece] {
        switch self {
        case .sequence(let items): return items.reduce(pieces) { $1.apply($0) }
        default:
            var out: [Piece] = []
            out.reserveCapacity(pieces.count)
            for piece in pieces { apply(piece, into: &out) }
            return out
        }
    }

    private func apply(_ piece: Piece, into out: inout [Piece]) {
        // A component after ByteLevel sees the mapped text, as in HF.
        var piece = piece
        if piece.byteLevel {
            if case .byteLevel = self { out.append(piece); return }
            piece = Piece(text: Substring(ByteLevel.encode(piece.text)), byteLevel: false, atStart: piece.atStart)
        }
        func emit(_ parts: [Substring]) {
            for (i, p) in parts.enumerated() where !p.isEmpty {
                out.append(Piece(text: p, byteLevel: piece.byteLevel, atStart: piece.atStart && i == 0 && p.startIndex == piece.text.startIndex))
            }
        }
        switch self {
        case .byteLevel(let addPrefixSpace, let useRegex):
            var text = piece.text
            if addPrefixSpace && !text.scalarHasPrefix(" ") { text = Substring(" " + text) }
            let parts = useRegex ? Pattern.scanner(.gpt2).split(text, behavior: .isolated, invert: false) : [text]
            for (i, p) in parts.enumerated() where !p.isEmpty {
                out.append(Piece(text: p, byteLevel: true, atStart: piece.atStart && i == 0))
            }
        case .split(let pattern, let behavior, let invert):
            emit(pattern.split(piece.text, behavior: behavior, invert: invert))
        case .digits(let individual):
            var parts: [Substring] = []
            var start = piece.text.startIndex
            var inDigits = false
            var i = piece.text.startIndex
            while i < piece.text.endIndex {
                let scalar = piece.text.unicodeScalars[i]
                let next = piece.text.unicodeScalars.index(after: i)
                let isDigit = CharClass.of(scalar) == .number
                if isDigit && individual {
                    if start < i { parts.append(piece.text[start..<i]) }
                    parts.append(piece.text[i..<next])
                    start = next
                } else if isDigit != inDigits {
                    if start < i { parts.append(piece.text[start..<i]) }
                    start = i
                }
                inDigits = isDigit && !individual
                i = next
            }
            if start < piece.text.endIndex { parts.append(piece.text[start...]) }
            emit(parts)
        case .metaspace(let replacement, let prepend, let split):
            var text = piece.text.scalarReplacing(" ", with: replacement)
            if !text.scalarHasPrefix(replacement) && (prepend == .always || (prepend == .first && piece.atStart)) {
                text = replacement + text
            }
            let sub = Substring(text)
            if split {
                let parts = Pattern.literal(replacement).split(sub, behavior: .mergedWithNext, invert: false)
                for (i, p) in parts.enumerated() where !p.isEmpty {
                    out.append(Piece(text: p, byteLevel: false, atStart: piece.atStart && i == 0))
                }
            } else {
                out.append(Piece(text: sub, byteLevel: false, atStart: piece.atStart))
            }
        case .sequence:
            preconditionFailure("handled above")
        }
    }
}

/// `post_processor` components (spec §5.6): only TemplateProcessing changes ids.
indirect enum PostProcessor {
    case template(single: [TemplateItem], pair: [TemplateItem])
    case passThrough
    case sequence([PostProcessor])

    enum TemplateItem {
        case special([Int])
        case sequence
    }

    init(_ c: JSONCursor) throws(TokenizerError) {
        switch try c.type {
        case "TemplateProcessing":
            var specials: [String: [Int]] = [:]
            if let st = c.optional("special_tokens") {
                for (name, v) in try st.object.pairs {
                    let entry = JSONCursor(value: v, path: "\(st.path).\(name)", file: c.file)
                    specials[name] = try entry.require("ids").array.map { (x) throws(TokenizerError) -> Int in try x.int }
                }
            }
            func items(_ key: String) throws(TokenizerError) -> [TemplateItem] {
                guard let list = c.optional(key) else { return [.sequence] }
                var out: [TemplateItem] = []
                for item in try list.array {
                    if let s = item.optional("SpecialToken") {
                        let id = try s.string("id")
                        guard let ids = specials[id] else { throw s.fail("special token `\(id)` is not in special_tokens") }
                        out.append(.special(ids))
                    } else if item.optional("Sequence") != nil {
                        out.append(.sequence)
                    } else {
                        throw item.fail("expected SpecialToken or Sequence")
                    }
                }
                return out
            }
            self = .template(single: try items("single"), pair: try items("pair"))
        case "ByteLevel": self = .passThrough
        case "Sequence":
            var items: [PostProcessor] = []
            for item in try c.require("processors").array { items.append(try PostProcessor(item)) }
            self = .sequence(items)
        case let other: throw c.fail("unsupported post-processor type `\(other)`")
        }
    }

    func apply(_ ids: [Int]) -> [Int] {
        switch self {
        case .passThrough: return ids
        case .sequence(let items): return items.reduce(ids) { $1.apply($0) }
        case .template(let single, _):
            var out: [Int] = []
            for item in single {
                switch item {
                case .special(let s): out += s
                case .sequence: out += ids
                }
            }
            return out
        }
    }
}

/// `decoder` components (spec §5.7), applied to the list of token strings.
indirect enum TokenDecoder {
    case byteLevel
    case metaspace(replacement: String, prepend: PrependScheme)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case replace(Pattern, String)
    case sequence([TokenDecoder])

    init(_ c: JSONCursor) throws(TokenizerError) {
        switch try c.type {
        case "ByteLevel": self = .byteLevel
        case "Metaspace":
            var scheme = PrependScheme.always
            if let s = c.optional("prepend_scheme") { scheme = PrependScheme(rawValue: try s.string) ?? .always }
            else if let legacy = c.optional("add_prefix_space"), !(try legacy.bool) { scheme = .never }
            self = .metaspace(replacement: try c.optional("replacement")?.string ?? "▁", prepend: scheme)
        case "ByteFallback": self = .byteFallback
        case "Fuse": self = .fuse
        case "Strip":
            let content = try c.string("content")
            guard let ch = content.unicodeScalars.first, content.unicodeScalars.count == 1 else { throw (try c.require("content")).fail("expected one character") }
            self = .strip(content: ch, start: try c.require("start").int, stop: try c.require("stop").int)
        case "Replace": self = .replace(try patternOf(c.require("pattern")), try c.string("content"))
        case "Sequence":
            var items: [TokenDecoder] = []
            for item in try c.require("decoders").array { items.append(try TokenDecoder(item)) }
            self = .sequence(items)
        case let other: throw c.fail("unsupported decoder type `\(other)`")
        }
    }

    func apply(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let items): return items.reduce(tokens) { $1.apply($0) }
        case .byteLevel:
            var bytes: [UInt8] = []
            for t in tokens { ByteLevel.decodeBytes(t, into: &bytes) }
            return [String(decoding: bytes, as: UTF8.self)]
        case .metaspace(let replacement, let prepend):
            // As HF: in the first token every replacement char is dropped (when prepending), elsewhere → " ".
            return tokens.enumerated().map { i, t in
                t.scalarReplacing(replacement, with: i == 0 && prepend != .never ? "" : " ")
            }
        case .byteFallback:
            var out: [String] = []
            var pending: [UInt8] = []
            func flush() {
                guard !pending.isEmpty else { return }
                if let s = String(validating: pending, as: UTF8.self) { out.append(s) }
                else { out.append(contentsOf: Array(repeating: "\u{FFFD}", count: pending.count)) }
                pending = []
            }
            for t in tokens {
                if t.utf8.count == 6, t.hasPrefix("<0x"), t.hasSuffix(">"), let b = UInt8(t.dropFirst(3).dropLast(), radix: 16) {
                    pending.append(b)
                } else {
                    flush()
                    out.append(t)
                }
            }
            flush()
            return out
        case .fuse: return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { t in
                var chars = Array(t.unicodeScalars)
                var a = 0
                while a < start, a < chars.count, chars[a] == content { a += 1 }
                var b = 0
                while b < stop, b < chars.count - a, chars[chars.count - 1 - b] == content { b += 1 }
                chars = Array(chars[a..<(chars.count - b)])
                return String(String.UnicodeScalarView(chars))
            }
        case .replace(let pattern, let content):
            return tokens.map { Normalizer.replace(pattern, content).apply($0) }
        }
    }
}
