import ArgumentParser
import Foundation
import Logging
import QLoRAFormats
import QLoRAPipeline

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print our figures next to a peer's.",
        subcommands: [IngestBench.self, TokenizerBench.self, ForwardBench.self, NF4Bench.self, GenerateBench.self, PerplexityBench.self, PrepareBench.self, TrainBench.self, PagerBench.self, OpsBench.self])
}
