import Foundation
import Testing
import QLoRACore
import QLoRACPU
@testable import QLoRAModel

/// Batched scoring (`ScoringBatch`, `Scoring`) against plain full forwards of each sequence.
@Suite struct ScoringTests {
    let config = LlamaConfig(hiddenSize: 32, intermediateSize: 48, layers: 2, heads: 4, kvHeads: 2, vocabSize: 50,
                             maxPositions: 64, rmsNormEps: 1e-5, ropeTheta: 10000, attentionBias: true)

    /// `log p(tokens[t+1] | tokens[...t])` for every t, from one full forward.
    func reference(_ model: LlamaModel, _ tokens: [Int]) -> [Double] {
        var cache = KVCache(config: config, capacity: tokens.count)
        let logits = model.forward(tokens, cache: &cache, allLogits: true)
        let v = config.vocabSize
        return (0..<(tokens.count - 1)).map { t in
            let row = logits[(t * v)..<((t + 1) * v)].map(Double.init)
            let m = row.max()!
            return row[tokens[t + 1]] - m - Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - m) })
        }
    }

    @Test func sharedPrefixRunsScoreLikeSeparateForwards() {
        let model = randomModel(config, seed: 11)
        let context = [4, 9, 22, 31, 7], continuations = [[8, 1, 40], [13], [2, 2, 2, 2, 45]]
        var batch = ScoringBatch()
        let prefix = batch.append(.init(tokens: context, targets: [nil, nil, nil, nil, 8]))
        var runs: [Int] = []
        for c in continuations {
            runs.append(batch.append(.init(tokens: c, parent: prefix, targets: Array(c.dropFirst()) + [nil])))
        }
        let lone = batch.append(.init(tokens: [30, 31, 32, 33], targets: [31, 32, 33, nil]))
        let got = model.logProbabilities(batch)
        #expect(got[prefix].last! != nil)
        #expect(abs(got[prefix][4]! - reference(model, context + [8])[4]) < 1e-4)
        for (c, r) in zip(continuations, runs) {
            let full = reference(model, context + c)
            for t in 0..<(c.count - 1) {
                #expect(abs(got[r][t]! - full[context.count + t]) < 1e-4, "continuation \(c) row \(t)")
            }
            #expect(got[r].last! == nil)
        }
        let alone = reference(model, [30, 31, 32, 33])
        for t in 0..<3 { #expect(abs(got[lone][t]! - alone[t]) < 1e-4) }
    }

    @Test func choiceLogLikelihoodsAreTheSumOverTheChoiceAndIndependentOfBatching() {
        let model = randomModel(config, seed: 12)
        let questions = [
            ChoiceQuestionTokens(context: [5, 6, 7], choices: [[1, 2], [3], [4, 4, 4]]),
            ChoiceQuestionTokens(context: [9], choices: [[10, 11], [12]]),  // one-token context: no parent run
            ChoiceQuestionTokens(context: [1, 2, 3, 4, 5, 6], choices: [[7], [8, 9, 10, 11]]),
        ]
        let together = Scoring.choiceLogLikelihoods(model, questions)
        let oneByOne = Scoring.choiceLogLikelihoods(model, questions, rowsPerForward: 1)
        for (q, (a, b)) in zip(questions, zip(together, oneByOne)) {
            for (i, choice) in q.choices.enumerated() {
                let full = reference(model, q.context + choice)
                let expected = full.suffix(choice.count).reduce(0, +)
                #expect(abs(a[i] - expected) < 1e-4)
                #expect(abs(a[i] - b[i]) < 1e-5)
            }
        }
    }

    /// A one-token choice that is the model's argmax after the context is, by construction, the most likely.
    @Test func theModelsMostLikelyNextTokenWinsAmongOneTokenChoices() {
        let model = randomModel(config, seed: 13)
        let context = [3, 14, 15, 9, 26]
        var cache = KVCache(config: config, capacity: 8)
        let logits = model.forward(context, cache: &cache)
        let best = logits.indices.max { logits[$0] < logits[$1] }!
        let others = (0..<config.vocabSize).filter { $0 != best }.prefix(4).map { [$0] }
        let choices = Array(others.prefix(2)) + [[best]] + Array(others.suffix(2))
        let ll = Scoring.choiceLogLikelihoods(model, [ChoiceQuestionTokens(context: context, choices: choices)])[0]
        #expect(Scoring.picks(logLikelihoods: ll, byteLengths: Array(repeating: 3, count: 5)).plain == 2)
    }

    @Test func lengthNormalizationDividesByBytes() {
        // Choice 0 is likelier in total, choice 1 per byte (its text is long).
        let picks = Scoring.picks(logLikelihoods: [-4, -6, -9], byteLengths: [2, 12, 6])
        #expect(picks.plain == 0 && picks.normalized == 1)
        // Ties go to the lower index.
        let tie = Scoring.picks(logLikelihoods: [-1, -1], byteLengths: [1, 1])
        #expect(tie.plain == 0 && tie.normalized == 0)
    }

    @Test func maskedTokenLossMatchesMeanNLL() {
        let model = randomModel(config, seed: 14)
        let seqs = [[1, 2, 3, 4, 5, 6], [7, 8, 9], [10, 11, 12, 13]]
        let runs = seqs.map { s in ScoringBatch.Run(tokens: s, targets: Array(s.dropFirst()) + [nil]) }
        let loss = Scoring.tokenLoss(model, runs, rowsPerForward: 7)
        #expect(loss.count == 5 + 2 + 3)
        let expected = seqs.reduce(0.0) { $0 + model.meanNLL($1) * Double($1.count - 1) }
        #expect(abs(loss.sum - expected) < 1e-3)
    }
}
