import ArgumentParser
import QLoRABackends
import QLoRABench

struct PagerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pager",
        abstract: "AdamW step time with the moments in memory, paged without a limit, and paged under a budget smaller than the state.",
        discussion: """
            LoRA adapters shaped for SmolLM2-135M (30 layers, all seven projections, rank --rank), seeded random \
            gradients, --steps AdamW updates per setting. Prints ms per update, the slowdown against in-memory \
            moments, page evictions, and checks that every setting ends with bit-identical adapters and moments. \
            A training step of SmolLM2 at seq 256 × batch 4 takes about 7.5 s on 2 cores (qlora bench train), \
            so the optimizer's share of a step is printed too.
            """)

    @Option(help: "LoRA rank.")
    var rank: Int = PagerBenchmark().rank

    @Option(help: "AdamW updates per setting.")
    var steps: Int = PagerBenchmark().steps

    @Option(help: "Resident budget as a fraction of the optimizer state.")
    var budgetFraction: Double = PagerBenchmark().budgetFraction

    @Option(help: "Training step time to compare against, in seconds.")
    var stepSeconds: Double = PagerBenchmark().stepSeconds

    func run() throws { try benchmark.run() }

    var benchmark: PagerBenchmark {
        var b = PagerBenchmark()
        b.rank = rank
        b.steps = steps
        b.budgetFraction = budgetFraction
        b.stepSeconds = stepSeconds
        return b
    }
}
