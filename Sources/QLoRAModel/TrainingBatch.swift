import QLoRACore

/// One micro-batch as the trainer feeds it to the model: every sequence's tokens laid end to end as `rows`
/// rows, with per-row next-token targets, RoPE positions and document ids.
///
/// Sequences of a batch and documents packed into one sequence are the same thing to the model: a run of
/// equal document ids attends causally within itself only, and positions restart at each document, so one
/// set of large GEMMs serves the whole batch.
public struct TrainingBatch: Sendable, Equatable {
    /// `[rows]` token ids.
    public var tokens: [Int32]
    /// `[rows]` the token each row must predict (already shifted), or `CrossEntropy.ignoreIndex`.
    public var targets: [Int32]
    /// `[rows]` RoPE positions.
    public var positions: [Int32]
    /// `[rows]` document ids (a document is a run of equal consecutive ids).
    public var documents: [Int32]

    public var rows: Int { tokens.count }

    /// Rows whose target counts toward the loss.
    public var countedTargets: Int { targets.reduce(0) { $0 + ($1 == CrossEntropy.ignoreIndex ? 0 : 1) } }

    public init(tokens: [Int32], targets: [Int32], positions: [Int32], documents: [Int32]) {
        precondition(targets.count == tokens.count && positions.count == tokens.count && documents.count == tokens.count,
                     "batch arrays differ in length")
        self.tokens = tokens
        self.targets = targets
        self.positions = positions
        self.documents = documents
    }

    /// A batch of separate sequences with labels in the HF convention (`labels[b][t]` is the label of token
    /// `t`, predicted from position `t − 1`; `-100` = ignored; transformers' `ForCausalLMLoss` shift): row `t`
    /// of sequence `b` targets `labels[b][t + 1]`, and the last row of each sequence targets nothing.
    public init(sequences: [[Int32]], labels: [[Int32]]) {
        precondition(sequences.count == labels.count && zip(sequences, labels).allSatisfy { $0.count == $1.count },
                     "every sequence needs one label per token")
        var tokens: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], documents: [Int32] = []
        for (b, (seq, lab)) in zip(sequences, labels).enumerated() {
            tokens += seq
            targets += lab.dropFirst() + [CrossEntropy.ignoreIndex]
            positions += (0..<seq.count).map { Int32($0) }
            documents += [Int32](repeating: Int32(b), count: seq.count)
        }
        self.init(tokens: tokens, targets: targets, positions: positions, documents: documents)
    }
}
