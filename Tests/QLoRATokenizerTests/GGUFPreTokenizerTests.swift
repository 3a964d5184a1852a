import Testing
@testable import QLoRATokenizer

/// `tokenizer.ggml.pre` types (Tokenizer+GGUF.swift): the mapped ones, and a refusal for the others.
@Suite struct GGUFPreTokenizerTests {
    @Test func knownTypesMapAndOthersAreRefused() {
        for type in Tokenizer.ggufPreTypes { #expect(Tokenizer.preTokenizer(for: type, addPrefixSpace: false) != nil, "\(type)") }
        for type in ["qwen2", "deepseek-llm", "falcon", "unknown-future-type"] {
            #expect(Tokenizer.preTokenizer(for: type, addPrefixSpace: false) == nil, "\(type)")
        }
        guard case .sequence(let parts)? = Tokenizer.preTokenizer(for: "smollm", addPrefixSpace: false),
              case .digits(individual: true) = parts.first else {
            Issue.record("smollm splits every numeral first")
            return
        }
    }
}
