import Foundation
import Testing
import QLoRAFormats
@testable import QLoRATokenizer

/// Byte-exact agreement with HF `tokenizers` and transformers' `apply_chat_template` on the committed
/// goldens (scripts/reference/make_tokenizer_goldens.py; see Fixtures/README.md).
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func lines(_ relative: String) throws -> (header: JSONObject, rows: [JSONObject]) {
        let text = try String(contentsOf: root.appendingPathComponent(relative), encoding: .utf8)
        var header = JSONObject()
        var rows: [JSONObject] = []
        for line in text.split(separator: "\n") {
            guard case .object(let o) = try JSONParser.parse(String(line)) else { continue }
            if case .object(let h)? = o["header"] { header = h } else { rows.append(o) }
        }
        return (header, rows)
    }

    static func tokenizer(_ name: String, preTokenizerOverride: JSONValue? = nil) throws -> Tokenizer {
        let url = root.appendingPathComponent(name).appendingPathComponent("tokenizer.json")
        guard let override = preTokenizerOverride, override != .null else { return try Tokenizer.load(path: url.path) }
        guard case .object(var o) = try JSONParser.parse(Array(try Data(contentsOf: url))) else { throw CocoaError(.fileReadCorruptFile) }
        o["pre_tokenizer"] = override
        return try Tokenizer.fromJSON(JSONWriter.encode(.object(o)), file: url.path)
    }
}

extension JSONObject {
    func ints(_ key: String) -> [Int] {
        guard case .array(let a)? = self[key] else { return [] }
        return a.compactMap { if case .number(let d) = $0 { return Int(d) } else { return nil } }
    }

    func str(_ key: String) -> String? {
        if case .string(let s)? = self[key] { return s }
        return nil
    }
}

@Suite struct GoldenTests {
    private func check(_ tok: Tokenizer, goldens: String) throws {
        let (_, rows) = try Fixtures.lines(goldens)
        #expect(rows.count > 150)
        var failures = 0
        for row in rows {
            let text = row.str("text") ?? ""
            let label = text.count > 60 ? String(text.prefix(60)).debugDescription + "…" : text.debugDescription
            let plain = tok.encode(text, addSpecialTokens: false)
            let checks = [
                (tok.encode(text, addSpecialTokens: true) == row.ints("ids"), "ids"),
                (plain == row.ints("ids_plain"), "ids_plain"),
                (tok.decode(row.ints("ids_plain")) == row.str("decoded"), "decoded"),
                (tok.decode(row.ints("ids"), skipSpecialTokens: true) == row.str("decoded_skip"), "decoded_skip"),
            ]
            for (ok, what) in checks where !ok {
                failures += 1
                if failures <= 10 { Issue.record("\(goldens) \(what) differs for \(label)") }
            }
        }
        #expect(failures == 0)
    }

    @Test(arguments: ["smollm2", "spbpe", "spbpe-metaspace", "llama3style"])
    func matchesHFTokenizers(name: String) throws {
        try check(try Fixtures.tokenizer(name), goldens: "\(name)/goldens.jsonl")
    }

    @Test func matchesHFWithDigitsPreTokenizer() throws {
        let (header, _) = try Fixtures.lines("smollm2-digits/goldens.jsonl")
        let tok = try Fixtures.tokenizer("smollm2", preTokenizerOverride: header["pre_tokenizer_override"])
        try check(tok, goldens: "smollm2-digits/goldens.jsonl")
    }

    static let smolGGUF = Fixtures.repository.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")

    @Test(.enabled(if: FileManager.default.fileExists(atPath: smolGGUF.path),
                   "models/SmolLM2-135M-Instruct.Q4_1.gguf is absent: run scripts/fetch_model.py (make data)"))
    func ggufTokenizerFollowsItsPreTypeAsLlamaCppAndTheOriginalTokenizerDo() throws {
        // SmolLM2's GGUF says `tokenizer.ggml.pre = smollm`: every numeral on its own, as the original tokenizer.json
        // (the digits goldens) and llama.cpp (scripts/reference/check_gguf_pretokenizer_llamacpp.py) tokenize.
        let gguf = Self.smolGGUF
        let tok = try Tokenizer.load(path: gguf.path)
        try check(tok, goldens: "smollm2-digits/goldens.jsonl")
        #expect(tok.encode("²³ superscripts ½", addSpecialTokens: false) == [19133, 39050, 25199, 4818, 99, 216, 16738])
        #expect(tok.eosToken == "<|im_end|>")
        #expect(tok.chatTemplate?.contains("<|im_start|>") == true)
    }

    @Test(arguments: ["smollm2", "llama3", "mistral", "qwen2_5"])
    func chatTemplatesRenderLikeTransformers(name: String) throws {
        let (header, rows) = try Fixtures.lines("chat/\(name)_chat.jsonl")
        #expect(rows.count >= 20)
        let source: String
        if name == "smollm2" {
            source = try #require(try Fixtures.tokenizer("smollm2").chatTemplate)
        } else {
            source = try String(contentsOf: Fixtures.root.appendingPathComponent("chat/\(name)_template.jinja"), encoding: .utf8)
        }
        var specials = JSONObject()
        if case .object(let s)? = header["special_tokens"] { specials = s }
        let template = try ChatTemplate(source)
        let tokenizerName = (header.str("tokenizer") ?? "").split(separator: "/").first.map(String.init)
        let tok = try tokenizerName.map { try Fixtures.tokenizer($0) }
        for row in rows {
            guard case .array(let list)? = row["messages"] else { continue }
            let messages: [[String: TemplateValue]] = list.map { m in
                guard case .object(let o) = m else { return [:] }
                return ["role": .string(o.str("role") ?? ""), "content": .string(o.str("content") ?? "")]
            }
            let generation = row["add_generation_prompt"] == .bool(true)
            if let expected = row.str("error") {
                // The template raises (e.g. Mistral's role alternation check): we must raise the same message.
                let message = expected.replacingOccurrences(of: "TemplateError: ", with: "")
                do {
                    _ = try template.render(messages: messages, addGenerationPrompt: generation,
                                            bosToken: specials.str("bos_token"), eosToken: specials.str("eos_token"))
                    Issue.record("\(name): expected the template to raise \(message)")
                } catch {
                    #expect(error.description.contains(message))
                }
                continue
            }
            let rendered = try template.render(messages: messages, addGenerationPrompt: generation,
                                               bosToken: specials.str("bos_token"), eosToken: specials.str("eos_token"))
            #expect(rendered == row.str("rendered"), "\(name): \(list.count) messages, generation \(generation)")
            if let tok, !row.ints("ids").isEmpty {
                #expect(tok.encode(rendered, addSpecialTokens: false) == row.ints("ids"))
            }
        }
    }
}
