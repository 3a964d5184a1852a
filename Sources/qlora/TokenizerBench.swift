import ArgumentParser
import QLoRABackends
import QLoRABench

struct TokenizerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Tokens/s on a text corpus (one input per line) for us and for HF tokenizers, 1 thread and all threads, with an id-by-id comparison.",
        discussion: """
            Make the corpus with scripts/reference/make_tokenizer_corpus.py and the reference environment with \
            scripts/reference/setup_venv.sh; the peer is scripts/reference/tokenizer_peer.py run with .venv-ref.
            """)

    @Option(help: "A tokenizer.json, a model directory or a .gguf file.")
    var tokenizer: String = TokenizerBenchmark().tokenizer

    @Option(help: "Corpus: UTF-8 text, one input per line.")
    var corpus: String = TokenizerBenchmark().corpus

    @Option(help: "Python interpreter with tokenizers installed.")
    var python: String = TokenizerBenchmark().python

    @Flag(help: "Skip the Python peer.")
    var noPeer = false

    func run() throws { try benchmark.run() }

    var benchmark: TokenizerBenchmark {
        var b = TokenizerBenchmark()
        b.tokenizer = tokenizer
        b.corpus = corpus
        b.python = python
        b.noPeer = noPeer
        return b
    }
}
