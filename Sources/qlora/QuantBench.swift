import ArgumentParser
import QLoRABackends
import QLoRABench

struct NF4Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nf4",
        abstract: "NF4 dequantization GB/s next to memcpy, and the 4-bit linear forward/backward next to fp32 sgemm.",
        discussion: """
            Dequantization: a 4096×4096 NF4 (double-quant) weight into fp32, counted as fp32 bytes written per \
            second, next to a memcpy of the same fp32 bytes. Linear: SmolLM2-135M's seven projection shapes at \
            --tokens rows: forward y = x·Wᵀ and input gradient dx = dy·W with the weight in NF4 (dequantized slab \
            by slab into sgemm) next to the same sgemm with the weight already in fp32. Goal: NF4 ≤ 1.25× fp32.
            """)

    @Option(help: "Rows (tokens) of the linear benchmarks.")
    var tokens: Int = NF4Benchmark().tokens

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Option(help: "Timed repetitions (median reported).")
    var repeats: Int = NF4Benchmark().repeats

    func run() throws { try benchmark.run() }

    var benchmark: NF4Benchmark {
        var b = NF4Benchmark()
        b.tokens = tokens
        b.threads = threads
        b.repeats = repeats
        return b
    }
}

struct PerplexityBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Mean NLL / perplexity of a model on fixed passages: fp32 vs NF4+DQ vs NF4 vs FP4+DQ, side by side.",
        discussion: """
            Each passage (the `text` field of a JSONL file, default the first 100 LAMBADA passages from \
            scripts/fetch_datasets.py) is tokenized with the model's tokenizer (BOS added) and scored as one \
            sequence; the NLL is summed over all predicted tokens of all passages and divided by their count.
            """)

    @Option(help: "An HF model directory or a .gguf file (quantized variants are made from it in memory).")
    var model: String = PerplexityBenchmark().model

    @Option(help: "JSONL file with a `text` field per line.")
    var text: String = PerplexityBenchmark().text

    @Option(help: "Number of passages.")
    var passages: Int = PerplexityBenchmark().passages

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    func run() throws { try benchmark.run() }

    var benchmark: PerplexityBenchmark {
        var b = PerplexityBenchmark()
        b.model = model
        b.text = text
        b.passages = passages
        b.threads = threads
        return b
    }
}

struct PrepareBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Peak RSS and time of preparing a synthetic model of ≥ 2 GB fp32, against the streaming bound.",
        discussion: """
            Generates (once) a random LLaMA-shaped HF checkpoint in fp32 under --dir (hidden 2048, intermediate 5632, \
            8 layers, vocab 32000, untied lm_head: about 2.2 GB), then runs `qlora prepare` on it in a child process and \
            compares its peak RSS with the bound: prepared size + one decoder layer in fp32 + 64 MB.
            """)

    @Option(help: "Where the synthetic model lives.")
    var dir: String = PrepareBenchmark().dir

    @Option(help: "Decoder layers of the synthetic model.")
    var layers: Int = PrepareBenchmark().layers

    func run() throws { try benchmark.run() }

    var benchmark: PrepareBenchmark {
        var b = PrepareBenchmark()
        b.dir = dir
        b.layers = layers
        return b
    }
}
