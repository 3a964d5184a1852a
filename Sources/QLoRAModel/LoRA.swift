import Foundation
import QLoRACore
import QLoRAModel

/// LoRA hyperparameters (spec lora-and-peft-format §1; PEFT `LoraConfig` names).
public struct LoRAConfig: Sendable, Equatable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    public var useRSLoRA: Bool
    public var targets: [Projection]

    public init(rank: Int, alpha: Double, dropout: Double = 0, useRSLoRA: Bool = false, targets: [Projection] = Projection.allCases) {
        precondition(rank > 0, "LoRA rank must be positive")
        precondition(dropout >= 0 && dropout < 1, "lora_dropout must be in [0, 1)")
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.useRSLoRA = useRSLoRA
        self.targets = Projection.allCases.filter(targets.contains)
    }

    /// `alpha / r`, or `alpha / sqrt(r)` with rsLoRA; Float as PEFT's fp32 layers multiply by it.
    public var scaling: Float { Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)) }
}

/// One adapter pair: `A[r, in]`, `B[out, r]` (row-major, PEFT layout). Also used for their gradients.
public struct LoRAAdapter: Sendable, Equatable {
    public let rank: Int, inFeatures: Int, outFeatures: Int
    public var a: [Float]
    public var b: [Float]

    public init(rank: Int, inFeatures: Int, outFeatures: Int, a: [Float], b: [Float]) {
        precondition(a.count == rank * inFeatures && b.count == outFeatures * rank, "adapter shapes do not match")
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.a = a
        self.b = b
    }

    public static func zeros(rank: Int, inFeatures: Int, outFeatures: Int) -> LoRAAdapter {
        LoRAAdapter(rank: rank, inFeatures: inFeatures, outFeatures: outFeatures,
                    a: [Float](repeating: 0, count: rank * inFeatures), b: [Float](repeating: 0, count: outFeatures * rank))
    }
}

/// The adapters of a whole model: `layers[i][projection]`, present for the configured targets.
/// The same type holds the parameters and their gradients.
public struct LoRAWeights: Sendable, Equatable {
    public var layers: [[Projection: LoRAAdapter]]

    public init(layers: [[Projection: LoRAAdapter]]) { self.layers = layers }

    /// All zeros, shaped for `config` and `lora` (gradient accumulators start here).
    public static func zeros(_ config: LlamaConfig, _ lora: LoRAConfig) -> LoRAWeights {
        LoRAWeights(layers: (0..<config.layers).map { _ in
            Dictionary(uniqueKeysWithValues: lora.targets.map { p in
                let s = p.shape(config)
                return (p, LoRAAdapter.zeros(rank: lora.rank, inFeatures: s.in, outFeatures: s.out))
            })
        })
    }

    /// PEFT's default init (`init_lora_weights = true`): `A ~ U(−1/√in, 1/√in)` (kaiming-uniform with a = √5),
    /// `B = 0`, so the adapted model starts as the base model. Draws come from `rng` in layer, then
    /// projection order (the values differ from PyTorch's generator; the distribution is the same).
    public static func peftInit(_ config: LlamaConfig, _ lora: LoRAConfig, rng: inout SeededGenerator) -> LoRAWeights {
        var w = zeros(config, lora)
        for i in w.layers.indices {
            for p in lora.targets {
                let bound = 1 / Float(p.shape(config).in).squareRoot()
                w.layers[i][p]!.a = w.layers[i][p]!.a.map { _ in
                    (Float(rng.next() >> 40) / Float(1 << 24) * 2 - 1) * bound
                }
            }
        }
        return w
    }

    /// Every tensor in a fixed order (layer, projection in `Projection.allCases` order, then A before B) with
    /// its PEFT adapter key (`base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight`) and shape.
    /// Optimizer state and checkpoints follow this order.
    public var tensorNames: [(name: String, layer: Int, projection: Projection, isA: Bool, shape: [Int])] {
        var out: [(String, Int, Projection, Bool, [Int])] = []
        for (i, layer) in layers.enumerated() {
            for p in Projection.allCases {
                guard let ad = layer[p] else { continue }
                out.append((Self.peftKey(layer: i, projection: p, isA: true), i, p, true, [ad.rank, ad.inFeatures]))
                out.append((Self.peftKey(layer: i, projection: p, isA: false), i, p, false, [ad.outFeatures, ad.rank]))
            }
        }
        return out
    }

    public static func peftKey(layer: Int, projection: Projection, isA: Bool) -> String {
        "base_model.model.model.layers.\(layer).\(projection.modulePath).lora_\(isA ? "A" : "B").weight"
    }

    /// Calls `body` on every tensor's values in `tensorNames` order.
    public mutating func forEachTensor(_ body: (inout [Float]) -> Void) {
        for i in layers.indices {
            for p in Projection.allCases where layers[i][p] != nil {
                body(&layers[i][p]!.a)
                body(&layers[i][p]!.b)
            }
        }
    }

    /// The tensors' values in `tensorNames` order.
    public var tensors: [[Float]] {
        var out: [[Float]] = []
        for layer in layers {
            for p in Projection.allCases {
                guard let ad = layer[p] else { continue }
                out.append(ad.a)
                out.append(ad.b)
            }
        }
        return out
    }

    /// Number of trainable parameters.
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.count } }
}

extension LoRAWeights {
    /// These adapters as inference deltas for `LlamaModel.withAdapter` (`scale` = `lora.scaling`).
    public func lowRank(_ lora: LoRAConfig, source: String = "<memory>") -> LlamaAdapter {
        LlamaAdapter(layers: layers.map { layer in
            layer.mapValues { ad in
                LowRankDelta(rank: ad.rank, inFeatures: ad.inFeatures, outFeatures: ad.outFeatures, a: ad.a, b: ad.b, scale: lora.scaling)
            }
        }, source: source)
    }
}
