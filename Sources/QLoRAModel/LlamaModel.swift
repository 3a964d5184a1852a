import Foundation
import QLoRACore

/// Keys and values of every layer for the positions seen so far (generation reuses them).
public struct KVCache: Sendable {
    public private(set) var length = 0
    let capacity: Int
    var keys: [[Float]]
    var values: [[Float]]

    public init(config: LlamaConfig, capacity: Int) {
        self.capacity = capacity
        let size = capacity * config.kvHeads * config.headDim
        keys = Array(repeating: [Float](repeating: 0, count: size), count: config.layers)
        values = keys
    }

    mutating func advance(by n: Int) { length += n }
}

/// The LLaMA forward pass (spec llama-architecture §2): embedding, per layer RMSNorm → GQA attention with
/// RoPE → residual → RMSNorm → SwiGLU MLP → residual, final norm, lm_head. fp32 compute; the ops come
/// from a `Backend`.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfig
    public let weights: LlamaWeights
    public let backend: any Backend
    private let inverseFrequencies: [Float]

    public init(config: LlamaConfig, weights: LlamaWeights, backend: any Backend) {
        self.config = config
        self.weights = weights
        self.backend = backend
        inverseFrequencies = config.inverseFrequencies.map { Float($0) }
    }

    /// Runs `tokens` at positions `cache.length ..< cache.length + tokens.count`, appending to the cache.
    /// Returns logits `[rows, vocab]` for every position when `allLogits`, else for the last one only.
    public func forward(_ tokens: [Int], cache: inout KVCache, allLogits: Bool = false) -> [Float] {
        let c = config, b = backend
        let t = tokens.count, h = c.hiddenSize, dHead = c.headDim
        let qWidth = c.heads * dHead, kvWidth = c.kvHeads * dHead, f = c.intermediateSize
        let start = cache.length
        precondition(start + t <= cache.capacity, "KV cache overflow: \(start + t) > \(cache.capacity)")
        precondition(tokens.allSatisfy { $0 >= 0 && $0 < c.vocabSize }, "token id out of range")

        var x = [Float](repeating: 0, count: t * h)
        for (i, id) in tokens.enumerated() {
            x.withUnsafeMutableBufferPointer { xb in
                weights.embedding.withUnsafeBufferPointer { e in
                    (xb.baseAddress! + i * h).update(from: e.baseAddress! + id * h, count: h)
                }
            }
        }
        // RoPE tables for these positions: angle = position · inv_freq in fp32, as HF computes them.
        let half = dHead / 2
        var cosT = [Float](repeating: 0, count: t * half), sinT = cosT
        for p in 0..<t {
            for i in 0..<half {
                let angle = Float(start + p) * inverseFrequencies[i]
                cosT[p * half + i] = Foundation.cos(angle)
                sinT[p * half + i] = Foundation.sin(angle)
            }
        }
        var xn = [Float](repeating: 0, count: t * h)
        var q = [Float](repeating: 0, count: t * qWidth)
        var kNew = [Float](repeating: 0, count: t * kvWidth), vNew = kNew
        var attn = [Float](repeating: 0, count: t * qWidth)
        var gate = [Float](repeating: 0, count: t * f), up = gate

        for (l, layer) in weights.layers.enumerated() {
            b.rmsNorm(x, weight: layer.attnNorm, &xn, rows: t, dim: h, eps: c.rmsNormEps)
            layer.wq.forward(xn, rows: t, out: qWidth, in: h, into: &q, accumulate: false, backend: b)
            layer.wk.forward(xn, rows: t, out: kvWidth, in: h, into: &kNew, accumulate: false, backend: b)
            layer.wv.forward(xn, rows: t, out: kvWidth, in: h, into: &vNew, accumulate: false, backend: b)
            if let bq = layer.bq, let bk = layer.bk, let bv = layer.bv {
                for r in 0..<t {
                    q.withUnsafeMutableBufferPointer { b.add($0.baseAddress! + r * qWidth, bq, count: qWidth) }
                    kNew.withUnsafeMutableBufferPointer { b.add($0.baseAddress! + r * kvWidth, bk, count: kvWidth) }
                    vNew.withUnsafeMutableBufferPointer { b.add($0.baseAddress! + r * kvWidth, bv, count: kvWidth) }
                }
            }
            b.rope(&q, rows: t, heads: c.heads, headDim: dHead, cos: cosT, sin: sinT)
            b.rope(&kNew, rows: t, heads: c.kvHeads, headDim: dHead, cos: cosT, sin: sinT)
            cache.keys[l].withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: start * kvWidth).update(from: kNew, count: t * kvWidth) }
            cache.values[l].withUnsafeMutableBufferPointer { $0.baseAddress!.advanced(by: start * kvWidth).update(from: vNew, count: t * kvWidth) }
            b.attention(q: q, k: cache.keys[l], v: cache.values[l], out: &attn, rows: t, start: start,
                        heads: c.heads, kvHeads: c.kvHeads, headDim: dHead, scale: 1 / Float(dHead).squareRoot())
            layer.wo.forward(attn, rows: t, out: h, in: qWidth, into: &x, accumulate: true, backend: b)

            b.rmsNorm(x, weight: layer.ffnNorm, &xn, rows: t, dim: h, eps: c.rmsNormEps)
            layer.wGate.forward(xn, rows: t, out: f, in: h, into: &gate, accumulate: false, backend: b)
            layer.wUp.forward(xn, rows: t, out: f, in: h, into: &up, accumulate: false, backend: b)
            b.swiglu(gate: gate, up: up, &gate, count: t * f)
            layer.wDown.forward(gate, rows: t, out: h, in: f, into: &x, accumulate: true, backend: b)
        }
        cache.advance(by: t)

        let rows = allLogits ? t : 1
        let firstRow = t - rows
        var normed = [Float](repeating: 0, count: rows * h)
        x.withUnsafeBufferPointer { xb in
            b.rmsNorm(xb.baseAddress! + firstRow * h, weight: weights.finalNorm, &normed, rows: rows, dim: h, eps: c.rmsNormEps)
        }
        var logits = [Float](repeating: 0, count: rows * c.vocabSize)
        b.matmulTransposed(normed, weights.lmHead ?? weights.embedding, &logits, m: rows, n: c.vocabSize, k: h, accumulate: false)
        return logits
    }

    /// Mean negative log-likelihood of `tokens[1...]` given their prefixes (HF's shifted causal LM loss).
    public func meanNLL(_ tokens: [Int]) -> Double {
        guard tokens.count > 1 else { return .nan }
        var cache = KVCache(config: config, capacity: tokens.count)
        let logits = forward(tokens, cache: &cache, allLogits: true)
        let v = config.vocabSize
        var total = 0.0
        for t in 0..<(tokens.count - 1) {
            let row = logits[(t * v)..<((t + 1) * v)]
            let m = row.max()!
            var sum = 0.0
            for z in row { sum += Foundation.exp(Double(z - m)) }
            total += Double(m) + Foundation.log(sum) - Double(row[row.startIndex + tokens[t + 1]])
        }
        return total / Double(tokens.count - 1)
    }
}
