import ArgumentParser
import Foundation
import QLoRABackends
import QLoRACore
import QLoRAFormats
import QLoRAModel
import QLoRATokenizer

/// Loads a model for a CLI command; errors exit 2 naming the file.
func loadModel(_ path: String, backend choice: BackendChoice = .auto, threads: Int?, tokenizer: String? = nil,
               quantize: FourBitOptions? = nil, adapter: String? = nil) throws -> LoadedModel {
    do {
        let backend = try Backends.make(choice, threads: threads).backend
        var loaded = try ModelLoader.load(path: path, tokenizer: tokenizer, backend: backend)
        if let quantize { loaded = loaded.quantized(quantize) }
        if let adapter {
            // A package archive is unpacked safely and verified first; a plain PEFT directory is used as it is.
            let opened = try openAdapter(adapter)
            defer { opened.close() }
            loaded.model = try loaded.model.withAdapter(directory: opened.directory.path)
        }
        return loaded
    } catch {
        printError("error: \(error)")
        throw ExitCode(2)
    }
}

/// The prompt's ids: raw text, or rendered with the model's chat template (generation prompt on).
func promptIDs(_ loaded: LoadedModel, prompt: String, chat: Bool) throws -> [Int] {
    do { return try loaded.promptIDs(prompt, chat: chat) } catch {
        printError("error: chat template: \(error)")
        throw ExitCode(1)
    }
}

/// The model to load, with its tokenizer and an optional adapter: `generate`, `logits` and `evaluate` share them.
struct ModelOptions: ParsableArguments {
    @Option(help: "An HF model directory (fp32/bf16/f16 or prepared 4-bit) or a .gguf file.")
    var model: String

    @Option(help: "Tokenizer (tokenizer.json, model directory or .gguf); default: the model's own.")
    var tokenizer: String?

    @Option(help: "A LoRA adapter: a qlora package archive (.tar.gz, .tar.zst, .zip; verified first) or a PEFT adapter directory.")
    var adapter: String?

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(help: "Backend: auto, cpu, reference or cuda (the scalar definitions; slow).")
    var backend: BackendChoice = .auto
}

extension BackendChoice: ExpressibleByArgument {}
extension ComputePrecision: ExpressibleByArgument {}

/// Options `generate` and `logits` share.
struct ModelPromptOptions: ParsableArguments {
    @OptionGroup var loading: ModelOptions

    @Option(help: "Quantize the projections in memory after loading: nf4 or fp4 (double quant, block 64).")
    var quantize: FourBitType?

    @Option(help: "The prompt text.")
    var prompt: String

    @Flag(help: "Wrap the prompt as a user message in the model's chat template (with the generation prompt).")
    var chat = false

    func load() throws -> LoadedModel {
        try loadModel(loading.model, backend: loading.backend, threads: loading.threads, tokenizer: loading.tokenizer,
                      quantize: quantize.map { FourBitOptions(type: $0) }, adapter: loading.adapter)
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate text from a model (greedy with --temperature 0), streaming tokens as they come.")

    @OptionGroup var options: ModelPromptOptions

    @Option(help: "Maximum number of new tokens.")
    var maxNewTokens = 128

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature = 0.0

    @Option(help: "Nucleus sampling: keep the smallest set of tokens whose probability reaches this.")
    var topP = 1.0

    @Option(help: "Seed for sampling.")
    var seed: UInt64 = 0

    func validate() throws {
        guard maxNewTokens > 0 else { throw ValidationError("--max-new-tokens must be > 0") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be >= 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    func run() throws {
        let loaded = try options.load()
        let ids = try promptIDs(loaded, prompt: options.prompt, chat: options.chat)
        var stops = Set(loaded.model.config.eosTokenIDs)
        if let eos = loaded.tokenizer.eosTokenID { stops.insert(eos) }
        let tokenizer = loaded.tokenizer
        var produced: [Int] = []
        var printed = ""
        _ = Generator(model: loaded.model).generate(
            prompt: ids, .init(maxNewTokens: maxNewTokens, temperature: temperature, topP: topP, seed: seed, stopTokens: stops)
        ) { id in
            guard !stops.contains(id) else { return }
            produced.append(id)
            // Print the newly decoded suffix (decoding the whole output keeps multi-byte characters intact).
            let text = tokenizer.decode(produced, skipSpecialTokens: true)
            if text.hasPrefix(printed), !text.hasSuffix("\u{FFFD}") {
                FileHandle.standardOutput.write(Data(text.dropFirst(printed.count).utf8))
                printed = text
            }
        }
        let text = tokenizer.decode(produced, skipSpecialTokens: true)
        if text.count > printed.count { FileHandle.standardOutput.write(Data(text.dropFirst(printed.count).utf8)) }
        print("")
    }
}

struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Top-K logits at the last position and the sequence's mean negative log-likelihood.")

    @OptionGroup var options: ModelPromptOptions

    @Option(help: "How many top logits to print.")
    var topK = 10

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let loaded = try options.load()
        let ids = try promptIDs(loaded, prompt: options.prompt, chat: options.chat)
        guard !ids.isEmpty else {
            printError("error: the prompt encodes to no tokens")
            throw ExitCode(2)
        }
        let m = loaded.model
        var cache = KVCache(config: m.config, capacity: ids.count)
        let all = m.forward(ids, cache: &cache, allLogits: true)
        let v = m.config.vocabSize
        let last = Array(all[((ids.count - 1) * v)...])
        let top = last.enumerated().sorted { $0.element != $1.element ? $0.element > $1.element : $0.offset < $1.offset }.prefix(topK)
        var nll = Double.nan
        if ids.count > 1 {
            var total = 0.0
            for t in 0..<(ids.count - 1) {
                let row = all[(t * v)..<((t + 1) * v)]
                let mx = Double(row.max()!)
                let lse = mx + Foundation.log(row.reduce(0.0) { $0 + Foundation.exp(Double($1) - mx) })
                total += lse - Double(row[row.startIndex + ids[t + 1]])
            }
            nll = total / Double(ids.count - 1)
        }
        if json {
            var out: [UInt8] = []
            let topJSON: JSONValue = .array(top.map { .object(JSONObject([("id", .number(Double($0.offset))),
                                                                          ("token", .string(loaded.tokenizer.token(of: $0.offset) ?? "")),
                                                                          ("logit", .number(Double($0.element)))])) })
            let object: JSONValue = .object(JSONObject([
                ("tokens", .number(Double(ids.count))), ("input_ids", .array(ids.map { .number(Double($0)) })),
                ("top", topJSON), ("mean_nll", nll.isFinite ? .number(nll) : .null),
            ]))
            JSONWriter.write(object, into: &out)
            print(String(decoding: out, as: UTF8.self))
        } else {
            print("\(ids.count) tokens; mean NLL \(nll.isFinite ? String(format: "%.6f", nll) : "n/a")")
            for (id, logit) in top {
                print(String(format: "%8d  %10.5f  ", id, logit) + (loaded.tokenizer.token(of: id) ?? "").debugDescription)
            }
        }
    }
}
