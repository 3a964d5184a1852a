import Foundation
import Testing
import QLoRACPU
@testable import QLoRAModel

/// Logits, NLL and greedy continuations of tiny random models against transformers fp32 (eager)
/// goldens from scripts/reference/make_model_goldens.py (Fixtures/README.md). Tolerance: 1e-4 absolute on
/// logits of magnitude ~1-10 (fp32 with different summation order).
enum ModelFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repository = root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func golden(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent(path))) as! [String: Any]
    }
}

@Suite struct ModelGoldenTests {
    private func check(model: LlamaModel, golden g: [String: Any], tolerance: Float = 1e-4) {
        let inputs = (g["input_ids"] as! [[Int]])
        let logits = g["logits"] as! [[[Double]]]
        let nll = g["nll"] as! [Double]
        for (s, ids) in inputs.enumerated() {
            var cache = KVCache(config: model.config, capacity: ids.count)
            let ours = model.forward(ids, cache: &cache, allLogits: true)
            let theirs = logits[s].flatMap { $0.map(Float.init) }
            let maxDiff = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
            #expect(ours.count == theirs.count)
            #expect(maxDiff <= tolerance, "sequence \(s): max |Δlogit| \(maxDiff)")
            #expect(abs(model.meanNLL(ids) - nll[s]) < 1e-4)
        }
        let greedy = g["greedy"] as! [String: Any]
        let expected = greedy["new_ids"] as! [Int]
        let eos = greedy["eos_token_id"] as? Int
        let ours = Generator(model: model).generate(prompt: inputs[0], .init(maxNewTokens: expected.count, stopTokens: eos.map { [$0] } ?? []))
        #expect(ours == expected)
    }

    @Test(arguments: ["gqa_tied", "mha_untied", "rope_llama3", "qwen2_bias", "head_dim"])
    func safetensorsModelsMatchTransformers(name: String) throws {
        let model = try ModelLoader.loadModel(path: ModelFixtures.root.appendingPathComponent(name).path, backend: CPUBackend(threads: 2))
        check(model: model, golden: try ModelFixtures.golden("\(name)/golden.json"))
    }

    @Test func ggufModelWithPermutedQKMatchesTransformers() throws {
        let model = try ModelLoader.loadModel(path: ModelFixtures.root.appendingPathComponent("gqa_tied/model.gguf").path,
                                              backend: CPUBackend(threads: 2))
        check(model: model, golden: try ModelFixtures.golden("gqa_tied/golden.json"))
    }

    @Test func q8_0GGUFMatchesTransformersOnTheDequantizedWeights() throws {
        let model = try ModelLoader.loadModel(path: ModelFixtures.root.appendingPathComponent("gqa_tied/model-q8_0.gguf").path,
                                              backend: CPUBackend(threads: 2))
        check(model: model, golden: try ModelFixtures.golden("gqa_tied/golden-q8_0.json"))
    }
}
