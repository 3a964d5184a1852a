import Foundation
import QLoRAFormats
import QLoRATokenizer

/// Stage 2: examples from ingest → token ids with labels, in `TokenFile` format.
///
/// Outputs (in `<run>/tokenize/`):
/// - `train.tokens`, `eval.tokens`: ids, label mask (1 = trained target), sequence and document
///   boundaries (see `TokenFile`);
/// - `stats.json`: examples, sequences, tokens, trained/masked counts, dropped and truncated counts,
///   length histogram, the worst over-long example;
/// - `parity.json`: one eval example rendered the way inference will (generation prompt) and whether the
///   training tokens start with exactly those ids;
/// - `chat_template.jinja`: the template used (for packaging);
/// - `train.order` (with `group_by_length`): the training order, u32 little-endian sequence indices.
///
/// Per example: chat-like examples are rendered with the chat template and split into prompt/response
/// parts (`ChatFormatter`); completion examples are prompt (masked) + completion (trained); text examples
/// are trained entirely. The tokenizer's post-processor specials (e.g. BOS) start completion and text
/// examples (chat templates write their own). EOS is appended to every response that lacks it.
/// `train_on_inputs: true` trains on every token.
public struct TokenizeStage: Stage {
    public let id = StageID.tokenize
    /// 2: GGUF tokenizers follow `tokenizer.ggml.pre` (SmolLM2 numerals tokenize as the original tokenizer does).
    public let formatVersion = 2

    public init() {}

    public func configuration(of spec: JobSpec) throws -> Data {
        struct Config: Encodable {
            var tokenizer: TokenizerSection?
            var tokenizerSource: String?
            var seed: Int?
        }
        // The seed matters only for the length-grouped order.
        return try canonicalJSON(Config(tokenizer: spec.tokenizer, tokenizerSource: spec.tokenizerSource,
                                        seed: spec.tokenizer?.groupByLength == true ? spec.seed : nil))
    }

    public func inputFiles(of spec: JobSpec) -> [URL] {
        guard let source = spec.tokenizerSource else { return [] }
        return TokenizerFiles.files(for: spec.resolve(source))
    }

    public func run(_ context: StageContext) throws -> StageReport {
        guard let section = context.spec.tokenizer, let source = context.spec.tokenizerSource,
              let ingest = context.upstream[.ingest] else { throw StageFailure("the spec has no `tokenizer` section") }
        let tokenizer: Tokenizer
        do { tokenizer = try Tokenizer.load(path: context.spec.resolve(source).path) } catch {
            throw StageFailure("cannot load the tokenizer: \(error)")
        }
        let formatter = try ChatFormatter(tokenizer: tokenizer, choice: section.chatTemplate)
        let eos = tokenizer.eosTokenID
        var notes: [String] = []
        if eos == nil {
            notes.append("WARNING: the tokenizer has no EOS token: responses will not end with one, and a model trained on them may never stop")
        }
        let encoder = ExampleEncoder(tokenizer: tokenizer, formatter: formatter, eos: eos, trainOnInputs: section.trainOnInputs)
        var stats = TokenizeStats()
        var parity: Parity?
        for split in ["train", "eval"] {
            let examples = try readExamples(ingest.appendingPathComponent("\(split).jsonl"))
            context.progress.start("tokenizing \(split)", total: Int64(examples.count), unit: .items)
            let encoded = try encoder.encodeAll(examples) { done in context.progress.update(Int64(done)) }
            context.progress.finish(Int64(examples.count))
            var kept: [EncodedExample] = []
            for (example, enc) in zip(examples, encoded) {
                stats.examples += 1
                var e = enc
                if e.ids.count > section.maxSeqLen {
                    stats.noteOverlength(id: example.id, length: e.ids.count)
                    switch section.overlength {
                    case .fail:
                        throw StageFailure("example \(example.id) (\(example.source)) has \(e.ids.count) tokens, more than max_seq_len \(section.maxSeqLen) (overlength: fail)")
                    case .drop:
                        stats.dropped += 1
                        continue
                    case .truncate:
                        stats.truncated += 1
                        stats.truncatedTokens += e.ids.count - section.maxSeqLen
                        e.ids.removeLast(e.ids.count - section.maxSeqLen)
                        e.labels.removeLast(e.labels.count - section.maxSeqLen)
                    }
                }
                stats.add(e, split: split)
                kept.append(e)
            }
            if split == "eval" || parity == nil, let first = examples.first(where: { if case .messages = $0.content { return true }; return false }) {
                parity = try encoder.parity(first)
            }
            let sequences = section.pack ? Packer.pack(kept, maxLength: section.maxSeqLen)
                : kept.map { TokenFile.Sequence(ids: $0.ids, labels: $0.labels) }
            if split == "train" { stats.trainSequences = sequences.count } else { stats.evalSequences = sequences.count }
            if split == "train" && section.groupByLength {
                let order = LengthGrouping.order(lengths: sequences.map(\.ids.count), seed: UInt64(context.spec.seed))
                var bytes = Data(capacity: 4 * order.count)
                for i in order { withUnsafeBytes(of: UInt32(i).littleEndian) { bytes.append(contentsOf: $0) } }
                try AtomicFile.write(bytes, to: context.output.appendingPathComponent("train.order"))
            }
            try TokenFile.write(sequences, packed: section.pack, vocabularySize: tokenizer.vocabularySize,
                                to: context.output.appendingPathComponent("\(split).tokens"))
        }
        let droppedFraction = stats.examples == 0 ? 0 : Double(stats.dropped) / Double(stats.examples)
        if droppedFraction > section.maxDroppedFraction {
            throw StageFailure("""
                dropped \(stats.dropped) of \(stats.examples) examples (\(String(format: "%.2f%%", droppedFraction * 100))) \
                longer than max_seq_len \(section.maxSeqLen), more than max_dropped_fraction \(section.maxDroppedFraction); \
                the longest is example \(stats.worstID ?? "?") with \(stats.worstLength) tokens
                """)
        }
        if let parity, !parity.prefixConsistent {
            notes.append("WARNING: parity check failed for example \(parity.exampleID): the training tokens do not start with the inference prompt's tokens")
        }
        let encoderJSON = JSONEncoder()
        encoderJSON.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try AtomicFile.write(try encoderJSON.encode(stats), to: context.output.appendingPathComponent("stats.json"))
        if let parity { try AtomicFile.write(try encoderJSON.encode(parity), to: context.output.appendingPathComponent("parity.json")) }
        try AtomicFile.write(formatter.templateSource, to: context.output.appendingPathComponent("chat_template.jinja"))
        notes.insert("\(stats.examples) examples → \(stats.tokens) tokens (\(stats.trainedTokens) trained), dropped \(stats.dropped), truncated \(stats.truncated); template \(formatter.templateName)", at: 0)
        return StageReport(metrics: [
            "examples": Double(stats.examples), "tokens": Double(stats.tokens), "trained_tokens": Double(stats.trainedTokens),
            "dropped": Double(stats.dropped), "truncated": Double(stats.truncated),
        ], notes: notes)
    }

    private func readExamples(_ url: URL) throws -> [Example] {
        var out: [Example] = []
        let reader = try LineReader(path: url.path)
        try reader.forEachLine { line, number, _ in
            do {
                out.append(try Example(json: try JSONParser.parse(line)))
            } catch {
                throw StageFailure("\(url.path):\(number): \(error)")
            }
        }
        return out
    }
}

/// Which files make up a tokenizer at `url` (hashed into the fingerprint).
enum TokenizerFiles {
    static func files(for url: URL) -> [URL] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else { return [url] }
        let dir = isDirectory.boolValue ? url : url.deletingLastPathComponent()
        if !isDirectory.boolValue && url.pathExtension.lowercased() == "gguf" { return [url] }
        let json = isDirectory.boolValue ? dir.appendingPathComponent("tokenizer.json") : url
        let config = dir.appendingPathComponent("tokenizer_config.json")
        return [json] + (FileManager.default.fileExists(atPath: config.path) ? [config] : [])
    }
}

extension JobSpec {
    /// The tokenizer to use: `tokenizer.path`, else the model's.
    public var tokenizerSource: String? { tokenizer?.path ?? model?.path }
}
