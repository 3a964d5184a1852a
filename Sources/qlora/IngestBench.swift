import ArgumentParser
import QLoRABackends
import QLoRABench

struct IngestBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Ingest throughput (MB/s) on a large synthetic alpaca JSONL file, next to a Python json+hashlib peer.",
        discussion: """
            Generates the file (deterministic, seed 1) unless it exists, runs the ingest stage on it (parse, \
            validate, normalize, SHA-256 dedupe, hash split, write) `--repeat` times and reports the median; \
            then runs scripts/peer_ingest.py (same work in Python) when python3 is available.
            """)

    @Option(help: "Size of the generated JSONL in MB.")
    var sizeMb: Int = IngestBenchmark().sizeMb

    @Option(help: "The JSONL file to use or create.")
    var file: String = IngestBenchmark().file

    @Option(help: "Timed repetitions (median reported).")
    var `repeat`: Int = IngestBenchmark().repeat

    @Flag(help: "Only generate the file, then exit.")
    var generateOnly = false

    @Flag(help: "Skip the Python peer.")
    var noPeer = false

    func run() throws { try benchmark.run() }

    var benchmark: IngestBenchmark {
        var b = IngestBenchmark()
        b.sizeMb = sizeMb
        b.file = file
        b.`repeat` = `repeat`
        b.generateOnly = generateOnly
        b.noPeer = noPeer
        return b
    }
}
