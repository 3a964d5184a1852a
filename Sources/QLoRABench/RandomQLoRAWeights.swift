import Foundation
import QLoRACore
import QLoRAModel
import QLoRAPipeline

/// A LLaMA-shape model with random weights, made directly in its QLoRA form, for `bench train --model-shape`: every
/// projection NF4 with double-quantized scales (block 64, nested block 256, as `FourBitOptions()`), the embedding,
/// LM head and norms fp32. No file is read and no fp32 copy of a projection exists, so the 8B and 70B shapes cost
/// their 4-bit size in host memory, not 4× it.
///
/// The statistics are near a freshly initialized model's: NF4's 16 levels are quantiles of a normal distribution,
/// so normally distributed weights give nearly uniform codes, and a block of 64 weights of standard deviation 0.02
/// has an absmax near 2.4 · 0.02 (uniform within ±20% here); uniform codes at that scale have a standard deviation
/// of 0.025. The embedding is uniform with standard deviation 0.02. Timing does not depend on the values; the
/// losses only have to stay finite (they start near ln(vocab)).
public enum RandomQLoRAWeights {
    /// The config of `shape` with `layers` blocks (its own count when nil): RoPE θ 500000 and 8192 positions.
    public static func config(_ shape: ModelShape, layers: Int? = nil) -> LlamaConfig {
        LlamaConfig(hiddenSize: shape.hidden, intermediateSize: shape.intermediate, layers: layers ?? shape.layers,
                    heads: shape.heads, kvHeads: shape.kvHeads, headDim: shape.headDim, vocabSize: shape.vocab,
                    maxPositions: 8192, rmsNormEps: 1e-5, ropeTheta: 500_000, tieWordEmbeddings: shape.tiedEmbeddings)
    }

    /// Random weights for `config`; the same seed gives the same weights. Tensors are filled in parallel chunks,
    /// each from its own generator seeded by (seed, tensor, chunk), so the result does not depend on thread count.
    public static func make(_ config: LlamaConfig, seed: UInt64) -> LlamaWeights {
        let h = config.hiddenSize, q = config.heads * config.headDim, kv = config.kvHeads * config.headDim
        let f = config.intermediateSize
        var tensor: UInt64 = 0
        func nextSeed() -> UInt64 {
            tensor += 1
            return seed &* 0x9E37_79B9_7F4A_7C15 &+ tensor
        }
        func projection(rows: Int, columns: Int) -> LinearWeight {
            .fourBit(fourBit(rows: rows, columns: columns, seed: nextSeed()))
        }
        let embedding = uniform(count: config.vocabSize * h, std: 0.02, seed: nextSeed())
        let layers = (0..<config.layers).map { _ in
            LlamaWeights.Layer(
                attnNorm: [Float](repeating: 1, count: h),
                wq: projection(rows: q, columns: h), wk: projection(rows: kv, columns: h), wv: projection(rows: kv, columns: h),
                wo: projection(rows: h, columns: q), ffnNorm: [Float](repeating: 1, count: h),
                wGate: projection(rows: f, columns: h), wUp: projection(rows: f, columns: h), wDown: projection(rows: h, columns: f))
        }
        let lmHead = config.tieWordEmbeddings ? nil : uniform(count: config.vocabSize * h, std: 0.02, seed: nextSeed())
        return LlamaWeights(embedding: embedding, layers: layers, finalNorm: [Float](repeating: 1, count: h), lmHead: lmHead)
    }

    /// One `[rows, columns]` NF4 weight: uniform codes, block scales 0.048 ± 20%, double-quantized.
    static func fourBit(rows: Int, columns: Int, seed: UInt64) -> FourBitTensor {
        let options = FourBitOptions()
        let count = rows * columns
        let blocks = (count + options.blocksize - 1) / options.blocksize
        // Eight bytes of codes per draw: the words are filled, then cut to the packed length.
        var words = [UInt64](repeating: 0, count: ((count + 1) / 2 + 7) / 8)
        fill(&words, seed: seed) { rng in rng.next() }
        let packed = words.withUnsafeBytes { Array($0.prefix((count + 1) / 2)) }
        var absmax = [Float](repeating: 0, count: blocks)
        fill(&absmax, seed: seed &+ 1) { rng in 0.048 * (0.8 + 0.4 * unit(&rng)) }
        return FourBitTensor(type: options.type, shape: [rows, columns], blocksize: options.blocksize, packed: packed,
                             scales: .nested(FourBitQuantizer.nest(absmax)), dtype: .float32)
    }

    /// `count` values uniform in ±std·√3 (standard deviation `std`).
    static func uniform(count: Int, std: Float, seed: UInt64) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        let width = std * Float(3).squareRoot()
        fill(&values, seed: seed) { rng in width * (2 * unit(&rng) - 1) }
        return values
    }

    /// Fills `array` in chunks of 1 Mi elements, chunk `c` from `SeededGenerator(seed: seed ^ c·φ)`.
    private static func fill<T>(_ array: inout [T], seed: UInt64, _ value: @escaping (inout SeededGenerator) -> T) {
        let chunk = 1 << 20
        let count = array.count
        array.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let base = buffer.baseAddress!
            FourBitQuantizer.parallelChunks((count + chunk - 1) / chunk, minimumPerChunk: 1) { chunks in
                for c in chunks {
                    var rng = SeededGenerator(seed: seed ^ (UInt64(c) &* 0x9E37_79B9_7F4A_7C15))
                    for i in c * chunk..<min(count, (c + 1) * chunk) { base[i] = value(&rng) }
                }
            }
        }
    }

    /// Uniform in [0, 1) from 24 random bits.
    private static func unit(_ rng: inout SeededGenerator) -> Float { Float(rng.next() >> 40) / Float(1 << 24) }
}
