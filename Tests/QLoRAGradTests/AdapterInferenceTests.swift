import Foundation
import Testing
import QLoRACore
import QLoRACPU
import QLoRAFormats
import QLoRAModel
@testable import QLoRATraining

/// The inference model with LoRA deltas (`LlamaModel.withAdapter`) against the training model it must agree
/// with, and `PEFTAdapter` against PEFT's own files and against what the train stage writes.
@Suite struct AdapterInferenceTests {
    static let config = ModelGradientTests.config

    /// A random base, random non-zero adapters, and both models over them.
    static func models(_ lora: LoRAConfig, fourBit: Bool = false, seed: UInt64 = 5) -> (LlamaModel, LlamaModel, LoRAWeights) {
        var rng = SeededGenerator(seed: seed)
        var weights = ModelGradientTests.randomWeights(config, rng: &rng)
        if fourBit { weights = weights.quantized(FourBitOptions()) }
        var adapters = LoRAWeights.zeros(config, lora)
        adapters.forEachTensor { values in values = random(values.count, &rng, scale: 0.2) }
        let backend = CPUBackend(threads: 2)
        let training = adaptedModel(config: config, weights: weights, lora: lora, adapters: adapters, backend: backend)
        let inference = try! LlamaModel(config: config, weights: weights, backend: backend).withAdapter(PEFTAdapter(lora: lora, weights: adapters))
        return (training, inference, adapters)
    }

    @Test(arguments: [(false, false), (true, false), (false, true)])
    func adaptedLogitsEqualTheTrainingModelsForward(fourBit: Bool, someTargets: Bool) {
        let lora = LoRAConfig(rank: 4, alpha: 8, targets: someTargets ? [.q, .v, .down] : Projection.allCases)
        let (training, inference, _) = Self.models(lora, fourBit: fourBit)
        let tokens = [3, 17, 42, 8, 0, 49, 21, 5, 9]
        let batch = TrainingBatch(sequences: [tokens.map(Int32.init)], labels: [tokens.map(Int32.init)])
        let expected = training.logits(batch)
        var cache = KVCache(config: Self.config, capacity: 16)
        let got = inference.forward(tokens, cache: &cache, allLogits: true)
        let worst = zip(got, expected).map { abs($0 - $1) }.max()!
        #expect(worst <= 1e-5, "max |Δlogit| \(worst)")
        // The adapter changes the function (the deltas are not zero), and the base is still there unchanged.
        var baseCache = KVCache(config: Self.config, capacity: 16)
        let base = inference.base.forward(tokens, cache: &baseCache, allLogits: true)
        #expect(zip(base, expected).map { abs($0 - $1) }.max()! > 1e-2)
        #expect(inference.base.adapter == nil && inference.adapter?.targets == lora.targets)
    }

    @Test func incrementalDecodingWithAnAdapterEqualsItsFullForward() {
        let (_, model, _) = Self.models(LoRAConfig(rank: 3, alpha: 6))
        let tokens = [1, 2, 3, 4, 5, 6, 7]
        var full = KVCache(config: Self.config, capacity: 8)
        let all = model.forward(tokens, cache: &full, allLogits: true)
        var cache = KVCache(config: Self.config, capacity: 8)
        _ = model.forward(Array(tokens.prefix(3)), cache: &cache)
        for i in 3..<tokens.count {
            let step = model.forward([tokens[i]], cache: &cache)
            let v = Self.config.vocabSize
            #expect(zip(step, all[(i * v)..<((i + 1) * v)]).allSatisfy { abs($0 - $1) < 1e-4 })
        }
    }

    /// PEFT's own saved adapter (Fixtures/lora, from make_lora_goldens.py) on its base: the loss PyTorch computed.
    @Test func aPEFTAdapterFromDiskGivesPyTorchsLoss() throws {
        let root = LoRAGoldenTests.root
        let golden = try LoRAGoldenTests.golden()
        let base = try ModelLoader.loadModel(path: root.appendingPathComponent("model").path, backend: CPUBackend(threads: 2))
        let model = try base.withAdapter(directory: root.appendingPathComponent("adapter").path)
        #expect(model.adapter?.parameterCount == LoRAWeights.zeros(base.config, golden.lora).parameterCount)
        let runs = zip(golden.sequences, golden.labels).map { seq, labels in
            ScoringBatch.Run(tokens: seq.map(Int.init), targets: (0..<seq.count).map { t in
                t + 1 < labels.count && labels[t + 1] != CrossEntropy.ignoreIndex ? Int(labels[t + 1]) : nil
            })
        }
        let loss = Scoring.tokenLoss(model, runs)
        #expect(loss.count == golden.counted)
        let mean = loss.sum / Double(loss.count)
        #expect(abs(mean - golden.loss) <= 1e-5 * golden.loss, "loss \(mean), PyTorch \(golden.loss)")
    }

    /// Files written the way the train stage writes them load back to the same deltas.
    @Test func anAdapterWrittenLikeTheTrainStageLoadsBack() throws {
        let lora = LoRAConfig(rank: 4, alpha: 16, useRSLoRA: true, targets: [.q, .k, .o, .up])
        let (_, _, adapters) = Self.models(lora)
        let dir = try Self.writeAdapter(adapters, lora)
        defer { try? FileManager.default.removeItem(at: dir) }
        let loaded = try PEFTAdapter.load(directory: dir, model: Self.config)
        #expect(loaded.weights == adapters && loaded.lora == lora)
        #expect(loaded.lora.scaling == 8)  // 16 / √4
    }

    static func writeAdapter(_ adapters: LoRAWeights, _ lora: LoRAConfig, config: String? = nil,
                             edit: (inout [(name: String, shape: [Int], values: [Float])]) -> Void = { _ in }) throws -> URL {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("qlora-adapter-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let values = adapters.tensors
        var tensors = adapters.tensorNames.enumerated().map { (name: $1.name, shape: $1.shape, values: values[$0]) }
        edit(&tensors)
        try SafetensorsWriter.write(floats: tensors, metadata: ["format": "pt"], to: dir.appendingPathComponent("adapter_model.safetensors"))
        let targets = lora.targets.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        let json = config ?? """
            {"peft_type": "LORA", "r": \(lora.rank), "lora_alpha": \(lora.alpha), "use_rslora": \(lora.useRSLoRA), "bias": "none",
             "fan_in_fan_out": false, "target_modules": [\(targets)], "task_type": "CAUSAL_LM"}
            """
        try Data(json.utf8).write(to: dir.appendingPathComponent("adapter_config.json"))
        return dir
    }

    static func loadError(_ dir: URL) -> String {
        defer { try? FileManager.default.removeItem(at: dir) }
        do {
            _ = try PEFTAdapter.load(directory: dir, model: config)
            return "loaded"
        } catch {
            return "\(error)"
        }
    }

    @Test func adapterErrorsNameTheFileAndTheTensor() throws {
        let lora = LoRAConfig(rank: 4, alpha: 8)
        let (_, _, adapters) = Self.models(lora)
        let key = "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight"

        let missing = Self.loadError(try Self.writeAdapter(adapters, lora) { $0.removeAll { $0.name == key } })
        #expect(missing.contains("adapter_model.safetensors: tensor `\(key)`: missing"), "\(missing)")

        let reshaped = Self.loadError(try Self.writeAdapter(adapters, lora) { t in
            let i = t.firstIndex { $0.name == key }!
            t[i].shape = [t[i].shape[1], t[i].shape[0]]
        })
        #expect(reshaped.contains("tensor `\(key)`: shape [4, 32], expected [out, r = 4]"), "\(reshaped)")

        let wrongRank = Self.loadError(try Self.writeAdapter(adapters, lora, config: #"{"peft_type": "LORA", "r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}"#))
        #expect(wrongRank.contains("lora_A.weight`: shape [4, 32], expected [r = 8, in]"), "\(wrongRank)")

        let stray = Self.loadError(try Self.writeAdapter(adapters, lora) { $0.append((name: "base_model.model.lm_head.weight", shape: [2], values: [1, 2])) })
        #expect(stray.contains("tensor `base_model.model.lm_head.weight`: unexpected tensor"), "\(stray)")

        let beyond = Self.loadError(try Self.writeAdapter(adapters, lora) {
            $0.append((name: "base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight", shape: [4, 32], values: Array(repeating: 0, count: 128)))
        })
        #expect(beyond.contains("tensor `base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight`: layer 2 does not exist"), "\(beyond)")

        // PEFT's in-memory adapter name: save_pretrained never writes it, so such a file is refused.
        let named = Self.loadError(try Self.writeAdapter(adapters, lora) { t in
            for i in t.indices { t[i].name = t[i].name.replacingOccurrences(of: ".weight", with: ".default.weight") }
        })
        #expect(named.contains("`.default` is PEFT's in-memory adapter name"), "\(named)")

        let dora = Self.loadError(try Self.writeAdapter(adapters, lora, config: #"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_dora": true}"#))
        #expect(dora.contains("adapter_config.json: `use_dora`: DoRA"), "\(dora)")

        let noRank = Self.loadError(try Self.writeAdapter(adapters, lora, config: #"{"peft_type": "LORA", "lora_alpha": 8}"#))
        #expect(noRank.contains("adapter_config.json: `r`: missing"), "\(noRank)")
        let noAlpha = Self.loadError(try Self.writeAdapter(adapters, lora, config: #"{"peft_type": "LORA", "r": 4}"#))
        #expect(noAlpha.contains("adapter_config.json: `lora_alpha`: missing"), "\(noAlpha)")

        let notTargeted = Self.loadError(try Self.writeAdapter(adapters, lora, config: #"{"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"]}"#))
        #expect(notTargeted.contains("adapter_model.safetensors: has k_proj tensors, but target_modules does not list k_proj"), "\(notTargeted)")

        let empty = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("qlora-empty-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let none = Self.loadError(empty)
        #expect(none.contains("adapter_config.json: missing or unreadable"), "\(none)")
    }

    @Test func anAdapterForAnotherModelIsRefused() throws {
        let (_, model, adapters) = Self.models(LoRAConfig(rank: 2, alpha: 2))
        var other = PEFTAdapter(lora: LoRAConfig(rank: 2, alpha: 2), weights: adapters)
        other.weights.layers.removeLast()
        #expect(throws: ModelError.self) { try model.base.withAdapter(other) }
    }
}
