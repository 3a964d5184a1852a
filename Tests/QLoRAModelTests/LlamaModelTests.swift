import Foundation
import Testing
import QLoRACore
import QLoRACPU
@testable import QLoRAModel

/// A random tiny model (no files) for properties of the forward pass.
func randomModel(_ c: LlamaConfig, seed: UInt64, backend: any Backend = CPUBackend(threads: 2)) -> LlamaModel {
    var rng = SeededGenerator(seed: seed)
    func r(_ n: Int, _ scale: Float = 0.1, offset: Float = 0) -> [Float] {
        (0..<n).map { _ in offset + (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }
    let h = c.hiddenSize, q = c.heads * c.headDim, kv = c.kvHeads * c.headDim, f = c.intermediateSize
    let layers = (0..<c.layers).map { _ in
        LlamaWeights.Layer(attnNorm: r(h, 0.1, offset: 1), wq: r(q * h), wk: r(kv * h), wv: r(kv * h), wo: r(h * q),
                           bq: c.attentionBias ? r(q) : nil, bk: c.attentionBias ? r(kv) : nil, bv: c.attentionBias ? r(kv) : nil,
                           ffnNorm: r(h, 0.1, offset: 1), wGate: r(f * h), wUp: r(f * h), wDown: r(h * f))
    }
    let weights = LlamaWeights(embedding: r(c.vocabSize * h, 1), layers: layers, finalNorm: r(h, 0.1, offset: 1),
                               lmHead: c.tieWordEmbeddings ? nil : r(c.vocabSize * h))
    return LlamaModel(config: c, weights: weights, backend: backend)
}

@Suite struct LlamaModelTests {
    let config = LlamaConfig(hiddenSize: 32, intermediateSize: 48, layers: 2, heads: 4, kvHeads: 2, vocabSize: 50,
                             maxPositions: 64, rmsNormEps: 1e-5, ropeTheta: 10000, attentionBias: true)

    @Test func incrementalDecodingWithTheCacheEqualsAFullForward() {
        let model = randomModel(config, seed: 1)
        let tokens = [3, 17, 42, 8, 0, 49, 21]
        var full = KVCache(config: config, capacity: 16)
        let all = model.forward(tokens, cache: &full, allLogits: true)
        var cache = KVCache(config: config, capacity: 16)
        _ = model.forward(Array(tokens.prefix(4)), cache: &cache)
        for (i, t) in tokens.enumerated().dropFirst(4) {
            let logits = model.forward([t], cache: &cache)
            let expected = Array(all[(i * 50)..<((i + 1) * 50)])
            #expect(zip(logits, expected).allSatisfy { abs($0 - $1) < 1e-4 })
        }
        #expect(cache.length == tokens.count)
    }

    @Test func cpuBackendMatchesTheReferenceBackendEndToEnd() {
        let fast = randomModel(config, seed: 2)
        let slow = randomModel(config, seed: 2, backend: ReferenceBackend())
        var a = KVCache(config: config, capacity: 8), b = KVCache(config: config, capacity: 8)
        let x = fast.forward([1, 2, 3, 4, 5], cache: &a, allLogits: true)
        let y = slow.forward([1, 2, 3, 4, 5], cache: &b, allLogits: true)
        #expect(zip(x, y).allSatisfy { abs($0 - $1) < 1e-4 })
    }

    @Test func greedyGenerationIsDeterministicAndStopsAtEOS() {
        let model = randomModel(config, seed: 3)
        let out = Generator(model: model).generate(prompt: [1, 2, 3], .init(maxNewTokens: 10))
        #expect(out.count == 10)
        #expect(out == Generator(model: model).generate(prompt: [1, 2, 3], .init(maxNewTokens: 10)))
        let stop = out[2]
        let stopped = Generator(model: model).generate(prompt: [1, 2, 3], .init(maxNewTokens: 10, stopTokens: [stop]))
        #expect(stopped.last == stop && stopped.count <= 3)
        let sampled = Generator(model: model).generate(prompt: [1, 2, 3], .init(maxNewTokens: 10, temperature: 1, topP: 0.9, seed: 7))
        #expect(sampled == Generator(model: model).generate(prompt: [1, 2, 3], .init(maxNewTokens: 10, temperature: 1, topP: 0.9, seed: 7)))
    }

    @Test func llama3RopeScalingMatchesTransformers() {
        let c = LlamaConfig(hiddenSize: 2048, intermediateSize: 8192, layers: 1, heads: 32, kvHeads: 8, headDim: 64, vocabSize: 10,
                            ropeTheta: 500000, ropeScaling: .llama3(factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192))
        let inv = c.inverseFrequencies
        let plain = LlamaConfig(hiddenSize: 2048, intermediateSize: 8192, layers: 1, heads: 32, kvHeads: 8, headDim: 64, vocabSize: 10,
                                ropeTheta: 500000).inverseFrequencies
        // Spec: indices 0-14 unchanged, 15-17 smoothed, 18-31 divided by 32; inv_freq[15] 0.0021311 → 0.0012905.
        #expect((0...14).allSatisfy { inv[$0] == plain[$0] })
        #expect(abs(plain[15] - 0.0021311) < 1e-6 && abs(inv[15] - 0.0012905) < 1e-6)
        #expect((18...31).allSatisfy { abs(inv[$0] - plain[$0] / 32) < 1e-12 })
    }

    @Test func hfConfigVariantsParse() throws {
        let v5 = #"{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":256,"rope_parameters":{"rope_type":"llama3","rope_theta":500000.0,"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":32},"tie_word_embeddings":true,"eos_token_id":[1,2]}"#
        let c = try LlamaConfig.fromHF(Array(v5.utf8), file: "config.json")
        #expect(c.ropeTheta == 500000 && c.kvHeads == 2 && c.headDim == 16 && c.tieWordEmbeddings && c.eosTokenIDs == [1, 2])
        #expect(c.ropeScaling == .llama3(factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 32))
        let qwen = #"{"model_type":"qwen2","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":256}"#
        #expect(try LlamaConfig.fromHF(Array(qwen.utf8), file: "c").attentionBias)
        let bad = #"{"model_type":"gpt2","hidden_size":64}"#
        #expect(throws: ModelError.self) { try LlamaConfig.fromHF(Array(bad.utf8), file: "c") }
        let badHeads = #"{"model_type":"llama","hidden_size":64,"intermediate_size":128,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":3,"vocab_size":256}"#
        #expect(throws: ModelError.self) { try LlamaConfig.fromHF(Array(badHeads.utf8), file: "c") }
    }
}
