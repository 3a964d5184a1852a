import Foundation
import QLoRACore
import QLoRAFormats
import QLoRAModel
import QLoRATokenizer
import QLoRATraining

/// How closely an exported merged checkpoint reproduces the adapted model it came from.
///
/// The reference is "adapter on base": the base exactly as loaded for training plus the unmerged adapter, run
/// through `LlamaModel.logits` (the training forward without dropout), where every adapted projection computes `x·Wᵀ + s·(x·Aᵀ)·Bᵀ` in fp32. For a
/// prepared 4-bit base `W` is the NF4 weight dequantized with its block scales (inside the backend's 4-bit
/// kernels), and that is exactly what QLoRA's forward computes (bitsandbytes dequantizes the 4-bit weight to the
/// compute dtype and multiplies; PEFT adds the LoRA branch on top), i.e. the function the adapter was trained in.
/// The candidate is the export as written: loaded back from disk through `ModelLoader` (so bf16/fp16 rounding of
/// every tensor is included) and run through `LlamaModel.forward`.
///
/// Per prompt, over every position: max |Δlogit|, the mean and max of KL(p_reference ‖ p_export) in nats
/// (log-softmax in Float64), and the fraction of positions whose top-1 token agrees.
public enum ExportFidelity {
    public static let defaultPrompts = [
        "What is the capital of France?",
        "Write a short poem about the sea.",
        "def fibonacci(n):\n    if n < 2:\n        return n\n",
        "The quick brown fox jumps over the lazy dog. 1, 2, 3, 4, 5",
    ]

    /// Longest prompt measured, in tokens.
    public static let maxTokens = 64

    public struct PromptIDs: Sendable {
        public var label: String
        public var ids: [Int]
    }

    public struct PromptResult: Sendable {
        public var label: String
        public var tokens: Int
        public var maxAbsLogitDiff: Double
        public var meanKL: Double
        public var maxKL: Double
        public var top1Agreement: Double
    }

    public struct Report: Sendable {
        public var dtype: String
        /// "tokenizer" or "synthetic token ids (no tokenizer)".
        public var tokenSource: String
        public var prompts: [PromptResult]

        public var maxAbsLogitDiff: Double { prompts.map(\.maxAbsLogitDiff).max() ?? 0 }
        /// Mean over all positions of all prompts.
        public var meanKL: Double {
            let n = prompts.reduce(0) { $0 + $1.tokens }
            return n == 0 ? 0 : prompts.reduce(0) { $0 + $1.meanKL * Double($1.tokens) } / Double(n)
        }
        public var maxKL: Double { prompts.map(\.maxKL).max() ?? 0 }
        public var top1Agreement: Double {
            let n = prompts.reduce(0) { $0 + $1.tokens }
            return n == 0 ? 1 : prompts.reduce(0) { $0 + $1.top1Agreement * Double($1.tokens) } / Double(n)
        }

        public var json: JSONObject {
            JSONObject([
                ("reference", .string("adapter on base: base as trained (4-bit dequantized in the kernel when prepared) + unmerged LoRA, fp32")),
                ("candidate", .string("merged export loaded back from disk")),
                ("dtype", .string(dtype)),
                ("tokens_from", .string(tokenSource)),
                ("max_abs_logit_diff", .number(maxAbsLogitDiff)),
                ("mean_kl", .number(meanKL)),
                ("max_kl", .number(maxKL)),
                ("top1_agreement", .number(top1Agreement)),
                ("prompts", .array(prompts.map {
                    .object(JSONObject([
                        ("label", .string($0.label)), ("tokens", .number(Double($0.tokens))),
                        ("max_abs_logit_diff", .number($0.maxAbsLogitDiff)), ("mean_kl", .number($0.meanKL)),
                        ("max_kl", .number($0.maxKL)), ("top1_agreement", .number($0.top1Agreement)),
                    ]))
                })),
            ])
        }

        public var summary: String {
            String(format: "fidelity (%@): max |Δlogit| %.3g, mean KL %.3g nats (max %.3g), top-1 agreement %.1f%% over %ld tokens",
                   dtype, maxAbsLogitDiff, meanKL, maxKL, 100 * top1Agreement, prompts.reduce(0) { $0 + $1.tokens })
        }
    }

    /// The prompts tokenized with `tokenizer` (a model directory, tokenizer.json or GGUF), at most `maxTokens`
    /// each; when no tokenizer can be loaded (a prepared directory made from a GGUF file has none), three fixed
    /// pseudo-random id sequences instead: fidelity compares logits, any ids do.
    public static func sequences(prompts: [String], tokenizer: String, vocabSize: Int) -> (sequences: [PromptIDs], source: String) {
        if let t = try? Tokenizer.load(path: tokenizer) {
            let seqs = prompts.map { text in
                PromptIDs(label: String(text.prefix(40)), ids: Array(t.encode(text, addSpecialTokens: true).filter { $0 < vocabSize }.prefix(maxTokens)))
            }.filter { !$0.ids.isEmpty }
            if !seqs.isEmpty { return (seqs, "tokenizer") }
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let seqs = (0..<3).map { k in
            PromptIDs(label: "synthetic \(k)", ids: (0..<24).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Int((state >> 33) % UInt64(vocabSize))
            })
        }
        return (seqs, "synthetic token ids (no tokenizer)")
    }

    /// Runs the reference (`model` + `adapter`), drops it, then loads `merged` and compares.
    public static func measure(model: String, adapter: PEFTAdapter, merged: String, dtype: String,
                               sequences: (sequences: [PromptIDs], source: String), backend: any Backend) throws -> Report {
        let references: [[Float]] = try {
            let base = try ModelLoader.loadModel(path: model, backend: backend)
            let adapted = try base.withAdapter(adapter)
            return sequences.sequences.map { adapted.logits($0.ids.map { Int32($0) }) }
        }()
        let exported = try ModelLoader.loadModel(path: merged, backend: backend)
        let vocab = exported.config.vocabSize
        var results: [PromptResult] = []
        for (s, reference) in zip(sequences.sequences, references) {
            var cache = KVCache(config: exported.config, capacity: s.ids.count)
            let candidate = exported.forward(s.ids, cache: &cache, allLogits: true)
            results.append(compare(label: s.label, reference: reference, candidate: candidate, vocab: vocab))
        }
        return Report(dtype: dtype, tokenSource: sequences.source, prompts: results)
    }

    /// Compares two `[T, V]` logit arrays.
    public static func compare(label: String, reference: [Float], candidate: [Float], vocab: Int) -> PromptResult {
        precondition(reference.count == candidate.count && reference.count % vocab == 0, "logit arrays differ in shape")
        let t = reference.count / vocab
        var maxDiff = 0.0, klSum = 0.0, klMax = 0.0, agree = 0
        for row in 0..<t {
            let p = reference[(row * vocab)..<((row + 1) * vocab)], q = candidate[(row * vocab)..<((row + 1) * vocab)]
            let lp = logSoftmax(p), lq = logSoftmax(q)
            var kl = 0.0
            for j in 0..<vocab {
                maxDiff = max(maxDiff, abs(Double(p[p.startIndex + j]) - Double(q[q.startIndex + j])))
                kl += exp(lp[j]) * (lp[j] - lq[j])
            }
            kl = max(kl, 0)
            klSum += kl
            klMax = max(klMax, kl)
            if argmax(p) == argmax(q) { agree += 1 }
        }
        return PromptResult(label: label, tokens: t, maxAbsLogitDiff: maxDiff, meanKL: t == 0 ? 0 : klSum / Double(t), maxKL: klMax,
                            top1Agreement: t == 0 ? 1 : Double(agree) / Double(t))
    }

    static func logSoftmax(_ z: ArraySlice<Float>) -> [Double] {
        let m = Double(z.max() ?? 0)
        var sum = 0.0
        for v in z { sum += exp(Double(v) - m) }
        let lse = m + log(sum)
        return z.map { Double($0) - lse }
    }

    static func argmax(_ z: ArraySlice<Float>) -> Int {
        var best = z.startIndex
        for i in z.indices where z[i] > z[best] { best = i }
        return best - z.startIndex
    }
}
