import Foundation
import Testing
@testable import QLoRAFormats
@testable import QLoRAPipeline

private let smolTokenizer = repositoryRoot.appendingPathComponent("Tests/QLoRATokenizerTests/Fixtures/smollm2").path
private let spbpeTokenizer = repositoryRoot.appendingPathComponent("Tests/QLoRATokenizerTests/Fixtures/spbpe/tokenizer.json").path

private func tokenize(_ rows: String, format: DatasetFormat, tokenizerPath: String = smolTokenizer, section: String = "",
                      in dir: URL) throws -> (URL, Pipeline.Result) {
    try write(rows, to: dir.appendingPathComponent("d.jsonl"))
    let yaml = """
        name: t
        run_dir: run
        dataset:
          files: [{path: d.jsonl, format: \(format.rawValue)}]
          eval_fraction: 0
        tokenizer:
          path: \(tokenizerPath)
        \(section.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        """
    let result = try Pipeline.run(spec: try loadSpec(yaml, in: dir))
    return (dir.appendingPathComponent("run/tokenize"), result)
}

private func sequences(_ file: URL) throws -> [TokenFile.Sequence] {
    let reader = try TokenFile.Reader(path: file.path)
    return (0..<reader.sequenceCount).map(reader.sequence)
}

@Suite struct TokenizeStageTests {
    @Test func tinyPipelineMatchesTheReferenceGolden() throws {
        try withTemporaryDirectory { dir in
            var spec = try JobSpec.load(path: repositoryRoot.appendingPathComponent("pipelines/tiny.yaml").path)
            // Only the data stages here (the CLI test and scripts/crash-test.sh run the whole pipeline).
            spec.model = nil
            spec.quantization = nil
            spec.lora = nil
            spec.training = nil
            spec.evaluation = nil
            spec.package = nil
            let result = try Pipeline.run(spec: spec, options: .init(runDirectory: dir.path))
            #expect(result.succeeded, "\(result.failure ?? "")")
            let golden = try readLines(repositoryRoot.appendingPathComponent("Tests/QLoRAPipelineTests/Fixtures/tiny-tokenize-golden.jsonl"))
                .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            let ours = try sequences(dir.appendingPathComponent("tokenize/train.tokens"))
                + sequences(dir.appendingPathComponent("tokenize/eval.tokens"))
            #expect(ours.count == golden.count)
            var mismatches = 0
            for (seq, g) in zip(ours, golden) {
                let ids = (g["ids"] as! [Int]).map(UInt32.init)
                let labels = (g["labels"] as! [Int]).map { $0 == 1 }
                if seq.ids != ids || seq.labels != labels {
                    mismatches += 1
                    if mismatches <= 3 { Issue.record("example \(g["id"]!) differs from the reference") }
                }
            }
            #expect(mismatches == 0)
            let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tokenize/stats.json"))) as! [String: Any]
            let totalTokens = golden.reduce(0) { $0 + ($1["ids"] as! [Int]).count }
            let trained = golden.reduce(0) { $0 + ($1["labels"] as! [Int]).reduce(0, +) }
            #expect(stats["examples"] as? Int == golden.count)
            #expect(stats["tokens"] as? Int == totalTokens)
            #expect(stats["trained_tokens"] as? Int == trained)
            #expect(stats["dropped"] as? Int == 0)
            let parity = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("tokenize/parity.json"))) as! [String: Any]
            #expect(parity["prefix_consistent"] as? Bool == true)
        }
    }

    @Test func chatResponsesAreTrainedAndEndWithEOS() throws {
        try withTemporaryDirectory { dir in
            let row = #"{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"},{"role":"user","content":"unanswered"}]}"#
            let (out, result) = try tokenize(row + "\n", format: .chat, in: dir)
            #expect(result.succeeded, "\(result.failure ?? "")")
            let seq = try #require(try sequences(out.appendingPathComponent("train.tokens")).first)
            let trained = zip(seq.ids, seq.labels).filter(\.1).map(\.0)
            // "Hello!" + <|im_end|> (2) + "\n" (198): the response, its EOS, and the template's newline.
            #expect(trained.contains(2))
            #expect(trained.last == 198)
            #expect(seq.labels.first == false)
            #expect(seq.labels.filter { $0 }.count == trained.count)
        }
    }

    @Test func overlengthDropAndTruncateAreAccounted() throws {
        let rows = (0..<10).map { i in "{\"text\":\"\(i) \(String(repeating: "word ", count: i < 2 ? 200 : 3))\"}\n" }.joined()
        try withTemporaryDirectory { dir in
            let (out, result) = try tokenize(rows, format: .text, section: "max_seq_len: 64\nmax_dropped_fraction: 0.5", in: dir)
            #expect(result.succeeded)
            let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("stats.json"))) as! [String: Any]
            #expect(stats["dropped"] as? Int == 2)
            #expect(stats["overlength"] as? Int == 2)
            #expect(try sequences(out.appendingPathComponent("train.tokens")).count == 8)
        }
        try withTemporaryDirectory { dir in
            let (out, _) = try tokenize(rows, format: .text, section: "max_seq_len: 64\noverlength: truncate", in: dir)
            let stats = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("stats.json"))) as! [String: Any]
            #expect(stats["truncated"] as? Int == 2)
            #expect(stats["dropped"] as? Int == 0)
            let seqs = try sequences(out.appendingPathComponent("train.tokens"))
            #expect(seqs.count == 10)
            #expect(seqs.allSatisfy { $0.ids.count <= 64 })
            #expect((stats["truncated_tokens"] as? Int ?? 0) > 0)
        }
        try withTemporaryDirectory { dir in
            let (_, result) = try tokenize(rows, format: .text, section: "max_seq_len: 64", in: dir)
            let failure = try #require(result.failure)
            #expect(failure.contains("dropped 2 of 10 examples (20.00%)"))
            #expect(failure.contains("more than max_dropped_fraction 0.05"))
            #expect(failure.contains("the longest is example "))
        }
    }

    @Test func packingKeepsWholeDocumentsAndBoundaries() throws {
        let rows = (0..<20).map { "{\"text\":\"document number \($0) with a few words\"}\n" }.joined()
        try withTemporaryDirectory { dir in
            let (out, result) = try tokenize(rows, format: .text, section: "max_seq_len: 40\npack: true", in: dir)
            #expect(result.succeeded)
            let reader = try TokenFile.Reader(path: out.appendingPathComponent("train.tokens").path)
            #expect(reader.packed)
            #expect(reader.documentCount == 20)
            #expect(reader.sequenceCount < 20)
            let seqs = (0..<reader.sequenceCount).map(reader.sequence)
            #expect(seqs.allSatisfy { $0.ids.count <= 40 && $0.documentStarts.first == 0 })
            #expect(seqs.reduce(0) { $0 + $1.documentStarts.count } == 20)
        }
    }

    /// The spbpe fixture with a tokenizer_config.json naming its BOS/EOS.
    private func spbpeWithConfig(in dir: URL) throws -> String {
        let tokDir = dir.appendingPathComponent("tok")
        try FileManager.default.createDirectory(at: tokDir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: spbpeTokenizer, toPath: tokDir.appendingPathComponent("tokenizer.json").path)
        try write(#"{"bos_token":"<s>","eos_token":"</s>"}"#, to: tokDir.appendingPathComponent("tokenizer_config.json"))
        return tokDir.path
    }

    @Test func trainOnInputsTrainsEveryTokenAndSpecialsStartCompletions() throws {
        let row = #"{"prompt":"Question?","completion":"Answer."}"#
        try withTemporaryDirectory { dir in
            let (out, _) = try tokenize(row + "\n", format: .completion, tokenizerPath: try spbpeWithConfig(in: dir), in: dir)
            let seq = try #require(try sequences(out.appendingPathComponent("train.tokens")).first)
            #expect(seq.ids.first == 1)          // <s> from the TemplateProcessing post-processor
            #expect(seq.labels.first == false)
            #expect(seq.ids.last == 2)           // </s>: EOS appended to the response
            #expect(seq.labels.last == true)
        }
        try withTemporaryDirectory { dir in
            let (out, _) = try tokenize(row + "\n", format: .completion, tokenizerPath: try spbpeWithConfig(in: dir),
                                        section: "train_on_inputs: true", in: dir)
            let seq = try #require(try sequences(out.appendingPathComponent("train.tokens")).first)
            #expect(seq.labels.allSatisfy { $0 })
        }
    }
}

@Suite struct LengthGroupingTests {
    @Test func groupsByLengthDeterministicallyAndIsAPermutation() {
        let lengths = (0..<300).map { ($0 * 37) % 101 }
        let a = LengthGrouping.order(lengths: lengths, seed: 3)
        #expect(a == LengthGrouping.order(lengths: lengths, seed: 3))
        #expect(a != LengthGrouping.order(lengths: lengths, seed: 4))
        #expect(a.sorted() == Array(0..<300))
        #expect(lengths[a[0]] == lengths.max())
        // Within each megabatch lengths never increase (the first elements of two megabatches may have been
        // swapped to put the longest sequence first, as HF does).
        for start in stride(from: 0, to: 300, by: 64) {
            let chunk = a[(start + 1)..<min(300, start + 64)].map { lengths[$0] }
            #expect(chunk == chunk.sorted(by: >))
        }
    }
}
