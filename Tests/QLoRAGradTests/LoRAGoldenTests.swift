import Foundation
import Testing
import QLoRACore
import QLoRACPU
import QLoRAFormats
import QLoRAModel
@testable import QLoRATraining

/// The whole LoRA training step against PyTorch + PEFT (Fixtures/lora, from scripts/reference/make_lora_goldens.py).
///
/// Tolerances: the loss within 1e-5 relative; each dA/dB tensor within `1e-4 · max|golden|` per element (a
/// tensor-relative bound, since single elements can be near zero); the 10-step AdamW loss sequences within
/// 1e-4 absolute at every step; final adapters within 2e-6 absolute (weight decay 0.01 moves them by up to
/// 4e-5 over the 10 steps, so this bound tells the two runs apart). Measured on the CPU backend: gradients
/// within 1.9e-6 relative, losses within 9e-7, final adapters within 3.4e-7.
@Suite struct LoRAGoldenTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/lora")

    struct Golden {
        var sequences: [[Int32]], labels: [[Int32]]
        var loss: Double, counted: Int
        var runs: [(weightDecay: Double, losses: [Double], file: String)]
        var lora: LoRAConfig
    }

    static func golden() throws -> Golden {
        let data = try Data(contentsOf: root.appendingPathComponent("golden.json"))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        func ints(_ key: String) throws -> [[Int32]] {
            try #require(json[key] as? [[Int]]).map { $0.map(Int32.init) }
        }
        let lora = try #require(json["lora"] as? [String: Any])
        let adamw = try #require(json["adamw"] as? [String: Any])
        let runs = try #require(adamw["runs"] as? [[String: Any]]).map { r in
            (try #require(r["weight_decay"] as? Double), try #require(r["losses"] as? [Double]), try #require(r["final_adapter"] as? String))
        }
        let targets = try #require(lora["target_modules"] as? [String]).map { try #require(Projection(rawValue: $0)) }
        return Golden(sequences: try ints("input_ids"), labels: try ints("labels"), loss: try #require(json["loss"] as? Double),
                      counted: try #require(json["counted_targets"] as? Int), runs: runs,
                      lora: LoRAConfig(rank: try #require(lora["r"] as? Int), alpha: try #require(lora["lora_alpha"] as? Double),
                                       dropout: try #require(lora["lora_dropout"] as? Double), targets: targets))
    }

    /// Reads every adapter tensor of `file` by its PEFT key.
    static func adapters(_ file: String, like shape: LoRAWeights) throws -> LoRAWeights {
        let st = try SafetensorsFile(path: root.appendingPathComponent(file).path)
        var w = shape
        for (name, layer, p, isA, dims) in shape.tensorNames {
            let values = try #require(try st.floats(named: name), "\(file): \(name) missing")
            #expect(values.count == dims.reduce(1, *), "\(file): \(name) has \(values.count) values")
            if isA { w.layers[layer][p]!.a = values } else { w.layers[layer][p]!.b = values }
        }
        return w
    }

    static func model(backend: any Backend, checkpointing: Bool = true) throws -> (LlamaModel, Golden) {
        let g = try golden()
        let base = try ModelLoader.loadModel(path: root.appendingPathComponent("model").path, backend: backend)
        let shape = LoRAWeights.zeros(base.config, g.lora)
        let model = adaptedModel(config: base.config, weights: base.weights, lora: g.lora,
                              adapters: try adapters("adapter/adapter_model.safetensors", like: shape), backend: backend,
                              gradientCheckpointing: checkpointing)
        return (model, g)
    }

    /// Worst `|ours − golden| / max|golden|` over every tensor, with the tensor's name.
    static func worstRelative(_ ours: LoRAWeights, _ golden: LoRAWeights) -> (Float, String) {
        var worst: (Float, String) = (0, "")
        for ((name, _, _, _, _), (a, b)) in zip(ours.tensorNames, zip(ours.tensors, golden.tensors)) {
            let scale = max(b.map(abs).max() ?? 0, 1e-30)
            let err = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            if err / scale > worst.0 { worst = (err / scale, name) }
        }
        return worst
    }

    @Test(arguments: [true, false])
    func lossAndAdapterGradientsMatchPyTorch(checkpointing: Bool) throws {
        let (model, g) = try Self.model(backend: CPUBackend(threads: 2), checkpointing: checkpointing)
        let batch = TrainingBatch(sequences: g.sequences, labels: g.labels)
        #expect(batch.countedTargets == g.counted)
        var grads = LoRAWeights.zeros(model.config, model.lora!)
        let loss = model.lossAndGradients(batch, gradScale: 1 / Float(batch.countedTargets), into: &grads)
        #expect(loss.count == g.counted)
        let mean = loss.sum / Double(loss.count)
        #expect(abs(mean - g.loss) <= 1e-5 * g.loss, "loss \(mean) vs \(g.loss)")
        let golden = try Self.adapters("grads.safetensors", like: grads)
        let (worst, name) = Self.worstRelative(grads, golden)
        #expect(worst <= 1e-4, "worst relative gradient error \(worst) in \(name)")
    }

    @Test func referenceBackendGivesTheSameGradients() throws {
        let (model, g) = try Self.model(backend: ReferenceBackend())
        let batch = TrainingBatch(sequences: g.sequences, labels: g.labels)
        var grads = LoRAWeights.zeros(model.config, model.lora!)
        let loss = model.lossAndGradients(batch, gradScale: 1 / Float(batch.countedTargets), into: &grads)
        #expect(abs(loss.sum / Double(loss.count) - g.loss) <= 1e-5 * g.loss)
        let (worst, name) = Self.worstRelative(grads, try Self.adapters("grads.safetensors", like: grads))
        #expect(worst <= 1e-4, "worst relative gradient error \(worst) in \(name)")
    }

    @Test func gradientsAreBitIdenticalAcrossRunsAndWithOrWithoutCheckpointing() throws {
        let (model, g) = try Self.model(backend: CPUBackend(threads: 2))
        let batch = TrainingBatch(sequences: g.sequences, labels: g.labels)
        var results: [(Double, LoRAWeights)] = []
        for checkpointing in [true, true, false] {
            model.gradientCheckpointing = checkpointing
            var grads = LoRAWeights.zeros(model.config, model.lora!)
            let loss = model.lossAndGradients(batch, gradScale: 1 / Float(batch.countedTargets), into: &grads)
            results.append((loss.sum, grads))
        }
        #expect(results.allSatisfy { $0.0 == results[0].0 && $0.1 == results[0].1 })
    }

    @Test(arguments: [0, 1])
    func tenAdamWStepsFollowPyTorchsLossSequence(run: Int) throws {
        let (model, g) = try Self.model(backend: CPUBackend(threads: 2))
        let (weightDecay, expected, file) = g.runs[run]
        let batch = TrainingBatch(sequences: g.sequences, labels: g.labels)
        var optimizer = AdamW(.init(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: weightDecay),
                              for: model.parameters!)
        var losses: [Double] = []
        for _ in 0..<expected.count {
            var grads = LoRAWeights.zeros(model.config, model.lora!)
            let loss = model.lossAndGradients(batch, gradScale: 1 / Float(batch.countedTargets), into: &grads)
            losses.append(loss.sum / Double(loss.count))
            optimizer.update(model.parameters!, gradients: AdapterTensors(grads, backend: model.backend))
        }
        let worst = zip(losses, expected).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-4, "losses \(losses) vs \(expected)")
        let final = try Self.adapters(file, like: model.adapters)
        let worstParameter = zip(model.adapters.tensors, final.tensors).map { a, b in zip(a, b).map { abs($0 - $1) }.max()! }.max()!
        #expect(worstParameter <= 2e-6, "worst final-adapter difference \(worstParameter)")
    }

    @Test func aLongBatchGoesThroughTheHeadInChunksWithTheSameResult() throws {
        // 24 copies of the two golden sequences: 576 rows, three passes through the head (256 rows each).
        let (model, g) = try Self.model(backend: CPUBackend(threads: 2))
        let copies = 24
        let long = TrainingBatch(sequences: Array(repeating: g.sequences, count: copies).flatMap { $0 },
                                 labels: Array(repeating: g.labels, count: copies).flatMap { $0 })
        #expect(long.rows > 2 * LlamaModel.headRows)
        var grads = LoRAWeights.zeros(model.config, model.lora!)
        let loss = model.lossAndGradients(long, gradScale: 1 / Float(long.countedTargets), into: &grads)
        #expect(loss.count == copies * g.counted)
        #expect(abs(loss.sum / Double(loss.count) - g.loss) <= 1e-5 * g.loss)
        let (worst, name) = Self.worstRelative(grads, try Self.adapters("grads.safetensors", like: grads))
        #expect(worst <= 1e-4, "worst relative gradient error \(worst) in \(name)")
    }

    @Test func aBatchOfSequencesScoresLikeEachSequenceAlone() throws {
        let (model, g) = try Self.model(backend: CPUBackend(threads: 2))
        let together = model.loss(TrainingBatch(sequences: g.sequences, labels: g.labels))
        var sum = 0.0, count = 0
        for (s, l) in zip(g.sequences, g.labels) {
            let alone = model.loss(TrainingBatch(sequences: [s], labels: [l]))
            sum += alone.sum
            count += alone.count
        }
        #expect(count == together.count)
        #expect(abs(sum - together.sum) <= 1e-5 * abs(sum))
    }
}
