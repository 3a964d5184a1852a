import Foundation
import Testing
@testable import QLoRATokenizer
import QLoRACore

/// The hand-written scanners must split exactly like the regexes they replace. ICU (NSRegularExpression)
/// serves as the oracle; its `\s` lacks U+000B and U+0085, which Oniguruma (HF) includes, so the random
/// alphabet leaves those two out (the goldens from HF cover them).
@Suite struct PatternScannerTests {
    static let alphabet: [Unicode.Scalar] = Array("aZé漢한ß0٣½ \t\n\r'sStTreRElLdDmMvV!?.,-_#(){}\"\u{3000}\u{00A0}\u{2028}🙂\u{200D}\u{0301}".unicodeScalars)

    private func regexSplit(_ text: String, _ pattern: String) throws -> [String] {
        let re = try NSRegularExpression(pattern: pattern)
        let ns = text as NSString
        return re.matches(in: text, range: NSRange(location: 0, length: ns.length)).map { ns.substring(with: $0.range) }
    }

    private func scannerSplit(_ text: String, _ scanner: PatternScanner) -> [String] {
        Pattern.scanner(scanner).matches(in: Substring(text)).map { String(text[$0]) }
    }

    @Test(arguments: [PatternScanner.gpt2, .llama3])
    func matchesTheRegexOnRandomText(scanner: PatternScanner) throws {
        let pattern = scanner == .gpt2 ? PatternScanner.gpt2Pattern : PatternScanner.llama3Pattern
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<3000 {
            let length = Int(rng.next() % 24)
            var text = String.UnicodeScalarView()
            for _ in 0..<length { text.append(Self.alphabet[Int(rng.next() % UInt64(Self.alphabet.count))]) }
            let s = String(text)
            #expect(scannerSplit(s, scanner) == (try regexSplit(s, pattern)), "\(s.debugDescription)")
        }
    }

    @Test func splitsKnownExamples() {
        #expect(scannerSplit("Hello world! 123", .gpt2) == ["Hello", " world", "!", " 123"])
        #expect(scannerSplit("  multiple   spaces", .gpt2) == [" ", " multiple", "  ", " spaces"])
        #expect(scannerSplit("I'm here", .gpt2) == ["I", "'m", " here"])
        #expect(scannerSplit("I'M 12345\n\n  x", .llama3) == ["I", "'M", " ", "123", "45", "\n\n", " ", " x"])
    }
}
