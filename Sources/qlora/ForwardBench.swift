import ArgumentParser
import QLoRABackends
import QLoRABench

struct ForwardBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forward",
        abstract: "Prefill and decode tokens/s of the fp32 forward pass, next to transformers (same threads), with GFLOP/s.",
        discussion: """
            The peer is scripts/reference/forward_peer.py run with .venv-torch on the HF copy of the model \
            (scripts/convert_model_to_hf.py). GFLOP/s counts 2·params per token for the linear layers plus \
            attention (QKᵀ and PV), against this machine's sgemm ceiling (about 195 GFLOP/s on 2 cores).
            """)

    @Option(help: "An HF model directory or a .gguf file.")
    var model: String = ForwardBenchmark().model

    @Option(help: "HF model directory for the peer.")
    var peerModel: String = ForwardBenchmark().peerModel

    @Option(help: "Prompt length for prefill.")
    var promptTokens: Int = ForwardBenchmark().promptTokens

    @Option(help: "Tokens to decode.")
    var decodeTokens: Int = ForwardBenchmark().decodeTokens

    @Option(help: "Threads (default: all cores).")
    var threads: Int?

    @Option(help: "Python with torch + transformers.")
    var python: String = ForwardBenchmark().python

    @Flag(help: "Skip the peer.")
    var noPeer = false

    func run() throws { try benchmark.run() }

    var benchmark: ForwardBenchmark {
        var b = ForwardBenchmark()
        b.model = model
        b.peerModel = peerModel
        b.promptTokens = promptTokens
        b.decodeTokens = decodeTokens
        b.threads = threads
        b.python = python
        b.noPeer = noPeer
        return b
    }
}
