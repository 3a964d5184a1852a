import Foundation
import Testing
import QLoRACore
import QLoRACPU
import QLoRATokenizer
@testable import QLoRAModel

/// Decoding on a 4-bit model: token-by-token steps with the KV cache (the fused GEMV, the decode attention)
/// against one full-sequence forward (the slab-dequantized sgemm path), and the cache's value semantics.
@Suite struct DecodeTests {
    let config = LlamaConfig(hiddenSize: 64, intermediateSize: 96, layers: 2, heads: 4, kvHeads: 2, vocabSize: 50,
                             maxPositions: 64, rmsNormEps: 1e-5, ropeTheta: 10000)

    private func quantized(seed: UInt64, type: FourBitType = .nf4) -> LlamaModel {
        let dense = randomModel(config, seed: seed)
        return LlamaModel(config: config, weights: dense.weights.quantized(FourBitOptions(type: type)), backend: dense.backend)
    }

    @Test(arguments: [FourBitType.nf4, .fp4])
    func cachedDecodeStepsEqualAFullForwardOnAFourBitModel(type: FourBitType) {
        let model = quantized(seed: 21, type: type)
        #expect(model.weights.layers[0].wq.isQuantized)
        let tokens = [3, 17, 42, 8, 0, 49, 21, 5, 5, 33, 12, 40]
        var full = KVCache(config: config, capacity: 16)
        let all = model.forward(tokens, cache: &full, allLogits: true)
        var cache = KVCache(config: config, capacity: 16)
        _ = model.forward(Array(tokens.prefix(3)), cache: &cache)
        for (i, t) in tokens.enumerated().dropFirst(3) {
            let logits = model.forward([t], cache: &cache)
            let expected = all[(i * 50)..<((i + 1) * 50)]
            let diff = zip(logits, expected).map { abs($0 - $1) }.max()!
            #expect(diff <= 1e-4, "position \(i): max |Δ| \(diff)")
        }
        #expect(cache.length == tokens.count)
    }

    @Test func aCopiedCacheIsIndependent() {
        let model = quantized(seed: 22)
        func prefilled() -> KVCache {
            var c = KVCache(config: config, capacity: 16)
            _ = model.forward([1, 2, 3], cache: &c)
            return c
        }
        var a = prefilled()
        var b = a  // shares a's storage until one of them appends
        let fromA = model.forward([4], cache: &a)
        let fromB = model.forward([9], cache: &b)
        var freshA = prefilled(), freshB = prefilled()
        #expect(fromA == model.forward([4], cache: &freshA))
        #expect(fromB == model.forward([9], cache: &freshB))
        #expect(a.length == 4 && b.length == 4)
    }

    /// The real SmolLM2-135M-Instruct answers the chat-templated question greedily through the decode path (KV
    /// cache, decode attention, the exact block-int8 LM head), as it did before that path existed: the fp32
    /// model says exactly "The capital of France is Paris." and stops; quantized to NF4 + double quant in memory
    /// (the fused 4-bit GEMV) it goes on ("..., also known as the City of Light.") but starts with the answer.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: SmolLM2.gguf), "run scripts/fetch_model.py (make data)"))
    func smolLM2AnswersTheCapitalOfFranceInFP32AndNF4() throws {
        let loaded = try ModelLoader.load(path: SmolLM2.gguf, backend: CPUBackend(threads: 2))
        let m = loaded.model
        let nf4 = LlamaModel(config: m.config, weights: m.weights.quantized(FourBitOptions()), backend: m.backend)
        // "What is the capital of France?" in SmolLM2's chat template with the generation prompt
        // (Tests/QLoRATokenizerTests/Fixtures/chat/smollm2_chat.jsonl).
        let ids = [1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198,
                   1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198, 1, 520, 9531, 198]
        var stops = Set(m.config.eosTokenIDs)
        if let eos = loaded.tokenizer.eosTokenID { stops.insert(eos) }
        func answer(_ model: LlamaModel) -> String {
            let out = Generator(model: model).generate(prompt: ids, .init(maxNewTokens: 16, stopTokens: stops))
            return loaded.tokenizer.decode(out, skipSpecialTokens: true)
        }
        #expect(answer(m) == "The capital of France is Paris.")
        let text = answer(nf4)
        #expect(text.hasPrefix("The capital of France is Paris"), "\(text.debugDescription)")
    }
}
