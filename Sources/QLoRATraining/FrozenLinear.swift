import QLoRACore

/// A frozen base linear weight `W[out, in]` as training uses it: `y = x·Wᵀ` forward and `dx = dy·W` backward
/// (the base is frozen, so `dW` is never formed).
///
/// The signatures are those of `QLoRAModel.LinearWeight` (fp32 or 4-bit), which conforms as soon as it exists;
/// until then `DenseLinear` wraps fp32 weights.
public protocol FrozenLinear: Sendable {
    /// `y[rows, out] = x[rows, in] · Wᵀ` (adds to `y` with `accumulate`).
    func forward(_ x: UnsafePointer<Float>, rows: Int, out: Int, in inFeatures: Int, into y: UnsafeMutablePointer<Float>,
                 accumulate: Bool, backend: any Backend)

    /// `dx[rows, in] = dy[rows, out] · W` (adds to `dx` with `accumulate`).
    func backwardInput(_ dy: UnsafePointer<Float>, rows: Int, out: Int, in inFeatures: Int,
                       into dx: UnsafeMutablePointer<Float>, accumulate: Bool, backend: any Backend)
}

/// An fp32 frozen weight in HF layout `[out, in]`.
public struct DenseLinear: FrozenLinear {
    public let values: [Float]

    public init(_ values: [Float]) { self.values = values }

    public func forward(_ x: UnsafePointer<Float>, rows: Int, out: Int, in inFeatures: Int, into y: UnsafeMutablePointer<Float>,
                        accumulate: Bool, backend: any Backend) {
        precondition(values.count == out * inFeatures, "weight has \(values.count) values, expected \(out)×\(inFeatures)")
        backend.matmulTransposed(x, values, y, m: rows, n: out, k: inFeatures, accumulate: accumulate)
    }

    public func backwardInput(_ dy: UnsafePointer<Float>, rows: Int, out: Int, in inFeatures: Int,
                              into dx: UnsafeMutablePointer<Float>, accumulate: Bool, backend: any Backend) {
        precondition(values.count == out * inFeatures, "weight has \(values.count) values, expected \(out)×\(inFeatures)")
        backend.matmul(dy, values, dx, m: rows, n: inFeatures, k: out, accumulate: accumulate)
    }
}
