import Foundation
import QLoRACore

/// Token generation with a KV cache: greedy when `temperature == 0`, else temperature + top-p (nucleus)
/// sampling from a seeded generator. Stops at any stop token or after `maxNewTokens`.
public struct Generator {
    public struct Parameters: Sendable {
        public var maxNewTokens: Int
        public var temperature: Double
        public var topP: Double
        public var seed: UInt64
        public var stopTokens: Set<Int>

        public init(maxNewTokens: Int = 128, temperature: Double = 0, topP: Double = 1, seed: UInt64 = 0, stopTokens: Set<Int> = []) {
            self.maxNewTokens = maxNewTokens
            self.temperature = temperature
            self.topP = topP
            self.seed = seed
            self.stopTokens = stopTokens
        }
    }

    public let model: LlamaModel

    public init(model: LlamaModel) { self.model = model }

    /// Generates after `prompt`; `onToken` sees each new id as it is produced (for streaming).
    /// Returns the new ids (including a final stop token, if one was produced).
    public func generate(prompt: [Int], _ p: Parameters, onToken: (Int) -> Void = { _ in }) -> [Int] {
        var rng = SeededGenerator(seed: p.seed)
        let capacity = min(model.config.maxPositions, prompt.count + p.maxNewTokens)
        var cache = KVCache(config: model.config, capacity: max(capacity, prompt.count + 1))
        var logits = model.forward(prompt, cache: &cache)
        var out: [Int] = []
        while out.count < p.maxNewTokens {
            let next = Self.sample(logits, temperature: p.temperature, topP: p.topP, rng: &rng)
            out.append(next)
            onToken(next)
            if p.stopTokens.contains(next) || cache.length >= cache.capacity { break }
            logits = model.forward([next], cache: &cache)
        }
        return out
    }

    static func sample(_ logits: [Float], temperature: Double, topP: Double, rng: inout SeededGenerator) -> Int {
        if temperature <= 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return best
        }
        let m = Double(logits.max()!)
        var probs = logits.enumerated().map { ($0.offset, Foundation.exp((Double($0.element) - m) / temperature)) }
        let total = probs.reduce(0) { $0 + $1.1 }
        probs.sort { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
        var kept: [(Int, Double)] = []
        var mass = 0.0
        for (id, pr) in probs {
            kept.append((id, pr / total))
            mass += pr / total
            if mass >= topP { break }
        }
        let r = Double(rng.next() >> 11) / Double(1 << 53) * mass
        var acc = 0.0
        for (id, pr) in kept {
            acc += pr
            if r < acc { return id }
        }
        return kept.last!.0
    }
}
