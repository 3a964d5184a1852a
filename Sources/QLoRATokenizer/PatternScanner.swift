/// Hand-written scanners equivalent to the two regexes byte-level BPE tokenizers split with
/// (leftmost-first alternation, as Oniguruma evaluates them). They replace a regex engine on the hot
/// path; `PatternScannerTests` checks them against NSRegularExpression on random and real text.
///
/// GPT-2 (`ByteLevel` with `use_regex`, and SmolLM2):
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// Llama-3 (`Split` pattern, spec §5.8):
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
enum PatternScanner: Sendable {
    case gpt2
    case llama3

    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let llama3Pattern = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    init?(pattern: String) {
        switch pattern {
        case Self.gpt2Pattern: self = .gpt2
        case Self.llama3Pattern: self = .llama3
        default: return nil
        }
    }

    /// Calls `emit(start, end)` for each match (scalar index range). Every scalar is covered by exactly
    /// one match for these patterns (the last two alternatives match any whitespace, the others the rest).
    func scan(_ s: [Unicode.Scalar], _ classes: [CharClass], emit: (Int, Int) -> Void) {
        let n = s.count
        var i = 0
        while i < n {
            let end: Int
            switch self {
            case .gpt2: end = gpt2Match(s, classes, i)
            case .llama3: end = llama3Match(s, classes, i)
            }
            precondition(end > i, "scanner made no progress")
            emit(i, end)
            i = end
        }
    }

    /// Length of a contraction at `i` ('s 't 're 've 'm 'll 'd), or 0.
    @inline(__always)
    private func contraction(_ s: [Unicode.Scalar], _ i: Int, caseInsensitive: Bool) -> Int {
        guard s[i] == "'", i + 1 < s.count else { return 0 }
        func lower(_ c: Unicode.Scalar) -> Unicode.Scalar {
            guard caseInsensitive, c.value >= 65, c.value <= 90 else { return c }
            return Unicode.Scalar(c.value + 32)!
        }
        let a = lower(s[i + 1])
        switch a {
        case "s", "t", "m", "d": return 2
        case "r", "v":
            if i + 2 < s.count, lower(s[i + 2]) == "e" { return 3 }
            return 0
        case "l":
            if i + 2 < s.count, lower(s[i + 2]) == "l" { return 3 }
            return 0
        default: return 0
        }
    }

    @inline(__always)
    private func run(_ c: [CharClass], from i: Int, while cls: CharClass) -> Int {
        var j = i
        while j < c.count && c[j] == cls { j += 1 }
        return j
    }

    /// `\s+(?!\S)` then `\s+` at a whitespace position `i`.
    @inline(__always)
    private func whitespace(_ c: [CharClass], _ i: Int) -> Int {
        let j = run(c, from: i, while: .space)
        if j == c.count { return j }          // end of text: (?!\S) holds
        if j - i >= 2 { return j - 1 }        // leave one space to attach to the next token
        return j                              // \s+ fallback
    }

    private func gpt2Match(_ s: [Unicode.Scalar], _ c: [CharClass], _ i: Int) -> Int {
        let k = contraction(s, i, caseInsensitive: false)
        if k > 0 { return i + k }
        // ` ?X+` for X in letter, number, other.
        var start = i
        if s[i] == " ", i + 1 < s.count, c[i + 1] != .space { start = i + 1 }
        switch c[start] {
        case .letter: return run(c, from: start, while: .letter)
        case .number: return run(c, from: start, while: .number)
        case .other: return run(c, from: start, while: .other)
        case .space: return whitespace(c, i)
        }
    }

    private func llama3Match(_ s: [Unicode.Scalar], _ c: [CharClass], _ i: Int) -> Int {
        let k = contraction(s, i, caseInsensitive: true)
        if k > 0 { return i + k }
        let isCRLF = { (x: Unicode.Scalar) in x == "\r" || x == "\n" }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if c[i] == .letter { return run(c, from: i, while: .letter) }
        if c[i] != .number, !isCRLF(s[i]), i + 1 < s.count, c[i + 1] == .letter {
            return run(c, from: i + 1, while: .letter)
        }
        // \p{N}{1,3}
        if c[i] == .number {
            var j = i
            while j < s.count, j - i < 3, c[j] == .number { j += 1 }
            return j
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var start = i
        if s[i] == " ", i + 1 < s.count, c[i + 1] == .other { start = i + 1 }
        if c[start] == .other {
            var j = run(c, from: start, while: .other)
            while j < s.count, isCRLF(s[j]) { j += 1 }
            return j
        }
        // \s*[\r\n]+ : the longest whitespace prefix that ends with CR or LF.
        let j = run(c, from: i, while: .space)
        var last = -1
        for p in i..<j where isCRLF(s[p]) { last = p }
        if last >= 0 { return last + 1 }
        return whitespace(c, i)
    }
}
