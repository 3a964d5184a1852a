import Foundation
import QLoRACore

/// Token runs scored together in one batched forward (no KV cache survives it).
///
/// A run attends causally to its own tokens after the whole of its parent run (and that run's parents):
/// several continuations of one context are runs whose parent is the context, so the context is
/// computed once and its keys/values serve every continuation, while all rows of all runs share the
/// batch's GEMMs. RoPE positions continue from the parent chain's length. A run without a parent is an
/// independent sequence starting at position 0.
public struct ScoringBatch: Sendable {
    public struct Run: Sendable {
        public var tokens: [Int]
        /// Index of an earlier run whose tokens precede this one, or nil.
        public var parent: Int?
        /// `[tokens.count]`: the token each row predicts (row `t` is scored on `targets[t]` given the parent
        /// chain and `tokens[...t]`), or nil where nothing is scored.
        public var targets: [Int?]

        public init(tokens: [Int], parent: Int? = nil, targets: [Int?]) {
            precondition(targets.count == tokens.count, "one target (or nil) per token")
            self.tokens = tokens
            self.parent = parent
            self.targets = targets
        }
    }

    public private(set) var runs: [Run] = []

    public init() {}

    public var rows: Int { runs.reduce(0) { $0 + $1.tokens.count } }

    /// Adds a run and returns its index (for children to name as parent).
    @discardableResult
    public mutating func append(_ run: Run) -> Int {
        if let p = run.parent { precondition(p >= 0 && p < runs.count, "a run's parent must come before it") }
        runs.append(run)
        return runs.count - 1
    }
}

extension LlamaModel {
    /// Rows per pass through the final norm and lm_head (`headRows × V` logits at a time).
    static let headRows = 256

    /// `log p(targets[t] | prefix)` for every scored row of every run (nil where the run has no target),
    /// from one forward over all rows of `batch`. Only scored rows go through the lm_head.
    public func logProbabilities(_ batch: ScoringBatch) -> [[Double?]] {
        let c = config, b = backend, h = c.hiddenSize
        let kvWidth = c.kvHeads * c.headDim, qWidth = c.heads * c.headDim
        let runs = batch.runs
        var firstRow: [Int] = [], startPosition: [Int] = [], chains: [[Int]] = []
        var tokens: [Int] = [], positions: [Int] = []
        for (i, run) in runs.enumerated() {
            firstRow.append(tokens.count)
            var chain: [Int] = []
            var p = run.parent
            while let q = p {
                chain.insert(q, at: 0)
                p = runs[q].parent
            }
            chains.append(chain)
            let offset = chain.reduce(0) { $0 + runs[$1].tokens.count }
            startPosition.append(offset)
            precondition(offset + run.tokens.count <= c.maxPositions,
                         "run \(i) reaches position \(offset + run.tokens.count), past the model's \(c.maxPositions)")
            tokens += run.tokens
            positions += (0..<run.tokens.count).map { offset + $0 }
        }
        let rows = tokens.count
        guard rows > 0 else { return runs.map { $0.targets.map { _ in nil } } }

        var x = embed(tokens)
        let longest = runs.indices.map { startPosition[$0] + runs[$0].tokens.count }.max() ?? 0
        var kScratch = [Float](repeating: 0, count: longest * kvWidth), vScratch = kScratch
        blocks(&x, rows: rows, rope: ropeTables(positions)) { _, ws in
            withPointers(&ws.attn, ws.q, ws.k, ws.v, &kScratch, &vScratch) { out, q, k, v, ks, vs in
                for (i, run) in runs.enumerated() where !run.tokens.isEmpty {
                    let r0 = firstRow[i], n = run.tokens.count
                    var keys = k + r0 * kvWidth, values = v + r0 * kvWidth
                    if !chains[i].isEmpty {
                        // Keys/values of the parent chain, then the run's own, laid out as a cache.
                        var filled = 0
                        for j in chains[i] + [i] {
                            let count = runs[j].tokens.count * kvWidth, from = firstRow[j] * kvWidth
                            (ks + filled).update(from: k + from, count: count)
                            (vs + filled).update(from: v + from, count: count)
                            filled += count
                        }
                        keys = UnsafePointer(ks)
                        values = UnsafePointer(vs)
                    }
                    b.attention(q: q + r0 * qWidth, k: keys, v: values, out: out + r0 * qWidth, rows: n, start: startPosition[i],
                                heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, scale: attentionScale)
                }
            }
        }

        // The head, over scored rows only.
        var scored: [(run: Int, t: Int, row: Int, target: Int)] = []
        for (i, run) in runs.enumerated() {
            for (t, target) in run.targets.enumerated() {
                guard let target else { continue }
                precondition(target >= 0 && target < c.vocabSize, "target \(target) outside the vocabulary")
                scored.append((i, t, firstRow[i] + t, target))
            }
        }
        var out: [[Double?]] = runs.map { $0.targets.map { _ in nil } }
        let chunk = Self.headRows
        var gathered = [Float](repeating: 0, count: min(chunk, max(1, scored.count)) * h)
        var normed = gathered
        var logits = [Float](repeating: 0, count: min(chunk, max(1, scored.count)) * c.vocabSize)
        let head = weights.lmHead ?? weights.embedding
        for s0 in stride(from: 0, to: scored.count, by: chunk) {
            let part = scored[s0..<min(scored.count, s0 + chunk)]
            x.withUnsafeBufferPointer { xb in
                gathered.withUnsafeMutableBufferPointer { g in
                    for (k, s) in part.enumerated() {
                        (g.baseAddress! + k * h).update(from: xb.baseAddress! + s.row * h, count: h)
                    }
                }
            }
            b.rmsNorm(gathered, weight: weights.finalNorm, &normed, rows: part.count, dim: h, eps: c.rmsNormEps)
            b.matmulTransposed(normed, head, &logits, m: part.count, n: c.vocabSize, k: h, accumulate: false)
            for (k, s) in part.enumerated() {
                var target = Int32(s.target)
                let loss = logits.withUnsafeBufferPointer { z in
                    b.crossEntropy(logits: z.baseAddress! + k * c.vocabSize, targets: &target, dLogits: nil, rows: 1,
                                   vocab: c.vocabSize, gradScale: 0)
                }
                out[s.run][s.t] = -loss.sum
            }
        }
        return out
    }
}

/// Base pointers of one output and three input buffers, plus two scratch buffers, for a pointer-level loop.
private func withPointers(_ out: inout [Float], _ a: [Float], _ b: [Float], _ c: [Float], _ s1: inout [Float], _ s2: inout [Float],
                          _ body: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>,
                                   UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
    out.withUnsafeMutableBufferPointer { o in
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeBufferPointer { pc in
                    s1.withUnsafeMutableBufferPointer { p1 in
                        s2.withUnsafeMutableBufferPointer { p2 in
                            body(o.baseAddress!, pa.baseAddress!, pb.baseAddress!, pc.baseAddress!, p1.baseAddress!, p2.baseAddress!)
                        }
                    }
                }
            }
        }
    }
}
