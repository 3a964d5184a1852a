import Foundation
import Testing
@testable import QLoRATokenizer

/// A tiny byte-level BPE tokenizer.json to exercise loading and errors without fixtures.
func tinyTokenizerJSON(model: String? = nil, preTokenizer: String? = nil, extra: String = "") -> String {
    let m = model ?? #"""
        {"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,
         "fuse_unk":false,"byte_fallback":false,"ignore_merges":false,
         "vocab":{"h":0,"e":1,"l":2,"o":3,"Ġ":4,"w":5,"r":6,"d":7,"he":8,"ll":9,"hell":10,"hello":11,"Ġw":12,"<|end|>":13},
         "merges":["h e","l l","he ll","hell o",["Ġ","w"]]}
        """#
    let p = preTokenizer ?? #"{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true}"#
    return """
        {"version":"1.0","truncation":null,"padding":null,
         "added_tokens":[{"id":13,"content":"<|end|>","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}],
         "normalizer":null,"pre_tokenizer":\(p),"post_processor":null,"decoder":{"type":"ByteLevel"},"model":\(m)\(extra)}
        """
}

@Suite struct TokenizerLoadTests {
    @Test func encodesWithMergesAndAddedTokensAndDecodesBack() throws {
        let tok = try Tokenizer.fromJSON(Array(tinyTokenizerJSON().utf8))
        // "hello world": "hello" merges fully; " w" via an array-form merge; unknown "o r l d" bytes exist.
        #expect(tok.encode("hello<|end|>hello") == [11, 13, 11])
        #expect(tok.encode("hello world") == [11, 12, 3, 6, 2, 7])
        #expect(tok.decode([11, 12, 3, 6, 2, 7]) == "hello world")
        #expect(tok.decode([11, 13], skipSpecialTokens: true) == "hello")
        // Characters missing from the vocab vanish (null unk_token), as in HF.
        #expect(tok.encode("hex") == [8])
        #expect(tok.encode("<|end|>", matchSpecial: false) != [13])
    }

    @Test(arguments: [
        (#"{"model": {"type":"BPE","vocab":{},"merges":[]}, "pre_tokenizer": {"type":"Nonsense"}}"#, "pre_tokenizer: unsupported pre-tokenizer type `Nonsense`"),
        (#"{"pre_tokenizer": null}"#, "model: missing"),
        (#"{"model": {"type":"Unigram","vocab":[]}}"#, "model: unsupported model type `Unigram` (only BPE is implemented)"),
        (#"{"model": {"type":"BPE","vocab":{"a":0},"merges":["a"]}}"#, "model.merges[0]: a merge must be two tokens separated by one space, got `a`"),
        (#"{"model": {"type":"BPE","vocab":{"a":0},"merges":["a b"]}}"#, "model.merges[0]: `b` is not in the vocab"),
        (#"{"model": {"type":"BPE","vocab":{"a":0,"b":1},"merges":["a b"]}}"#, "model.merges[0]: the merge result `ab` is not in the vocab"),
        (#"{"model": {"type":"BPE","vocab":{"a":"x"},"merges":[]}}"#, "model.vocab.a: expected a non-negative integer id"),
        (#"{"model": {"type":"BPE","vocab":{},"merges":[]}, "decoder": {"type":"Sequence","decoders":[{"type":"WordPiece"}]}}"#, "decoder.decoders[0]: unsupported decoder type `WordPiece`"),
        (#"{"model": {"type":"BPE","vocab":{},"merges":[]}, "normalizer": {"type":"Replace","pattern":{"Regex":"("},"content":""}}"#, "normalizer.pattern.Regex: invalid regex"),
        (#"[1,2]"#, "expected an object, got array"),
    ])
    func malformedFilesNameTheJSONPath(json: String, expected: String) {
        do {
            _ = try Tokenizer.fromJSON(Array(json.utf8), file: "bad/tokenizer.json")
            Issue.record("expected an error for \(json)")
        } catch {
            #expect(error.description.hasPrefix("bad/tokenizer.json: "), "\(error)")
            #expect(error.description.contains(expected), "\(error)")
        }
    }

    @Test func missingFileNamesThePath() {
        #expect(throws: TokenizerError.self) { try Tokenizer.load(path: "/nonexistent/tokenizer.json") }
    }
}
