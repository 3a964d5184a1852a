import Foundation
import QLoRACore
import QLoRAFormats
import QLoRAModel
import QLoRATokenizer

/// Every reader of untrusted bytes, as one entry point each: the fuzzing suite (`Sources/qlora-fuzz`, `make fuzz`,
/// docs/RELIABILITY.md) drives these with libFuzzer, and `FuzzCorpusTests` replays the committed seed corpora and
/// every crash ever found (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`) through them on every test run.
///
/// A target writes the input where the real reader would find it (a file with the right name in `scratch`), calls
/// the reader as the pipeline does, and then uses what it read (tokenizes, renders, dequantizes, walks every
/// sequence), so a reader that accepts a malformed file and leaves a trap for its caller is found too. Errors are
/// the expected outcome for most inputs; a crash, a hang or unbounded memory is the bug.
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A job spec (YAML): parse, decode, validate, strict checks.
    case spec
    /// Dataset rows through the ingest reader and normalizer (the format is guessed from the keys the input names).
    case jsonl, json, csv
    /// Gzip'd JSONL rows (the inflate path and its limits).
    case jsonlGzip = "jsonl-gz"
    /// tokenizer.json, then encode/decode a fixed text.
    case tokenizerJSON = "tokenizer-json"
    /// tokenizer_config.json next to a small valid tokenizer.json (chat template and special tokens).
    case tokenizerConfig = "tokenizer-config"
    /// A chat template source, rendered with a fixed conversation.
    case chatTemplate = "chat-template"
    /// A safetensors file: header, then every tensor read as floats.
    case safetensors
    /// A GGUF file opened as a model (config, tokenizer, every tensor dequantized).
    case gguf
    /// A prepared bitsandbytes 4-bit checkpoint (model.safetensors with quant states) and its config.json.
    case bnb4bit = "bnb-4bit"
    /// A PEFT adapter directory (adapter_config.json + adapter_model.safetensors).
    case peftAdapter = "peft-adapter"
    /// An adapter archive: listed, verified and extracted.
    case archive
    /// A token file (the tokenize stage's output), every sequence walked.
    case tokenFile = "token-file"

    /// Runs one input. `scratch` is an empty directory owned by the caller (reused between inputs).
    public func run(_ bytes: [UInt8], scratch: URL) {
        do { try read(bytes, scratch: scratch) } catch {}
    }


    /// Inputs larger than this are not useful and only slow a run down (libFuzzer's `-max_len`).
    public var maxLength: Int {
        switch self {
        case .gguf, .safetensors, .bnb4bit, .peftAdapter, .archive, .tokenFile, .jsonlGzip, .tokenizerJSON: 64 << 10
        default: 16 << 10
        }
    }

    /// Runs one input and throws what the reader threw (the seed corpora must read without an error).
    public func read(_ bytes: [UInt8], scratch: URL) throws {
        switch self {
        case .spec:
            let text = String(decoding: bytes, as: UTF8.self)
            let spec = try JobSpec.parse(yaml: text, file: scratch.appendingPathComponent("job.yaml").path)
            _ = spec.strictProblems()
            _ = spec.missingInputs()
            try spec.validate()
            _ = try spec.normalizedYAML()
        case .jsonl: try ingest(bytes, name: "rows.jsonl", scratch)
        case .json: try ingest(bytes, name: "rows.json", scratch)
        case .csv: try ingest(bytes, name: "rows.csv", scratch)
        case .jsonlGzip: try ingest(bytes, name: "rows.jsonl.gz", scratch)
        case .tokenizerJSON:
            let path = try write(bytes, "tokenizer.json", scratch)
            try? FileManager.default.removeItem(at: scratch.appendingPathComponent("tokenizer_config.json"))
            exercise(try Tokenizer.load(path: path))
        case .tokenizerConfig:
            let path = try write(Self.smallTokenizerJSON, "tokenizer.json", scratch)
            _ = try write(bytes, "tokenizer_config.json", scratch)
            exercise(try Tokenizer.load(path: path))
        case .chatTemplate:
            let template = try ChatTemplate(String(decoding: bytes, as: UTF8.self), name: "fuzz")
            _ = try template.render(messages: Self.conversation, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
        case .safetensors:
            let path = try write(bytes, "model.safetensors", scratch)
            let file = try SafetensorsFile(path: path)
            for name in file.names { if let info = file.tensor(named: name) { _ = try file.floats(info) } }
        case .gguf:
            let path = try write(bytes, "model.gguf", scratch)
            try loadModel(path)
            exercise(try Tokenizer.load(path: path))
        case .bnb4bit:
            // [u16 length of config.json][config.json][model.safetensors]
            let (config, weights) = split(bytes)
            let dir = scratch.appendingPathComponent("prepared")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            _ = try write(config, "config.json", dir)
            _ = try write(weights, "model.safetensors", dir)
            let checkpoint = try SafetensorsCheckpoint(path: dir.path)
            for name in checkpoint.names where !BitsAndBytesFormat.isAuxiliary(name) {
                if let t = try BitsAndBytesFormat.read(checkpoint, weightName: name) { _ = FourBitQuantizer.dequantizeReference(t) }
            }
            try loadModel(dir.path)
        case .peftAdapter:
            // [u16 length of adapter_config.json][adapter_config.json][adapter_model.safetensors]
            let (config, weights) = split(bytes)
            let dir = scratch.appendingPathComponent("adapter")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            _ = try write(config, PEFTAdapter.configFileName, dir)
            _ = try write(weights, PEFTAdapter.weightsFileName, dir)
            _ = try? AdapterVerifier.verify(directory: dir)
            _ = try PEFTAdapter.load(directory: dir)
        case .archive:
            let path = try write(bytes, "adapter.tar.gz", scratch)
            let url = URL(fileURLWithPath: path)
            let limits = ArchiveLimits(maxEntryBytes: 8 << 20, maxTotalBytes: 16 << 20)
            _ = try? ArchiveReader.entries(archive: url, limits: limits)
            _ = try? AdapterPackage.verify(archive: url, limits: limits)
            let target = scratch.appendingPathComponent("extracted")
            try? FileManager.default.removeItem(at: target)
            _ = try ArchiveReader.extract(archive: url, to: target, limits: limits)
        case .tokenFile:
            let path = try write(bytes, "train.tokens", scratch)
            let reader = try TokenFile.Reader(path: path)
            for i in 0..<reader.sequenceCount { _ = reader.sequence(i) }
        }
    }

    // MARK: Helpers

    private func write(_ bytes: [UInt8], _ name: String, _ dir: URL) throws -> String {
        let url = dir.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func split(_ bytes: [UInt8]) -> ([UInt8], [UInt8]) {
        guard bytes.count >= 2 else { return ([], bytes) }
        let n = min(Int(bytes[0]) | Int(bytes[1]) << 8, bytes.count - 2)
        return (Array(bytes[2..<(2 + n)]), Array(bytes[(2 + n)...]))
    }

    private func ingest(_ bytes: [UInt8], name: String, _ scratch: URL) throws {
        let path = try write(bytes, name, scratch)
        let file = DatasetFile(path: path, format: Self.guessFormat(bytes))
        let out = scratch.appendingPathComponent("ingest")
        try? FileManager.default.removeItem(at: out)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        let writer = try IngestWriter(directory: out, split: bytes.count % 2 == 0 ? .evalFraction(0.2) : .evalSize(1), dedupe: true)
        try IngestReader.read(file: file, url: URL(fileURLWithPath: path), into: writer,
                              progress: ProgressReporter(stage: .ingest, sink: { _ in }))
        _ = try writer.finish()
    }

    /// The format whose key appears first in the input, so a seed of each format is read as that format.
    static func guessFormat(_ bytes: [UInt8]) -> DatasetFormat {
        let text = String(decoding: bytes.prefix(4096), as: UTF8.self)
        let keys: [(String, DatasetFormat)] = [("messages", .chat), ("prompt", .completion), ("instruction", .alpaca), ("text", .guanaco)]
        let found = keys.compactMap { key, format in text.range(of: key).map { ($0.lowerBound, format) } }
        let format = found.min { $0.0 < $1.0 }?.1 ?? .alpaca
        return format == .guanaco && !text.contains("### Human") ? .text : format
    }

    private func loadModel(_ path: String) throws {
        let source = try ModelTensorSource.open(path)
        for tensor in source.tensors where tensor.shape.reduce(1, *) <= 1 << 22 { _ = try tensor.load() }
    }

    private func exercise(_ tokenizer: Tokenizer) {
        let ids = tokenizer.encode(Self.sampleText)
        _ = tokenizer.decode(ids)
        _ = tokenizer.decode(ids, skipSpecialTokens: true)
        if let formatter = try? ChatFormatter(tokenizer: tokenizer, choice: "model") {
            _ = try? formatter.segments([.init(role: .user, content: "Hi"), .init(role: .assistant, content: "Hello!")])
        }
    }

    private static let sampleText = "Hello, world! 12345 ٣٤ café\n\t<s> naïve 😀 ..."

    /// User and assistant turns only: some real templates (Mistral's) refuse a system message.
    private static let conversation: [[String: TemplateValue]] = [
        ["role": .string("user"), "content": .string("What is 2+2?")],
        ["role": .string("assistant"), "content": .string("4")],
        ["role": .string("user"), "content": .string("Thanks")],
    ]

    /// A byte-level BPE tokenizer.json with a handful of merges (the `tokenizer-config` target's partner).
    static let smallTokenizerJSON = Array("""
    {"version":"1.0","added_tokens":[{"id":0,"content":"<s>","special":true},{"id":1,"content":"</s>","special":true}],
     "normalizer":null,"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
     "post_processor":null,"decoder":{"type":"ByteLevel","add_prefix_space":true,"trim_offsets":true,"use_regex":true},
     "model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,"end_of_word_suffix":null,
       "fuse_unk":false,"byte_fallback":false,
       "vocab":{"<s>":0,"</s>":1,"H":2,"i":3,"e":4,"l":5,"o":6,"!":7,"Ġ":8,"He":9,"ll":10,"llo":11,"Hello":12},
       "merges":["H e","l l","ll o","He llo"]}}
    """.utf8)
}
