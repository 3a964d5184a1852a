import CQLoRAKernels
import QLoRACore

/// An exact compact copy of an fp32 matrix `[rows, cols]` whose every block of 32 consecutive row elements is
/// `d · q` with one float32 `d` and int8 `q` (so `fl32(d · q)` IS the stored fp32 value, no rounding): what a
/// GGUF Q8_0 tensor dequantizes to. Decoding reads the LM head (SmolLM2 ties it to its Q8_0 embedding:
/// 49152 × 576) from this copy, 1.125 bytes per weight instead of 4, with the same weight values.
public struct BlockInt8Matrix: Sendable {
    public let rows: Int, cols: Int
    let q: [Int8]
    let d: [Float]

    /// The exact copy of `w`, or nil when some block is not of that form (e.g. weights that came from bf16 or
    /// fp32 files) or `cols` is not a multiple of 32. Per block `d = max|v| / 127` (exact for Q8_0 data: the
    /// largest element has |q| = 127); every element must then satisfy `v == d · round(v / d)`.
    public static func exact(_ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int) -> BlockInt8Matrix? {
        guard cols > 0, cols % 32 == 0, w.count == rows * cols else { return nil }
        let blocks = w.count / 32
        var q = [Int8](repeating: 0, count: w.count), d = [Float](repeating: 0, count: blocks)
        let ok = q.withUnsafeMutableBufferPointer { qb in
            d.withUnsafeMutableBufferPointer { db in
                for b in 0..<blocks {
                    var amax: Float = 0
                    for i in 0..<32 { amax = max(amax, abs(w[32 * b + i])) }
                    guard amax.isFinite else { return false }
                    let scale = amax / 127
                    db[b] = scale
                    for i in 0..<32 {
                        let v = w[32 * b + i]
                        let code = scale == 0 ? 0 : (v / scale).rounded()
                        guard abs(code) <= 127, scale * code == v else { return false }
                        qb[32 * b + i] = Int8(code)
                    }
                }
                return true
            }
        }
        return ok ? BlockInt8Matrix(rows: rows, cols: cols, q: q, d: d) : nil
    }

    /// Bytes held (codes and scales).
    public var bytes: Int { q.count + 4 * d.count }

    /// `y[rows] = W · x[cols]` (rows split between threads; each row's sum in the fixed order of qlk_gemv_i8).
    public func gemv(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, threads: Int, pool: WorkerPool? = nil,
                     path: KernelPath = .detected) {
        let parts = max(1, min(threads, rows * cols / FourBitKernels.gemvWeightsPerThread))
        q.withUnsafeBufferPointer { qb in
            d.withUnsafeBufferPointer { db in
                let qp = qb.baseAddress!, dp = db.baseAddress!
                FourBitKernels.forEachRange(rows, parts: parts, pool: pool) { r in
                    qlk_gemv_i8(qp, dp, Int64(cols), x, y, Int64(r.lowerBound), Int64(r.upperBound), path.code)
                }
            }
        }
    }
}
