import QLoRACore

/// A frozen linear weight `[out, in]` (HF layout): fp32, or 4-bit as bitsandbytes stores it.
///
/// The model uploads it to its backend (`LlamaModel.init`) and computes through `Linear` (Linear.swift).
public enum LinearWeight: Sendable, Equatable {
    case dense([Float])
    case fourBit(FourBitTensor)

    public var isQuantized: Bool { if case .fourBit = self { return true } else { return false } }

    /// Number of weight elements.
    public var count: Int {
        switch self {
        case .dense(let w): return w.count
        case .fourBit(let t): return t.count
        }
    }

    /// Bytes held in memory.
    public var bytes: Int {
        switch self {
        case .dense(let w): return 4 * w.count
        case .fourBit(let t): return t.storageBytes
        }
    }

    /// fp32 values (dequantizing a 4-bit weight; for exports and tests, not the hot path).
    public var floats: [Float] {
        switch self {
        case .dense(let w): return w
        case .fourBit(let t): return FourBitQuantizer.dequantizeReference(t)
        }
    }
}
