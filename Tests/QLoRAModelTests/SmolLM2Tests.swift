import Foundation
import Testing
import QLoRACPU
@testable import QLoRAModel

/// The real SmolLM2-135M-Instruct against transformers fp32 (eager) on the HF conversion of the same
/// weights (Fixtures/smollm2/golden.json). Runs when `make data` has fetched the GGUF (CI does); the
/// HF-directory variant runs where scripts/convert_model_to_hf.py has made models/SmolLM2-135M-Instruct.
enum SmolLM2 {
    static let gguf = ModelFixtures.repository.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static let hf = ModelFixtures.repository.appendingPathComponent("models/SmolLM2-135M-Instruct").path
}

@Suite(.serialized) struct SmolLM2Tests {
    private func check(_ path: String) throws {
        let model = try ModelLoader.loadModel(path: path, backend: CPUBackend(threads: 2))
        let golden = try ModelFixtures.golden("smollm2/golden.json")
        let prompts = golden["prompts"] as! [[String: Any]]
        #expect(prompts.count >= 5)
        let v = model.config.vocabSize
        for (p, prompt) in prompts.enumerated() {
            let ids = prompt["ids"] as! [Int]
            var cache = KVCache(config: model.config, capacity: ids.count)
            let last = model.forward(ids, cache: &cache)
            let top = prompt["top20"] as! [[Double]]
            let range = Float((prompt["last_logit_max"] as! Double) - (prompt["last_logit_min"] as! Double))
            let topDiff = top.map { abs(last[Int($0[0])] - Float($0[1])) }.max()!
            #expect(topDiff / range <= 1e-3, "\(prompt["name"]!): top-20 max |Δ| \(topDiff) over range \(range)")
            if p == 0 {
                let data = try Data(contentsOf: ModelFixtures.root.appendingPathComponent("smollm2/last_logits_prompt0.f32"))
                let reference = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                #expect(reference.count == v)
                let diff = zip(last, reference).map { abs($0 - $1) }.max()!
                #expect(diff / range <= 1e-3, "full last-position logits: max |Δ| \(diff) over range \(range)")
            }
            #expect(abs(model.meanNLL(ids) - (prompt["nll"] as! Double)) < 1e-3)
            let greedy = prompt["greedy"] as! [String: Any]
            let expected = greedy["new_ids"] as! [Int]
            let ours = Generator(model: model).generate(prompt: ids, .init(maxNewTokens: expected.count, stopTokens: [2]))
            #expect(ours == expected, "\(prompt["name"]!): greedy continuation differs")
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: SmolLM2.gguf), "run scripts/fetch_model.py (make data)"))
    func ggufLogitsAndGreedyMatchTransformers() throws { try check(SmolLM2.gguf) }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: SmolLM2.hf), "run scripts/convert_model_to_hf.py"))
    func safetensorsLogitsAndGreedyMatchTransformers() throws { try check(SmolLM2.hf) }
}
