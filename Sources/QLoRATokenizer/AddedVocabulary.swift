/// Added tokens (spec §5.1): matched in the text before the model runs, leftmost-longest, honouring
/// `single_word`, `lstrip` and `rstrip`. Tokens with `normalized: false` match the raw text, the others
/// the normalized text.
struct AddedToken: Sendable {
    var id: Int
    var content: String
    var singleWord: Bool
    var lstrip: Bool
    var rstrip: Bool
    var normalized: Bool
    var special: Bool
}

struct AddedTokenMatcher: Sendable {
    /// Tokens by their first Unicode scalar, longest first.
    private var byFirst: [Unicode.Scalar: [AddedToken]] = [:]

    init(_ tokens: [AddedToken]) {
        for t in tokens where !t.content.isEmpty {
            byFirst[t.content.unicodeScalars.first!, default: []].append(t)
        }
        for k in byFirst.keys { byFirst[k]!.sort { $0.content.unicodeScalars.count > $1.content.unicodeScalars.count } }
    }

    var isEmpty: Bool { byFirst.isEmpty }

    /// Splits `text` into plain segments and added-token matches, in order.
    func split(_ text: Substring) -> [(Substring, AddedToken?)] {
        guard !byFirst.isEmpty else { return [(text, nil)] }
        var out: [(Substring, AddedToken?)] = []
        let scalars = text.unicodeScalars
        var segmentStart = scalars.startIndex
        var i = scalars.startIndex
        while i < scalars.endIndex {
            if let candidates = byFirst[scalars[i]], let (token, end) = longestMatch(candidates, in: text, at: i) {
                // lstrip/rstrip absorb whitespace around the match.
                var lo = i, hi = end
                if token.lstrip {
                    while lo > segmentStart, scalars[scalars.index(before: lo)].properties.isWhitespace { lo = scalars.index(before: lo) }
                }
                if token.rstrip {
                    while hi < scalars.endIndex, scalars[hi].properties.isWhitespace { hi = scalars.index(after: hi) }
                }
                if segmentStart < lo { out.append((text[segmentStart..<lo], nil)) }
                out.append((text[lo..<hi], token))
                segmentStart = hi
                i = hi
            } else {
                i = scalars.index(after: i)
            }
        }
        if segmentStart < scalars.endIndex { out.append((text[segmentStart...], nil)) }
        return out
    }

    private func longestMatch(_ candidates: [AddedToken], in text: Substring, at i: String.Index) -> (AddedToken, String.Index)? {
        let scalars = text.unicodeScalars
        for token in candidates {
            var j = i
            var ok = true
            for c in token.content.unicodeScalars {
                guard j < scalars.endIndex, scalars[j] == c else { ok = false; break }
                j = scalars.index(after: j)
            }
            guard ok else { continue }
            if token.singleWord {
                let before = i > scalars.startIndex ? scalars[scalars.index(before: i)] : nil
                let after = j < scalars.endIndex ? scalars[j] : nil
                if let b = before, isWordChar(b) { continue }
                if let a = after, isWordChar(a) { continue }
            }
            return (token, j)
        }
        return nil
    }

    private func isWordChar(_ s: Unicode.Scalar) -> Bool {
        s == "_" || s.properties.isAlphabetic || CharClass.of(s) == .number
    }
}
