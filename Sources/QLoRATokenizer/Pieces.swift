import Foundation

/// A piece of text moving through normalization and pre-tokenization. `byteLevel` marks text that the
/// model must see through the byte-level mapping (set by the `ByteLevel` pre-tokenizer; the mapping is
/// applied lazily so the BPE model can work on raw UTF-8 bytes). `atStart` is true for the piece that
/// begins at offset 0 of the original input (Metaspace's `prepend_scheme: first`).
struct Piece {
    var text: Substring
    var byteLevel = false
    var atStart = false
}

/// How `Split` treats the matches of its pattern (HF `SplitDelimiterBehavior`).
enum SplitBehavior: String {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// Finds matches of a pre-tokenizer or normalizer pattern: a literal string, one of the known
/// byte-level regexes (hand-written scanner), or any other regex (NSRegularExpression, ICU).
enum Pattern: @unchecked Sendable {
    case literal(String)
    case scanner(PatternScanner)
    case regex(NSRegularExpression)

    static func regex(_ source: String) throws -> Pattern {
        if let s = PatternScanner(pattern: source) { return .scanner(s) }
        return .regex(try NSRegularExpression(pattern: source, options: []))
    }

    /// Match ranges in `text`, in order, non-overlapping.
    func matches(in text: Substring) -> [Range<String.Index>] {
        switch self {
        case .literal(let needle):
            return text.scalarRanges(of: needle)
        case .scanner(let scanner):
            let scalars = Array(text.unicodeScalars)
            let classes = scalars.map(CharClass.of)
            var indices: [String.Index] = []
            indices.reserveCapacity(scalars.count + 1)
            var i = text.startIndex
            while i < text.endIndex {
                indices.append(i)
                text.unicodeScalars.formIndex(after: &i)
            }
            indices.append(text.endIndex)
            var out: [Range<String.Index>] = []
            scanner.scan(scalars, classes) { a, b in out.append(indices[a]..<indices[b]) }
            return out
        case .regex(let re):
            let string = String(text)
            let ns = NSRange(string.startIndex..<string.endIndex, in: string)
            return re.matches(in: string, range: ns).compactMap { m -> Range<String.Index>? in
                guard m.range.length > 0, let r = Range(m.range, in: string) else { return nil }
                // Map back into `text`'s indices by UTF-8 offset.
                let lo = text.utf8.index(text.startIndex, offsetBy: string.utf8.distance(from: string.startIndex, to: r.lowerBound))
                let hi = text.utf8.index(lo, offsetBy: string.utf8.distance(from: r.lowerBound, to: r.upperBound))
                return lo..<hi
            }
        }
    }

    /// Splits `text` around the matches as `behavior` says; `invert` swaps matches and gaps.
    func split(_ text: Substring, behavior: SplitBehavior, invert: Bool) -> [Substring] {
        var spans: [(Range<String.Index>, Bool)] = []   // (range, isMatch)
        var last = text.startIndex
        for m in matches(in: text) {
            if last < m.lowerBound { spans.append((last..<m.lowerBound, invert)) }
            spans.append((m, !invert))
            last = m.upperBound
        }
        if last < text.endIndex { spans.append((last..<text.endIndex, invert)) }
        var out: [Range<String.Index>] = []
        switch behavior {
        case .removed:
            out = spans.filter { !$0.1 }.map(\.0)
        case .isolated:
            out = spans.map(\.0)
        case .contiguous:
            var previousWasMatch = false
            for (r, isMatch) in spans {
                if isMatch, previousWasMatch, let prev = out.last {
                    out[out.count - 1] = prev.lowerBound..<r.upperBound
                } else {
                    out.append(r)
                }
                previousWasMatch = isMatch
            }
        case .mergedWithPrevious:
            var previousWasGap = false
            for (r, isMatch) in spans {
                if isMatch, previousWasGap, let prev = out.last {
                    out[out.count - 1] = prev.lowerBound..<r.upperBound
                    previousWasGap = false
                } else {
                    out.append(r)
                    previousWasGap = !isMatch
                }
            }
        case .mergedWithNext:
            var pendingMatch: Range<String.Index>?
            for (r, isMatch) in spans {
                if let p = pendingMatch {
                    if isMatch {
                        out.append(p)
                        pendingMatch = r
                    } else {
                        out.append(p.lowerBound..<r.upperBound)
                        pendingMatch = nil
                    }
                } else if isMatch {
                    pendingMatch = r
                } else {
                    out.append(r)
                }
            }
            if let p = pendingMatch { out.append(p) }
        }
        return out.map { text[$0] }
    }
}
