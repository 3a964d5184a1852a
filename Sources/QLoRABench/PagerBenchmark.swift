import Foundation
import QLoRABackends
import QLoRACore
import QLoRAModel
import QLoRATraining

/// `qlora bench pager`: AdamW step time with the moments in memory, paged without a limit, and paged under a budget smaller than the state. The command (Sources/qlora/) sets the options and calls `run`.
public struct PagerBenchmark: Sendable {
    public var rank: Int = 16
    public var steps: Int = 10
    public var budgetFraction: Double = 0.25
    public var stepSeconds: Double = 7.5

    public init() {}

    public func run() throws {
        let config = LlamaConfig(hiddenSize: 576, intermediateSize: 1536, layers: 30, heads: 9, kvHeads: 3, vocabSize: 49152,
                                 maxPositions: 8192, rmsNormEps: 1e-5, ropeTheta: 100_000, tieWordEmbeddings: true)
        let lora = LoRAConfig(rank: rank, alpha: Double(2 * rank), dropout: 0, useRSLoRA: false, targets: Projection.allCases)
        var rng = SeededGenerator(seed: 7)
        let initial = LoRAWeights.peftInit(config, lora, rng: &rng)
        let stateBytes = 2 * 4 * initial.parameterCount
        let budget = Int(Double(stateBytes) * budgetFraction)
        // Gradients: one seeded set per step, shared by every setting.
        var grads: [LoRAWeights] = []
        for _ in 0..<steps {
            var g = initial
            for l in g.layers.indices {
                for p in Array(g.layers[l].keys) {
                    var adapter = g.layers[l][p]!
                    for i in adapter.a.indices { adapter.a[i] = Float.random(in: -1e-3...1e-3, using: &rng) }
                    for i in adapter.b.indices { adapter.b[i] = Float.random(in: -1e-3...1e-3, using: &rng) }
                    g.layers[l][p] = adapter
                }
            }
            grads.append(g)
        }
        print(String(format: "optimizer state: %ld parameters, %.1f MB of moments; budget %.1f MB (%.0f%%); %ld updates each",
                     initial.parameterCount, Double(stateBytes) / 1_048_576, Double(budget) / 1_048_576, budgetFraction * 100, steps))
        let scratch = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("qlora-pager-\(getpid())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let params = AdamW.Parameters(learningRate: 2e-4, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0)
        let backend = try Backends.make(.cpu).backend

        struct Outcome { var name: String; var msPerStep: Double; var evictions: Int; var weights: LoRAWeights; var m: [[Float]]; var v: [[Float]] }
        let gradients = grads.map { AdapterTensors($0, backend: backend) }
        func measure(_ name: String, _ make: (AdapterTensors) throws -> AdamW) throws -> Outcome {
            let weights = AdapterTensors(initial, backend: backend)
            var optimizer = try make(weights)
            let t0 = DispatchTime.now().uptimeNanoseconds
            for g in gradients { optimizer.update(weights, gradients: g) }
            backend.synchronize()
            let ms = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6 / Double(max(1, steps))
            return Outcome(name: name, msPerStep: ms, evictions: optimizer.pageEvictions, weights: weights.download(), m: optimizer.m,
                           v: optimizer.v)
        }
        let budgetName = String(format: "paged, %.0f%% budget", budgetFraction * 100)
        let pagedA = scratch.appendingPathComponent("a").path, pagedB = scratch.appendingPathComponent("b").path
        let results: [Outcome] = [
            try measure("in memory (adamw_32bit)") { AdamW(params, for: $0) },
            try measure("paged, no budget") { try AdamW(params, for: $0, pagedAt: pagedA, budgetBytes: nil) },
            try measure(budgetName) { try AdamW(params, for: $0, pagedAt: pagedB, budgetBytes: budget) },
        ]
        let reference = results[0]
        print("setting                    ms/update  vs memory  evictions  share of a \(String(format: "%.1f", stepSeconds)) s step  bit-identical")
        var allEqual = true
        for r in results {
            let same = r.weights == reference.weights && r.m == reference.m && r.v == reference.v
            allEqual = allEqual && same
            let name = r.name.padding(toLength: 26, withPad: " ", startingAt: 0)
            print(name + String(format: " %9.1f  %8.2f×  %9ld  %18.2f%%  ", r.msPerStep, r.msPerStep / reference.msPerStep,
                                r.evictions, r.msPerStep / 1000 / stepSeconds * 100) + (same ? "yes" : "NO"))
        }
        if !allEqual { throw BenchFailure("paged and in-memory optimizers disagree") }
    }
}
