import Foundation
import QLoRACore
import QLoRAFormats
import QLoRATokenizer

struct EncodedExample: Sendable {
    var id: String
    var ids: [UInt32]
    var labels: [Bool]
}

/// The inference-parity record of `parity.json`.
struct Parity: Encodable {
    var exampleID: String
    var promptTokens: Int
    var prefixConsistent: Bool
    var firstMismatch: Int?
    var prompt: String

    enum CodingKeys: String, CodingKey {
        case exampleID = "example_id", promptTokens = "prompt_tokens", prefixConsistent = "prefix_consistent"
        case firstMismatch = "first_mismatch", prompt
    }
}

/// Turns examples into ids and labels (see `TokenizeStage` for the rules).
struct ExampleEncoder: Sendable {
    let tokenizer: Tokenizer
    let formatter: ChatFormatter
    let eos: Int?
    let trainOnInputs: Bool

    func encode(_ example: Example) throws -> EncodedExample {
        var parts: [(ids: [Int], trained: Bool)] = []
        let specials = tokenizer.encode("", addSpecialTokens: true)
        switch example.content {
        case .messages(let messages):
            for (text, trained) in try formatter.segments(messages) {
                parts.append((tokenizer.encode(text, addSpecialTokens: false), trained))
            }
        case .completion(let prompt, let completion):
            parts.append((specials + tokenizer.encode(prompt, addSpecialTokens: false), false))
            parts.append((tokenizer.encode(completion, addSpecialTokens: false), true))
        case .text(let text):
            if !specials.isEmpty { parts.append((specials, false)) }
            parts.append((tokenizer.encode(text, addSpecialTokens: false), true))
        }
        var ids: [UInt32] = [], labels: [Bool] = []
        for (i, part) in parts.enumerated() {
            var partIDs = part.ids
            // Every response ends with EOS, so the model learns to stop.
            if part.trained, let eos, !partIDs.contains(eos), !(i + 1 < parts.count && parts[i + 1].ids.first == eos) {
                partIDs.append(eos)
            }
            ids += partIDs.map { UInt32($0) }
            labels += Array(repeating: part.trained || trainOnInputs, count: partIDs.count)
        }
        return EncodedExample(id: example.id, ids: ids, labels: labels)
    }

    /// Encodes on all cores, in order; `progress` gets the number done so far.
    func encodeAll(_ examples: [Example], progress: (Int) -> Void) throws -> [EncodedExample] {
        final class Results: @unchecked Sendable {
            var items: [EncodedExample?]
            var failure: (index: Int, error: any Error)?
            let lock = NSLock()
            init(_ n: Int) { items = Array(repeating: nil, count: n) }
        }
        let results = Results(examples.count)
        let step = 256 * max(1, ProcessInfo.processInfo.activeProcessorCount)
        var start = 0
        while start < examples.count {
            let slice = start..<min(examples.count, start + step)
            Parallel.forEachChunk(slice.count, chunk: 1, threads: ProcessInfo.processInfo.activeProcessorCount) { ks in
                for k in ks {
                    let i = slice.lowerBound + k
                    do {
                        let e = try encode(examples[i])
                        results.lock.lock()
                        results.items[i] = e
                        results.lock.unlock()
                    } catch {
                        results.lock.lock()
                        if results.failure.map({ i < $0.index }) ?? true { results.failure = (i, error) }
                        results.lock.unlock()
                    }
                }
            }
            start = slice.upperBound
            progress(start)
        }
        if let (i, error) = results.failure {
            throw StageFailure("example \(examples[i].id) (\(examples[i].source)): \(error)")
        }
        return results.items.map { $0! }
    }

    /// Renders `example` for inference (everything before its last assistant message, with the
    /// generation prompt) and checks that the training ids begin with exactly those ids.
    func parity(_ example: Example) throws -> Parity {
        guard case .messages(let messages) = example.content, let last = messages.lastIndex(where: { $0.role == .assistant }) else {
            preconditionFailure("parity needs a chat example")
        }
        let prompt = try formatter.render(Array(messages[..<last]), addGenerationPrompt: true)
        let promptIDs = tokenizer.encode(prompt, addSpecialTokens: false).map { UInt32($0) }
        let training = try encode(example).ids
        let mismatch = zip(promptIDs, training).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            ?? (training.count < promptIDs.count ? training.count : nil)
        return Parity(exampleID: example.id, promptTokens: promptIDs.count, prefixConsistent: mismatch == nil,
                      firstMismatch: mismatch, prompt: prompt)
    }
}

/// Greedy in-order packing: whole documents into sequences of at most `maxLength` tokens.
enum Packer {
    static func pack(_ docs: [EncodedExample], maxLength: Int) -> [TokenFile.Sequence] {
        var out: [TokenFile.Sequence] = []
        var current = TokenFile.Sequence(ids: [], labels: [], documentStarts: [])
        for doc in docs {
            if !current.ids.isEmpty && current.ids.count + doc.ids.count > maxLength {
                out.append(current)
                current = TokenFile.Sequence(ids: [], labels: [], documentStarts: [])
            }
            current.documentStarts.append(current.ids.count)
            current.ids += doc.ids
            current.labels += doc.labels
        }
        if !current.ids.isEmpty { out.append(current) }
        return out
    }
}

/// `tokenize/stats.json`.
struct TokenizeStats: Encodable {
    var formatVersion = 1
    var examples = 0
    var trainExamples = 0
    var evalExamples = 0
    var trainSequences = 0
    var evalSequences = 0
    var tokens = 0
    var trainedTokens = 0
    var dropped = 0
    var truncated = 0
    var truncatedTokens = 0
    var overlength = 0
    var worstID: String?
    var worstLength = 0
    /// Example lengths in tokens, bucketed by powers of two: key = upper bound of the bucket.
    var lengthHistogram: [String: Int] = [:]

    var maskedFraction: Double { tokens == 0 ? 0 : Double(tokens - trainedTokens) / Double(tokens) }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version", examples, trainExamples = "train_examples", evalExamples = "eval_examples"
        case trainSequences = "train_sequences", evalSequences = "eval_sequences", tokens, trainedTokens = "trained_tokens"
        case maskedFraction = "masked_fraction", dropped, truncated, truncatedTokens = "truncated_tokens"
        case overlength, worstID = "longest_example_id", worstLength = "longest_example_tokens"
        case lengthHistogram = "length_histogram"
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(formatVersion, forKey: .formatVersion)
        try c.encode(examples, forKey: .examples)
        try c.encode(trainExamples, forKey: .trainExamples)
        try c.encode(evalExamples, forKey: .evalExamples)
        try c.encode(trainSequences, forKey: .trainSequences)
        try c.encode(evalSequences, forKey: .evalSequences)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(trainedTokens, forKey: .trainedTokens)
        try c.encode((maskedFraction * 1e6).rounded() / 1e6, forKey: .maskedFraction)
        try c.encode(dropped, forKey: .dropped)
        try c.encode(truncated, forKey: .truncated)
        try c.encode(truncatedTokens, forKey: .truncatedTokens)
        try c.encode(overlength, forKey: .overlength)
        try c.encodeIfPresent(worstID, forKey: .worstID)
        try c.encode(worstLength, forKey: .worstLength)
        try c.encode(lengthHistogram, forKey: .lengthHistogram)
    }

    mutating func noteOverlength(id: String, length: Int) {
        overlength += 1
        if length > worstLength {
            worstLength = length
            worstID = id
        }
    }

    mutating func add(_ e: EncodedExample, split: String) {
        if split == "train" { trainExamples += 1 } else { evalExamples += 1 }
        tokens += e.ids.count
        trainedTokens += e.labels.filter { $0 }.count
        var bucket = 8
        while bucket < e.ids.count { bucket *= 2 }
        lengthHistogram["<=\(bucket)", default: 0] += 1
        if e.ids.count > worstLength && overlength == 0 {
            worstLength = e.ids.count
            worstID = e.id
        }
    }
}
