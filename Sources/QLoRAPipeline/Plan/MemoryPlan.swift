import Foundation
import QLoRAFormats
import QLoRAModel

/// The shape of a LLaMA-family model, all the planner needs (no weights read).
public struct ModelShape: Sendable, Equatable, Encodable {
    public var name: String
    public var hidden: Int
    public var intermediate: Int
    public var layers: Int
    public var heads: Int
    public var kvHeads: Int
    public var headDim: Int
    public var vocab: Int
    public var tiedEmbeddings: Bool

    public init(name: String, hidden: Int, intermediate: Int, layers: Int, heads: Int, kvHeads: Int, headDim: Int? = nil, vocab: Int,
                tiedEmbeddings: Bool) {
        self.name = name
        self.hidden = hidden
        self.intermediate = intermediate
        self.layers = layers
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim ?? hidden / heads
        self.vocab = vocab
        self.tiedEmbeddings = tiedEmbeddings
    }

    /// `--model-shape` presets: the published configurations.
    public static let presets: [ModelShape] = [
        ModelShape(name: "smollm2-135m", hidden: 576, intermediate: 1536, layers: 30, heads: 9, kvHeads: 3, vocab: 49152, tiedEmbeddings: true),
        ModelShape(name: "llama-3.2-1b", hidden: 2048, intermediate: 8192, layers: 16, heads: 32, kvHeads: 8, vocab: 128256, tiedEmbeddings: true),
        ModelShape(name: "llama-7b", hidden: 4096, intermediate: 11008, layers: 32, heads: 32, kvHeads: 32, vocab: 32000, tiedEmbeddings: false),
        ModelShape(name: "llama3-8b", hidden: 4096, intermediate: 14336, layers: 32, heads: 32, kvHeads: 8, vocab: 128256, tiedEmbeddings: false),
        ModelShape(name: "llama-13b", hidden: 5120, intermediate: 13824, layers: 40, heads: 40, kvHeads: 40, vocab: 32000, tiedEmbeddings: false),
        ModelShape(name: "llama-33b", hidden: 6656, intermediate: 17920, layers: 60, heads: 52, kvHeads: 52, vocab: 32000, tiedEmbeddings: false),
        ModelShape(name: "llama-65b", hidden: 8192, intermediate: 22016, layers: 80, heads: 64, kvHeads: 64, vocab: 32000, tiedEmbeddings: false),
        ModelShape(name: "llama2-70b", hidden: 8192, intermediate: 28672, layers: 80, heads: 64, kvHeads: 8, vocab: 32000, tiedEmbeddings: false),
    ]

    public static func preset(_ name: String) -> ModelShape? { presets.first { $0.name == name.lowercased() } }

    /// The shape of the model at `path` (an HF directory's config.json or a GGUF's metadata).
    public static func of(path: String) throws -> ModelShape {
        let url = URL(fileURLWithPath: path)
        var config: LlamaConfig
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            let configURL = url.appendingPathComponent("config.json")
            config = try LlamaConfig.fromHF([UInt8](try Data(contentsOf: configURL)), file: configURL.path)
        } else {
            let file = try GGUFFile(path: path)
            config = try LlamaConfig.fromGGUF(file.metadata, file: path)
            // A GGUF without an `output.weight` tensor ties the LM head to the embedding.
            config.tieWordEmbeddings = !file.tensors.contains { $0.name == "output.weight" }
        }
        return ModelShape(name: url.lastPathComponent, hidden: config.hiddenSize, intermediate: config.intermediateSize,
                          layers: config.layers, heads: config.heads, kvHeads: config.kvHeads, headDim: config.headDim,
                          vocab: config.vocabSize, tiedEmbeddings: config.tieWordEmbeddings)
    }

    /// (in, out) of each projection LoRA can target, by PEFT name.
    func projections(_ targets: [String]) -> [(in: Int, out: Int)] {
        let q = heads * headDim, kv = kvHeads * headDim
        let all: [String: (Int, Int)] = ["q_proj": (hidden, q), "k_proj": (hidden, kv), "v_proj": (hidden, kv), "o_proj": (q, hidden),
                                         "gate_proj": (hidden, intermediate), "up_proj": (hidden, intermediate),
                                         "down_proj": (intermediate, hidden)]
        return targets.compactMap { all[$0] }
    }

    /// Parameters of the linear projections (what is quantized to 4 bits).
    var linearParameters: Int {
        let q = heads * headDim, kv = kvHeads * headDim
        return layers * (2 * hidden * q + 2 * hidden * kv + 3 * hidden * intermediate)
    }
}

/// What one training or evaluation configuration needs in memory, by component, in bytes. The formulas follow what
/// the CPU backend allocates (Sources/QLoRAModel, Sources/QLoRATraining: layer inputs kept under checkpointing, the
/// LM head in chunks of `LlamaModel.headRows` rows) and are calibrated on SmolLM2, packed sequences, 2-core EPYC:
///
/// | configuration (SmolLM2, all 7 projections)     | measured peak        | estimate  |
/// |------------------------------------------------|----------------------|-----------|
/// | seq 256 × 4, r 8, checkpointing (bench train)  | 447.7 MB (train)     | 423 MB    |
/// | seq 256 × 4, r 8, no checkpointing (bench)     | 1.40 GB (train)      | 1.37 GB   |
/// | seq 256 × 4, r 16, checkpointing (run --only train) | 508.7 MB        | 462 MB    |
/// | seq 256 × 8, r 8, checkpointing (run --only train)  | 493.0 MB        | 529 MB    |
/// | seq 512 × 2, r 32, no checkpointing (run --only train) | 1.43 GB      | 1.51 GB   |
///
/// so a plan carries a 15% margin.
public struct MemoryEstimate: Sendable, Encodable {
    public var components: [String: Int64]
    public var total: Int64 { components.values.reduce(0, +) }

    public static let margin = 1.15
}

public enum MemoryPlanner {
    /// The process's own floor: binary, runtime, tokenizer, GEMM library buffers.
    static let baseline: Int64 = 60 << 20

    /// Frozen weights: 4-bit linears with double-quantized scales (0.5 + 1/64 + 4/(64·256) bytes per parameter), the
    /// embedding and an untied LM head dense in fp32, the norms.
    static func weights(_ s: ModelShape) -> (quantized: Int64, dense: Int64) {
        let q = Int64((Double(s.linearParameters) * (0.5 + 1.0 / 64 + 4.0 / (64 * 256))).rounded(.up))
        let embeddings = Int64(s.vocab * s.hidden) * 4 * (s.tiedEmbeddings ? 1 : 2)
        return (q, embeddings + Int64((2 * s.layers + 1) * s.hidden) * 4)
    }

    /// The train stage's peak for `microBatch` sequences of `sequenceLength` tokens.
    public static func train(_ s: ModelShape, rank: Int, targets: [String], microBatch: Int, sequenceLength: Int,
                             checkpointing: Bool, pagedBudgetBytes: Int64?) -> MemoryEstimate {
        let tokens = Int64(microBatch * sequenceLength)
        let (quantized, dense) = weights(s)
        let loraParameters = Int64(s.layers) * Int64(s.projections(targets).reduce(0) { $0 + rank * ($1.in + $1.out) })
        let moments = 8 * loraParameters
        // Saved per token and layer for backward (calibrated, see MemoryEstimate): the block's inputs, norms and
        // residuals, q and k/v, the MLP's gate, up and activation, the LoRA intermediates.
        let perTokenLayer = Int64(5 * s.hidden + s.heads * s.headDim + 2 * s.kvHeads * s.headDim + 3 * s.intermediate + 7 * rank)
        let activations = checkpointing
            ? tokens * Int64(s.hidden) * 4 * Int64(s.layers) + tokens * perTokenLayer * 4   // layer inputs + one layer live
            : tokens * perTokenLayer * 4 * Int64(s.layers)
        let attentionScores = Int64(sequenceLength) * Int64(sequenceLength) * 4 * 2
        return MemoryEstimate(components: [
            "weights, 4-bit linears (NF4 + double quant)": quantized,
            "weights, dense (embeddings, norms)": dense,
            "LoRA parameters and gradients (fp32)": 8 * loraParameters,
            "AdamW moments (fp32)": pagedBudgetBytes.map { min($0, moments) } ?? moments,
            "activations kept for backward": activations,
            "attention scores (one head)": attentionScores,
            "logits and their gradient (in place, chunks of 256 rows)": min(tokens, Int64(LlamaModel.headRows)) * Int64(s.vocab) * 4,
            "process baseline (runtime, buffers)": baseline,
        ])
    }

    /// The evaluate stage's peak: the model, one scoring batch of `batchRows` rows (activations of one layer, logits).
    public static func evaluate(_ s: ModelShape, rank: Int, targets: [String], batchRows: Int) -> MemoryEstimate {
        let (quantized, dense) = weights(s)
        let lora = Int64(s.layers) * Int64(s.projections(targets).reduce(0) { $0 + rank * ($1.in + $1.out) }) * 4
        let perToken = Int64(4 * s.hidden + s.heads * s.headDim + 2 * s.kvHeads * s.headDim + 2 * s.intermediate)
        let kvCache = Int64(batchRows) * Int64(2 * s.kvHeads * s.headDim * s.layers) * 4
        return MemoryEstimate(components: [
            "weights, 4-bit linears (NF4 + double quant)": quantized,
            "weights, dense (embeddings, norms)": dense,
            "adapter": lora,
            "scoring batch: activations, keys/values": Int64(batchRows) * perToken * 4 + kvCache,
            "logits": Int64(batchRows) * Int64(s.vocab) * 4,
            "process baseline (runtime, buffers)": baseline,
        ])
    }

    /// The prepare stage's peak: quantization streams one tensor at a time (the largest in fp32, its 4-bit output)
    /// while the dense embeddings are copied.
    public static func prepare(_ s: ModelShape) -> MemoryEstimate {
        let largest = Int64(max(s.hidden * s.intermediate, s.vocab * s.hidden)) * 4
        return MemoryEstimate(components: [
            "largest tensor in fp32, and its 4-bit form": largest + largest / 8,
            "process baseline (runtime, buffers)": baseline,
        ])
    }

    /// The largest micro-batch (sequences per step) whose training estimate, with the margin, stays within `limit`;
    /// 0 when not even one fits.
    public static func largestMicroBatch(_ s: ModelShape, rank: Int, targets: [String], sequenceLength: Int, checkpointing: Bool,
                                         pagedBudgetBytes: Int64?, limit: Int64) -> Int {
        var best = 0
        for b in 1...256 {
            let e = train(s, rank: rank, targets: targets, microBatch: b, sequenceLength: sequenceLength, checkpointing: checkpointing,
                          pagedBudgetBytes: pagedBudgetBytes)
            if Double(e.total) * MemoryEstimate.margin > Double(limit) { break }
            best = b
        }
        return best
    }
}
