import Foundation
import QLoRACore
import QLoRAFormats

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

/// One projection's LoRA pair (LoRA, Hu et al. 2021; spec lora-and-peft-format §1): `A [r, in]`, `B [out, r]`
/// (row-major, PEFT layout). The same type holds training's parameters, their gradients (same shapes), the
/// deltas inference applies and what merging adds; the scale `s` (`LoRAConfig.scaling`) is the adapter's,
/// passed in where it is used.
public struct LoRAPair: Sendable, Equatable {
    public let rank: Int, inFeatures: Int, outFeatures: Int
    /// `[r, in]`
    public var a: [Float]
    /// `[out, r]`
    public var b: [Float]

    public init(rank: Int, inFeatures: Int, outFeatures: Int, a: [Float], b: [Float]) {
        precondition(rank > 0 && a.count == rank * inFeatures && b.count == outFeatures * rank,
                     "LoRA pair: A has \(a.count) values, B \(b.count), for rank \(rank), \(inFeatures) in, \(outFeatures) out")
        self.rank = rank
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.a = a
        self.b = b
    }

    public static func zeros(rank: Int, inFeatures: Int, outFeatures: Int) -> LoRAPair {
        LoRAPair(rank: rank, inFeatures: inFeatures, outFeatures: outFeatures,
                 a: [Float](repeating: 0, count: rank * inFeatures), b: [Float](repeating: 0, count: outFeatures * rank))
    }

    /// `W' = W + s·B·A` (`weight` is `[out, in]` row-major), as PEFT's `get_delta_weight` + merge computes it:
    /// `B·A` in fp32, then scaled by `s` and added.
    public func merge(scale s: Float, into weight: inout [Float]) {
        precondition(weight.count == outFeatures * inFeatures, "weight and LoRA pair shapes differ")
        let out = outFeatures, n = inFeatures, r = rank
        var delta = [Float](repeating: 0, count: n)
        for i in 0..<out {
            for j in 0..<n { delta[j] = 0 }
            for k in 0..<r {
                let bk = b[i * r + k]
                if bk == 0 { continue }
                a.withUnsafeBufferPointer { a in
                    let row = a.baseAddress! + k * n
                    for j in 0..<n { delta[j] += bk * row[j] }
                }
            }
            weight.withUnsafeMutableBufferPointer { w in
                let row = w.baseAddress! + i * n
                for j in 0..<n { row[j] += s * delta[j] }
            }
        }
    }
}

/// The adapters of a whole model: `layers[i][projection]`, present for the configured targets.
/// The same type holds the parameters and their gradients.
public struct LoRAWeights: Sendable, Equatable {
    public var layers: [[Projection: LoRAPair]]

    public init(layers: [[Projection: LoRAPair]]) { self.layers = layers }

    /// All zeros, shaped for `config` and `lora` (gradient accumulators start here).
    public static func zeros(_ config: LlamaConfig, _ lora: LoRAConfig) -> LoRAWeights {
        LoRAWeights(layers: (0..<config.layers).map { _ in
            Dictionary(uniqueKeysWithValues: lora.targets.map { p in
                let s = p.shape(config)
                return (p, LoRAPair.zeros(rank: lora.rank, inFeatures: s.in, outFeatures: s.out))
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

    /// The PEFT tensor key of one side of one pair (`PEFTAdapterFormat.key`).
    public static func peftKey(layer: Int, projection: Projection, isA: Bool) -> String {
        PEFTAdapterFormat.key(layer: layer, module: projection.rawValue, isA: isA)
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
    /// The projections adapted in at least one layer, in `Projection.allCases` order.
    public var targets: [Projection] {
        Projection.allCases.filter { p in layers.contains { $0[p] != nil } }
    }

    /// Checks the layer count and every pair's shape against `config`; errors name `source`, the layer and
    /// the projection.
    public func validate(for config: LlamaConfig, source: String) throws {
        guard layers.count == config.layers else {
            throw ModelError(file: source, "the adapter has \(layers.count) layers, the model \(config.layers)")
        }
        for (i, layer) in layers.enumerated() {
            for p in Projection.allCases {
                guard let d = layer[p] else { continue }
                let s = p.shape(config)
                guard d.inFeatures == s.in, d.outFeatures == s.out else {
                    throw ModelError(file: source, "layer \(i) \(p.rawValue): the adapter maps \(d.inFeatures) → \(d.outFeatures) features, the model's projection \(s.in) → \(s.out)")
                }
            }
        }
    }
}
