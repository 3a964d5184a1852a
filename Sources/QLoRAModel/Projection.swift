import QLoRAFormats

/// The seven linear projections of a LLaMA block, in PEFT `target_modules` naming.
public enum Projection: String, CaseIterable, Sendable, Codable {
    case q = "q_proj", k = "k_proj", v = "v_proj", o = "o_proj", gate = "gate_proj", up = "up_proj", down = "down_proj"

    /// The module path inside a decoder layer (`self_attn.q_proj`, `mlp.gate_proj`).
    public var modulePath: String { PEFTAdapterFormat.modulePath(rawValue) }

    /// `(out, in)` of the projection's weight for a model config.
    public func shape(_ c: LlamaConfig) -> (out: Int, in: Int) {
        let h = c.hiddenSize, q = c.heads * c.headDim, kv = c.kvHeads * c.headDim, f = c.intermediateSize
        switch self {
        case .q: return (q, h)
        case .k, .v: return (kv, h)
        case .o: return (h, q)
        case .gate, .up: return (f, h)
        case .down: return (h, f)
        }
    }

    /// Position in `Projection.allCases`.
    public var index: Int {
        switch self {
        case .q: return 0
        case .k: return 1
        case .v: return 2
        case .o: return 3
        case .gate: return 4
        case .up: return 5
        case .down: return 6
        }
    }
}

extension LlamaWeights.Layer {
    /// The frozen weight of one projection.
    public func weight(_ p: Projection) -> LinearWeight {
        switch p {
        case .q: return wq
        case .k: return wk
        case .v: return wv
        case .o: return wo
        case .gate: return wGate
        case .up: return wUp
        case .down: return wDown
        }
    }
}
