import Foundation
import QLoRAFormats

extension Tokenizer {
    /// Loads `PATH`: a tokenizer.json, a model directory holding one, or a .gguf file (its
    /// `tokenizer.ggml.*` metadata). A tokenizer_config.json next to the tokenizer.json supplies the
    /// chat template and the special token names.
    public static func load(path: String) throws -> Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw TokenizerError(file: path, path: "", "no such file or directory")
        }
        if isDirectory.boolValue {
            let json = URL(fileURLWithPath: path).appendingPathComponent("tokenizer.json").path
            if FileManager.default.fileExists(atPath: json) { return try load(path: json) }
            let ggufs = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".gguf") }.sorted()
            if let first = ggufs.first { return try load(path: URL(fileURLWithPath: path).appendingPathComponent(first).path) }
            throw TokenizerError(file: path, path: "", "no tokenizer.json or .gguf in this directory")
        }
        if path.lowercased().hasSuffix(".gguf") { return try fromGGUF(path: path) }
        let data: [UInt8]
        do { data = try RegularFile.read(path) } catch {
            throw TokenizerError(file: path, path: "", "cannot read: \(error)")
        }
        let tokenizer = try fromJSON(data, file: path)
        let config = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        if FileManager.default.fileExists(atPath: config.path) {
            let configData: [UInt8]
            do { configData = try RegularFile.read(config.path) } catch {
                throw TokenizerError(file: config.path, path: "", "cannot read: \(error)")
            }
            try tokenizer.applyConfig(configData, file: config.path)
        }
        return tokenizer
    }

    /// Parses tokenizer.json bytes.
    public static func fromJSON(_ bytes: [UInt8], file: String = "tokenizer.json") throws(TokenizerError) -> Tokenizer {
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch { throw TokenizerError(file: file, path: "", "invalid JSON: \(error)") }
        let c = JSONCursor(value: root, path: "", file: file)
        _ = try c.object

        var added: [AddedToken] = []
        if let list = c.optional("added_tokens") {
            for t in try list.array {
                added.append(AddedToken(id: try t.require("id").int, content: try t.string("content"),
                                        singleWord: try t.bool("single_word", default: false), lstrip: try t.bool("lstrip", default: false),
                                        rstrip: try t.bool("rstrip", default: false), normalized: try t.bool("normalized", default: true),
                                        special: try t.bool("special", default: false)))
            }
        }
        let normalizer = try c.optional("normalizer").map { (n) throws(TokenizerError) in try Normalizer(n) }
        let pre = try c.optional("pre_tokenizer").map { (p) throws(TokenizerError) in try PreTokenizer(p) }
        let post = try c.optional("post_processor").map { (p) throws(TokenizerError) in try PostProcessor(p) }
        let decoder = try c.optional("decoder").map { (d) throws(TokenizerError) in try TokenDecoder(d) }

        let m = try c.require("model")
        let type = try m.optional("type")?.string ?? "BPE"
        guard type == "BPE" else { throw m.fail("unsupported model type `\(type)` (only BPE is implemented)") }
        if let dropout = m.optional("dropout"), case .number(let d) = dropout.value, d > 0 {
            throw dropout.fail("BPE dropout is not supported (it makes encoding random)")
        }
        var vocab: [String: Int] = [:]
        let vocabObject = try m.require("vocab").object
        vocab.reserveCapacity(vocabObject.pairs.count)
        for (token, id) in vocabObject.pairs {
            guard case .number(let d) = id, d >= 0, d == d.rounded(), d < 1e9 else {
                throw TokenizerError(file: file, path: "model.vocab.\(token)", "expected a non-negative integer id")
            }
            vocab[token] = Int(d)
        }
        var merges: [(String, String)] = []
        let mergeList = try m.require("merges").array
        merges.reserveCapacity(mergeList.count)
        for entry in mergeList {
            switch entry.value {
            case .string(let s):
                if s.hasPrefix("#version") { continue }
                let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw entry.fail("a merge must be two tokens separated by one space, got `\(s)`")
                }
                merges.append((String(parts[0]), String(parts[1])))
            case .array(let pair):
                guard pair.count == 2, case .string(let a) = pair[0], case .string(let b) = pair[1] else {
                    throw entry.fail("a merge must be a pair of strings")
                }
                merges.append((a, b))
            default:
                throw entry.fail("a merge must be a string or a pair, got \(entry.value.typeName)")
            }
        }
        let model = try BPEModel(
            vocab: vocab, merges: merges, unkToken: try m.optional("unk_token")?.string,
            fuseUnk: try m.bool("fuse_unk", default: false), byteFallback: try m.bool("byte_fallback", default: false),
            ignoreMerges: try m.bool("ignore_merges", default: false),
            continuingSubwordPrefix: try m.optional("continuing_subword_prefix")?.string,
            endOfWordSuffix: try m.optional("end_of_word_suffix")?.string, file: file)
        return Tokenizer(addedTokens: added, normalizer: normalizer, preTokenizer: pre, model: model,
                         postProcessor: post, decoder: decoder)
    }

    /// Reads chat_template and special token names from tokenizer_config.json.
    func applyConfig(_ bytes: [UInt8], file: String) throws(TokenizerError) {
        let root: JSONValue
        do { root = try JSONParser.parse(bytes) } catch { throw TokenizerError(file: file, path: "", "invalid JSON: \(error)") }
        let c = JSONCursor(value: root, path: "", file: file)
        func tokenName(_ key: String) throws(TokenizerError) -> String? {
            guard let v = c.optional(key) else { return nil }
            if case .string(let s) = v.value { return s }
            return try v.string("content")
        }
        bosToken = try tokenName("bos_token")
        eosToken = try tokenName("eos_token")
        padToken = try tokenName("pad_token")
        if let t = c.optional("chat_template") {
            switch t.value {
            case .string(let s): chatTemplate = s
            case .array:
                for item in try t.array where try item.string("name") == "default" { chatTemplate = try item.string("template") }
            default: throw t.fail("expected a string or a list of named templates")
            }
        }
    }
}
