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
    /// `log p(targets[t] | prefix)` for every scored row of every run (nil where the run has no target),
    /// from one forward over all rows of `batch`. Only scored rows go through the lm_head.
    public func logProbabilities(_ batch: ScoringBatch) -> [[Double?]] {
        let c = config, b = backend, h = c.hiddenSize
        let kvWidth = c.kvHeads * c.headDim
        let runs = batch.runs
        var firstRow: [Int] = [], startPosition: [Int] = [], chains: [[Int]] = []
        var tokens: [Int32] = [], positions: [Int32] = []
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
            tokens += run.tokens.map { Int32($0) }
            positions += (0..<run.tokens.count).map { Int32(offset + $0) }
        }
        let rows = tokens.count
        guard rows > 0 else { return runs.map { $0.targets.map { _ in nil } } }

        var x = embed(tokens).x
        let rope = ropeTables(positions)
        let longest = runs.indices.map { startPosition[$0] + runs[$0].tokens.count }.max() ?? 0
        let kScratch = b.allocate([longest, kvWidth], .f32), vScratch = b.allocate([longest, kvWidth], .f32)
        for l in 0..<c.layers {
            x = forwardBlock(l, x, rows: rows, rope: rope, dropoutSeed: nil) { _, q, k, v, out in
                for (i, run) in runs.enumerated() where !run.tokens.isEmpty {
                    let own = firstRow[i]..<(firstRow[i] + run.tokens.count)
                    var keys = k.rows(own), values = v.rows(own)
                    if !chains[i].isEmpty {
                        // Keys/values of the parent chain, then the run's own, laid out as a cache.
                        var filled = 0
                        for j in chains[i] + [i] {
                            let n = runs[j].tokens.count, from = firstRow[j]..<(firstRow[j] + n)
                            b.copy(k.rows(from), to: kScratch.rows(filled..<(filled + n)))
                            b.copy(v.rows(from), to: vScratch.rows(filled..<(filled + n)))
                            filled += n
                        }
                        keys = kScratch.rows(0..<filled)
                        values = vScratch.rows(0..<filled)
                    }
                    b.attention(q: q.rows(own), k: keys, v: values, out: out.rows(own), rows: run.tokens.count, start: startPosition[i],
                                heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim, scale: attentionScale)
                }
                return nil
            }.output
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
        let chunk = Self.headRows, width = min(chunk, max(1, scored.count))
        let gathered = b.allocate([width, h], .f32), normed = b.allocate([width, h], .f32)
        let logits = b.allocate([width, c.vocabSize], .f32)
        for s0 in stride(from: 0, to: scored.count, by: chunk) {
            let part = Array(scored[s0..<min(scored.count, s0 + chunk)])
            for (k, s) in part.enumerated() { b.copy(x.rows(s.row..<(s.row + 1)), to: gathered.rows(k..<(k + 1))) }
            b.rmsNorm(gathered.rows(0..<part.count), weight: finalNorm, normed.rows(0..<part.count), rows: part.count, dim: h,
                      eps: c.rmsNormEps)
            b.matmulTransposed(normed.rows(0..<part.count), head, logits.rows(0..<part.count), m: part.count, n: c.vocabSize, k: h,
                               accumulate: false)
            let targets = b.upload(part.map { Int32($0.target) }, shape: [part.count])
            for (k, s) in part.enumerated() {
                let loss = b.crossEntropy(logits: logits.rows(k..<(k + 1)), targets: targets.rows(k..<(k + 1)), dLogits: nil, rows: 1,
                                          vocab: c.vocabSize, gradScale: 0)
                out[s.run][s.t] = -loss.sum
            }
        }
        return out
    }
}
