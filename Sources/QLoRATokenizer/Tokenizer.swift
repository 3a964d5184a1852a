import Foundation
import QLoRACore
import QLoRAFormats

/// A Hugging Face tokenizer: byte-exact with the `tokenizers` library for the component types LLaMA-
/// family models use (byte-level BPE as in GPT-2/Llama-3/SmolLM2/Qwen2, SentencePiece-style BPE as in
/// Llama-2/Mistral). Unsupported components are load errors naming the component, never approximated.
///
/// Encoding (spec §5): split on added tokens (raw, then normalized), normalize, pre-tokenize, BPE,
/// post-process. Thread-safe; `encodeBatch` uses all cores.
public final class Tokenizer: @unchecked Sendable {
    let addedTokens: [AddedToken]
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: BPEModel
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?
    let addedByID: [Int: AddedToken]

    /// From tokenizer_config.json (or GGUF metadata) when known.
    public internal(set) var chatTemplate: String?
    public internal(set) var bosToken: String?
    public internal(set) var eosToken: String?
    public internal(set) var padToken: String?

    init(addedTokens: [AddedToken], normalizer: Normalizer?, preTokenizer: PreTokenizer?, model: BPEModel,
         postProcessor: PostProcessor?, decoder: TokenDecoder?) {
        self.addedTokens = addedTokens
        rawMatcher = AddedTokenMatcher(addedTokens.filter { !$0.normalized })
        normalizedMatcher = AddedTokenMatcher(addedTokens.filter { $0.normalized })
        self.normalizer = normalizer
        self.preTokenizer = preTokenizer
        self.model = model
        self.postProcessor = postProcessor
        self.decoder = decoder
        addedByID = Dictionary(addedTokens.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    }

    /// Number of ids (the largest id + 1 over the vocab and added tokens).
    public var vocabularySize: Int { max(model.idToToken.count, (addedTokens.map(\.id).max() ?? -1) + 1) }

    /// The id of a token string (vocab or added), if any.
    public func id(of token: String) -> Int? {
        if let t = addedTokens.first(where: { $0.content == token }) { return t.id }
        return model.vocab[token]
    }

    /// The token string of an id.
    public func token(of id: Int) -> String? {
        if let t = addedByID[id] { return t.content }
        return id >= 0 && id < model.idToToken.count && !model.idToToken[id].isEmpty ? model.idToToken[id] : nil
    }

    public var eosTokenID: Int? { eosToken.flatMap(id(of:)) }
    public var bosTokenID: Int? { bosToken.flatMap(id(of:)) }

    /// Token ids of `text`. `addSpecialTokens` runs the post-processor (e.g. adds BOS), like
    /// `tokenizer.encode(text, add_special_tokens=True)`; `matchSpecial: false` treats special added
    /// tokens as plain text (HF `split_special_tokens`).
    public func encode(_ text: String, addSpecialTokens: Bool = true, matchSpecial: Bool = true) -> [Int] {
        var ids: [Int32] = []
        let segments: [(Substring, AddedToken?)] = matchSpecial ? rawMatcher.split(Substring(text)) : [(Substring(text), nil)]
        for (segment, token) in segments {
            if let token {
                ids.append(Int32(token.id))
                continue
            }
            let atStart = segment.startIndex == text.startIndex
            let normalized = normalizer.map { Substring($0.apply(String(segment))) } ?? segment
            let parts: [(Substring, AddedToken?)] = matchSpecial ? normalizedMatcher.split(normalized) : [(normalized, nil)]
            for (i, (part, t)) in parts.enumerated() {
                if let t {
                    ids.append(Int32(t.id))
                    continue
                }
                let piece = Piece(text: part, byteLevel: false, atStart: atStart && i == 0)
                let pieces = preTokenizer.map { $0.apply([piece]) } ?? [piece]
                for p in pieces { model.tokenize(p, into: &ids) }
            }
        }
        let out = ids.map(Int.init)
        return addSpecialTokens ? (postProcessor?.apply(out) ?? out) : out
    }

    /// Encodes many texts on all cores; results in input order.
    public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = true) -> [[Int]] {
        var results = [[Int]](repeating: [], count: texts.count)
        let chunks = max(1, min(texts.count, ProcessInfo.processInfo.activeProcessorCount * 4))
        results.withUnsafeMutableBufferPointer { buffer in
            Parallel.forEachChunk(texts.count, chunk: (texts.count + chunks - 1) / chunks,
                                  threads: ProcessInfo.processInfo.activeProcessorCount) { range in
                for i in range { buffer[i] = self.encode(texts[i], addSpecialTokens: addSpecialTokens) }
            }
        }
        return results
    }

    /// Text of `ids` (HF `decode`): tokens looked up, specials optionally skipped, then the decoder.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var tokens: [String] = []
        for id in ids {
            if let t = addedByID[id] {
                if skipSpecialTokens && t.special { continue }
                tokens.append(t.content)
            } else if let t = token(of: id) {
                tokens.append(t)
            }
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.apply(tokens).joined()
    }
}
