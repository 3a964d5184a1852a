/// The character classes the pre-tokenizer regexes use, with an ASCII fast path.
/// `\s` is Unicode White_Space, `\p{L}` the letter categories, `\p{N}` the number categories
/// (Oniguruma's Unicode definitions, which HF tokenizers uses).
enum CharClass {
    case letter, number, space, other

    private static let ascii: [CharClass] = (0..<128).map { v in
        let s = Unicode.Scalar(UInt8(v))
        if (65...90).contains(v) || (97...122).contains(v) { return .letter }
        if (48...57).contains(v) { return .number }
        if s.properties.isWhitespace { return .space }
        return .other
    }

    @inline(__always)
    static func of(_ s: Unicode.Scalar) -> CharClass {
        if s.value < 128 { return ascii[Int(s.value)] }
        let p = s.properties
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        default: return p.isWhitespace ? .space : .other
        }
    }
}
