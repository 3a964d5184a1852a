import ArgumentParser
import Foundation
import QLoRABackends
import QLoRABench
import QLoRACore

struct OpsBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ops",
        abstract: "Every backend op against a reference backend on seeded random data: the largest error of each, against its tolerance.",
        discussion: """
            The conformance suite of the tests (Sources/QLoRABench/BackendConformance.swift), runnable where the \
            tests are not: on a GPU machine, `qlora bench ops --backend cuda` compares every CUDA op with the \
            scalar reference (scripts/gpu-check.sh). Exit status 1 when a check fails.
            """)

    @Option(help: "The backend checked: auto, cpu, reference or cuda.")
    var backend: BackendChoice = .cpu

    @Option(help: "The backend it is compared with.")
    var against: BackendChoice = .reference

    @Option(help: "What the checked backend's GEMMs read: fp32 or bf16 (default: the backend's; bf16 on cuda). bf16 products are held to 1e-2 relative.")
    var precision: ComputePrecision?

    @Flag(help: "Print JSON instead of the table.")
    var json = false

    func run() throws {
        let candidate = try Backends.make(backend, threads: nil, precision: precision)
        let reference = try Backends.make(against, threads: nil)
        var conformance = BackendConformance(candidate: candidate.backend, reference: reference.backend)
        if candidate.precision == .bf16 { conformance.productTolerance = 1e-2 }
        let results = conformance.run()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(results), as: UTF8.self))
        } else {
            print("backend \(candidate.summary) against \(reference.summary)")
            print(BackendConformance.table(results, candidate: candidate.name, reference: reference.name))
        }
        if results.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }
}
