/// String operations on Unicode scalars (Rust `char`s, what HF tokenizers works on). Swift's `String`
/// compares grapheme clusters, so `" \u{301}".hasPrefix(" ")` is false: tokenizer code uses these instead.
extension StringProtocol {
    func scalarHasPrefix(_ prefix: String) -> Bool {
        unicodeScalars.starts(with: prefix.unicodeScalars)
    }

    /// Ranges of the non-overlapping occurrences of `needle`, left to right.
    func scalarRanges(of needle: String) -> [Range<String.Index>] {
        let n = Array(needle.unicodeScalars)
        guard let first = n.first else { return [] }
        var out: [Range<String.Index>] = []
        let scalars = unicodeScalars
        var i = scalars.startIndex
        while i < scalars.endIndex {
            if scalars[i] == first {
                var j = i
                var k = 0
                while k < n.count, j < scalars.endIndex, scalars[j] == n[k] {
                    j = scalars.index(after: j)
                    k += 1
                }
                if k == n.count {
                    out.append(i..<j)
                    i = j
                    continue
                }
            }
            i = scalars.index(after: i)
        }
        return out
    }

    func scalarReplacing(_ target: String, with replacement: String) -> String {
        var out = ""
        var last = startIndex
        for r in scalarRanges(of: target) {
            out += self[last..<r.lowerBound]
            out += replacement
            last = r.upperBound
        }
        out += self[last...]
        return out
    }
}
