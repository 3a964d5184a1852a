import QLoRACore

/// A frozen linear weight `[out, in]` (HF layout): fp32, or 4-bit as bitsandbytes stores it.
///
/// `forward` is `y = x · Wᵀ`, `backwardInput` is `dx = dy · W` (gradients flow through a frozen base
/// weight to its input only). The 4-bit form is dequantized slab by slab inside the backend, never whole.
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

    /// `y[rows, out] = x[rows, in] · Wᵀ` (adds to `y` with `accumulate`).
    public func forward(_ x: UnsafePointer<Float>, rows: Int, out: Int, in inFeatures: Int, into y: UnsafeMutablePointer<Float>,
                        accumulate: Bool, backend: any Backend) {
        switch self {
        case .dense(let w):
            w.withUnsafeBufferPointer {
                backend.matmulTransposed(x, $0.baseAddress!, y, m: rows, n: out, k: inFeatures, accumulate: accumulate)
            }
        case .fourBit(let t):
            backend.linear(x, t, y, rows: rows, accumulate: accumulate)
        }
    }

    /// `dx[rows, in] = dy[rows, out] · W` (adds to `dx` with `accumulate`).
    public func backwardInput(_ dy: UnsafePointer<Float>, rows: Int, out: Int, in inFeatures: Int,
                              into dx: UnsafeMutablePointer<Float>, accumulate: Bool, backend: any Backend) {
        switch self {
        case .dense(let w):
            w.withUnsafeBufferPointer {
                backend.matmul(dy, $0.baseAddress!, dx, m: rows, n: inFeatures, k: out, accumulate: accumulate)
            }
        case .fourBit(let t):
            backend.linearBackwardInput(dy, t, dx, rows: rows, accumulate: accumulate)
        }
    }
}
