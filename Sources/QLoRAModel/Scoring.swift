import Foundation
import QLoRACore

/// One multiple-choice question as token ids: a context and the continuations to rank.
public struct ChoiceQuestionTokens: Sendable, Equatable {
    /// Non-empty.
    public var context: [Int]
    /// Each non-empty.
    public var choices: [[Int]]

    public init(context: [Int], choices: [[Int]]) {
        precondition(!context.isEmpty, "a question's context needs at least one token")
        precondition(!choices.isEmpty && choices.allSatisfy { !$0.isEmpty }, "every choice needs at least one token")
        self.context = context
        self.choices = choices
    }

    /// Rows this question adds to a scoring batch: the context but its last token once, then per choice the
    /// last context token and all but the choice's last token.
    public var rows: Int { context.count - 1 + choices.reduce(0) { $0 + $1.count } }
}

/// Batched log-likelihood scoring with a `LlamaModel` (base or adapted): multiple-choice ranking as in
/// lm-evaluation-harness's `loglikelihood` requests, and masked token loss.
public enum Scoring {
    /// Rows per forward unless the caller says otherwise: large enough that the GEMMs (and a 4-bit base's
    /// slab dequantization) are amortized, small enough that activations stay a few MB.
    public static let defaultRowsPerForward = 1024

    /// `Σ_t log p(choice_t | context, choice_<t)` of every choice of every question (`[question][choice]`).
    ///
    /// Questions are packed into forwards of about `rowsPerForward` rows: a question's context runs once (all
    /// but its last token), and each choice is a run on top of it that starts with the context's last token,
    /// so its rows predict exactly the choice's tokens and the context's keys/values are shared
    /// (`ScoringBatch`). `progress` gets the number of questions done after each forward.
    public static func choiceLogLikelihoods(_ model: LlamaModel, _ questions: [ChoiceQuestionTokens],
                                            rowsPerForward: Int = defaultRowsPerForward,
                                            progress: (Int) -> Void = { _ in }) -> [[Double]] {
        var results: [[Double]] = []
        results.reserveCapacity(questions.count)
        var start = 0
        while start < questions.count {
            var end = start, rows = 0
            while end < questions.count && (end == start || rows + questions[end].rows <= rowsPerForward) {
                rows += questions[end].rows
                end += 1
            }
            var batch = ScoringBatch()
            var choiceRuns: [[Int]] = []
            for q in questions[start..<end] {
                let c = q.context
                let parent: Int? = c.count > 1
                    ? batch.append(.init(tokens: Array(c.dropLast()), targets: Array(repeating: nil, count: c.count - 1)))
                    : nil
                choiceRuns.append(q.choices.map { choice in
                    batch.append(.init(tokens: [c.last!] + choice.dropLast(), parent: parent, targets: choice.map { $0 }))
                })
            }
            let logProbs = model.logProbabilities(batch)
            for runs in choiceRuns {
                results.append(runs.map { run in logProbs[run].reduce(0) { $0 + ($1 ?? 0) } })
            }
            start = end
            progress(end)
        }
        return results
    }

    /// Summed negative log-likelihood and count of the scored rows of independent sequences (runs without
    /// parents; row `t` predicts `targets[t]`), packed as documents into forwards of about `rowsPerForward` rows,
    /// each scored by the model's one loss computation (`LlamaModel.loss`, the training forward without dropout).
    public static func tokenLoss(_ model: LlamaModel, _ sequences: [ScoringBatch.Run], rowsPerForward: Int = defaultRowsPerForward,
                                 progress: (Int) -> Void = { _ in }) -> (sum: Double, count: Int) {
        var sum = 0.0, count = 0
        var start = 0
        while start < sequences.count {
            var tokens: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], documents: [Int32] = []
            var end = start
            while end < sequences.count && (end == start || tokens.count + sequences[end].tokens.count <= rowsPerForward) {
                let run = sequences[end]
                precondition(run.parent == nil, "tokenLoss scores independent sequences")
                tokens += run.tokens.map { Int32($0) }
                targets += run.targets.map { $0.map { Int32($0) } ?? CrossEntropy.ignoreIndex }
                positions += (0..<run.tokens.count).map { Int32($0) }
                documents += [Int32](repeating: Int32(end - start), count: run.tokens.count)
                end += 1
            }
            let part = model.loss(TrainingBatch(tokens: tokens, targets: targets, positions: positions, documents: documents))
            sum += part.sum
            count += part.count
            start = end
            progress(end)
        }
        return (sum, count)
    }

    /// The index of the best choice by summed log-likelihood (`acc`), and by log-likelihood per UTF-8 byte
    /// of the choice text (`acc_norm`, lm-evaluation-harness's length normalization, which divides by the
    /// continuation's byte length). Ties go to the lower index, as `argmax` does.
    public static func picks(logLikelihoods: [Double], byteLengths: [Int]) -> (plain: Int, normalized: Int) {
        precondition(logLikelihoods.count == byteLengths.count && !logLikelihoods.isEmpty)
        var plain = 0, normalized = 0
        func norm(_ i: Int) -> Double { logLikelihoods[i] / Double(max(1, byteLengths[i])) }
        for i in logLikelihoods.indices.dropFirst() {
            if logLikelihoods[i] > logLikelihoods[plain] { plain = i }
            if norm(i) > norm(normalized) { normalized = i }
        }
        return (plain, normalized)
    }
}
