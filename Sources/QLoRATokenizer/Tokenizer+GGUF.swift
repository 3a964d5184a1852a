import Foundation
import QLoRAFormats

extension Tokenizer {
    /// Builds the tokenizer from a GGUF file's `tokenizer.ggml.*` metadata: byte-level BPE over `tokens` and `merges`,
    /// a `ByteLevel` decoder, BOS added by the post-processor when `add_bos_token` is set, control/user-defined tokens
    /// as added tokens, and the pre-tokenizer `tokenizer.ggml.pre` names, as llama.cpp maps it (`preTokenizer(for:)`).
    /// (transformers' `GGUFGPTConverter` ignores `tokenizer.ggml.pre` and always uses the GPT-2 split, so for
    /// `smollm` it disagrees with the model's original tokenizer and with llama.cpp on numerals such as `½` or `Ⅻ`
    /// after a space; we follow the original.)
    static func fromGGUF(path: String) throws -> Tokenizer {
        let file = try GGUFFile(path: path)
        return try fromGGUF(metadata: file.metadata, file: path)
    }

    static func fromGGUF(metadata m: GGUFMetadata, file: String) throws(TokenizerError) -> Tokenizer {
        func fail(_ key: String, _ message: String) -> TokenizerError { TokenizerError(file: file, path: key, message) }
        guard let model = m["tokenizer.ggml.model"]?.string else { throw fail("tokenizer.ggml.model", "missing: this GGUF has no tokenizer") }
        guard model == "gpt2" else {
            throw fail("tokenizer.ggml.model", "`\(model)` tokenizers (SentencePiece scores) are not supported from GGUF yet; use the model's tokenizer.json")
        }
        guard let tokens = m["tokenizer.ggml.tokens"]?.stringArray else { throw fail("tokenizer.ggml.tokens", "missing or not a string array") }
        guard let mergeStrings = m["tokenizer.ggml.merges"]?.stringArray else { throw fail("tokenizer.ggml.merges", "missing or not a string array") }
        let types = m["tokenizer.ggml.token_type"]?.intArray ?? []
        if !types.isEmpty && types.count != tokens.count {
            throw fail("tokenizer.ggml.token_type", "has \(types.count) entries for \(tokens.count) tokens")
        }
        var vocab: [String: Int] = [:]
        vocab.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() where vocab[t] == nil { vocab[t] = i }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeStrings.count)
        for (i, s) in mergeStrings.enumerated() {
            let parts = s.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw fail("tokenizer.ggml.merges[\(i)]", "expected two tokens separated by one space, got `\(s)`") }
            merges.append((String(parts[0]), String(parts[1])))
        }
        let bpe = try BPEModel(vocab: vocab, merges: merges, unkToken: nil, fuseUnk: false, byteFallback: false,
                               ignoreMerges: false, continuingSubwordPrefix: nil, endOfWordSuffix: nil, file: file)
        // llama.cpp token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
        var added: [AddedToken] = []
        for (i, type) in types.enumerated() where type == 3 || type == 4 {
            added.append(AddedToken(id: i, content: tokens[i], singleWord: false, lstrip: false, rstrip: false,
                                    normalized: false, special: type == 3))
        }
        func tokenName(_ key: String) -> String? {
            guard let id = m[key]?.int, id >= 0, id < tokens.count else { return nil }
            return tokens[id]
        }
        let bos = tokenName("tokenizer.ggml.bos_token_id")
        var post: PostProcessor = .passThrough
        if m["tokenizer.ggml.add_bos_token"]?.bool == true, let id = m["tokenizer.ggml.bos_token_id"]?.int {
            post = .template(single: [.special([id]), .sequence], pair: [.special([id]), .sequence])
        }
        let addPrefixSpace = m["tokenizer.ggml.add_space_prefix"]?.bool ?? false
        let pre = m["tokenizer.ggml.pre"]?.string ?? "default"
        guard let preTokenizer = Self.preTokenizer(for: pre, addPrefixSpace: addPrefixSpace) else {
            throw fail("tokenizer.ggml.pre", "pre-tokenizer type `\(pre)` is not supported from GGUF (supported: "
                + "\(Self.ggufPreTypes.joined(separator: ", "))); use the model's tokenizer.json")
        }
        let tokenizer = Tokenizer(addedTokens: added, normalizer: nil, preTokenizer: preTokenizer,
                                  model: bpe, postProcessor: post, decoder: .byteLevel)
        tokenizer.bosToken = bos
        tokenizer.eosToken = tokenName("tokenizer.ggml.eos_token_id")
        tokenizer.padToken = tokenName("tokenizer.ggml.padding_token_id")
        tokenizer.chatTemplate = m["tokenizer.chat_template"]?.string
        return tokenizer
    }

    /// The `tokenizer.ggml.pre` types this build maps (llama.cpp's `llama-vocab.cpp` regexes for them):
    static let ggufPreTypes = ["default", "gpt-2", "smollm", "llama-bpe"]

    /// - `default`, `gpt-2` (and no key): the GPT-2 split (`ByteLevel` with its regex);
    /// - `smollm`: every numeric character on its own (`\p{N}`), then the GPT-2 split: HF's
    ///   `Digits(individual_digits)` + `ByteLevel`, the original SmolLM2 `tokenizer.json`;
    /// - `llama-bpe`: the Llama 3 split, then byte-level without its own regex.
    /// nil for any other type (its regex differs: refusing beats tokenizing silently differently).
    static func preTokenizer(for type: String, addPrefixSpace: Bool) -> PreTokenizer? {
        switch type {
        case "default", "gpt-2": return .byteLevel(addPrefixSpace: addPrefixSpace, useRegex: true)
        case "smollm": return .sequence([.digits(individual: true), .byteLevel(addPrefixSpace: addPrefixSpace, useRegex: true)])
        case "llama-bpe":
            return .sequence([.split(.scanner(.llama3), .isolated, invert: false),
                              .byteLevel(addPrefixSpace: addPrefixSpace, useRegex: false)])
        default: return nil
        }
    }
}
