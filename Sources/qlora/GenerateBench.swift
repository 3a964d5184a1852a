import ArgumentParser
import QLoRABackends
import QLoRABench

struct GenerateBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Prefill and greedy decode tokens/s of the 4-bit model (NF4 + double quant), next to llama.cpp on the same GGUF and threads.",
        discussion: """
            Loads --model (a .gguf file, an HF directory, or a prepared 4-bit directory), quantizes its projections \
            in memory as the prepare stage does (--quantize, default nf4 with double quantization, block 64; \
            already 4-bit weights are kept), then times the prefill of the chat-templated --prompt and the greedy \
            decode of --decode-tokens tokens (stop tokens ignored, so every run decodes the same count), median of \
            --repeat runs. The per-token split (4-bit linears, LM head, the rest) times those ops alone on the \
            same shapes. The peer is scripts/peers/llama_cpp_generate.py run with .venv-llama \
            (scripts/peers/setup_llama_venv.sh) on the GGUF itself (its own Q4_1 weights), fed the same prompt \
            ids, greedy, with the same thread count.
            """)

    @Option(help: "A .gguf file, an HF model directory or a prepared 4-bit directory.")
    var model: String = GenerateBenchmark().model

    @Option(help: "Tokenizer (default: the model's own; a prepared directory from a GGUF needs the GGUF here).")
    var tokenizer: String?

    @Option(help: "The GGUF file the peer runs (default: --model when it is a .gguf).")
    var peerModel: String?

    @Option(help: "Quantize dense projections in memory: nf4, fp4 or none.")
    var quantize: String = GenerateBenchmark().quantize

    @Option(help: "The prompt (rendered with the model's chat template).")
    var prompt: String = GenerateBenchmark().prompt

    @Option(help: "Tokens to decode.")
    var decodeTokens: Int = GenerateBenchmark().decodeTokens

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Option(help: "Our backend: auto, cpu, reference or cuda.")
    var backend: BackendChoice = GenerateBenchmark().backend

    @Option(help: "Timed repetitions (median reported).")
    var `repeat`: Int = GenerateBenchmark().repeat

    @Option(help: "Python with llama-cpp-python.")
    var python: String = GenerateBenchmark().python

    @Flag(help: "Skip the peer.")
    var noPeer = false

    func validate() throws {
        do { try benchmark.validate() } catch { throw ValidationError("\(error)") }
    }

    func run() throws { try benchmark.run() }

    var benchmark: GenerateBenchmark {
        var b = GenerateBenchmark()
        b.model = model
        b.tokenizer = tokenizer
        b.peerModel = peerModel
        b.quantize = quantize
        b.prompt = prompt
        b.decodeTokens = decodeTokens
        b.threads = threads
        b.backend = backend
        b.`repeat` = `repeat`
        b.python = python
        b.noPeer = noPeer
        return b
    }
}
