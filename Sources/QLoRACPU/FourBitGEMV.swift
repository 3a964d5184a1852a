import CQLoRAKernels
import QLoRACore

// Decoding (one activation row): y[n] (+)= dequant(W[n, k]) · x[k] straight from the packed codes and block
// scales (qlk_gemv4 in Sources/CQLoRAKernels/gemv4.c), rows split between threads. Where the slab path
// dequantized the whole matrix into fp32 and ran sgemv over it (reading 4 + 0.5 bytes per weight and writing 4),
// this reads 0.5 bytes per weight plus its block's scale. The sum order is fixed per row (gemv4.c), so the
// result is the same for every thread count and on both kernel paths; it differs from sgemv in the last bits.

extension FourBitKernels {
    /// Minimum weights per thread before `gemv` splits rows (a dispatch costs a few microseconds).
    static let gemvWeightsPerThread = 1 << 16

    /// `y[n] (+)= dequant(w) · x[k]` for the 2-D tensor `w [n, k]`, rows split across up to `threads` threads.
    /// `pool`, when given, runs the parts on its threads (`threads` then caps the split); else Dispatch does.
    public static func gemv(_ w: FourBitTensor, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, accumulate: Bool,
                            threads: Int, pool: WorkerPool? = nil, path: KernelPath = .detected) {
        let (n, k) = w.matrixShape
        guard n > 0 else { return }
        let parts = max(1, min(threads, n * k / gemvWeightsPerThread))
        withDescriptor(w) { desc in
            forEachRange(n, parts: parts, pool: pool) { rows in
                qlk_gemv4(desc, x, y, Int64(rows.lowerBound), Int64(rows.upperBound), accumulate ? 1 : 0, path.code)
            }
        }
    }

    /// Several GEMVs in one parallel region (decoding's q/k/v or gate/up projections of one input): `ys[i] (+)=
    /// dequant(ws[i]) · xs[i]`, the rows of all of them split between the threads together, so a step pays one
    /// thread dispatch instead of one per matrix. Each output row is the same as `gemv` computes.
    public static func gemv(_ ws: [FourBitTensor], _ xs: [UnsafePointer<Float>], _ ys: [UnsafeMutablePointer<Float>],
                            accumulate: Bool, threads: Int, pool: WorkerPool? = nil, path: KernelPath = .detected) {
        precondition(ws.count == xs.count && ws.count == ys.count)
        let rows = ws.map { $0.matrixShape.rows }
        let total = rows.reduce(0, +), weights = ws.reduce(0) { $0 + $1.count }
        guard total > 0 else { return }
        let parts = max(1, min(threads, weights / gemvWeightsPerThread))
        withDescriptors(ws[...], []) { descs in
            descs.withUnsafeBufferPointer { d in
                forEachRange(total, parts: parts, pool: pool) { range in
                    // The part's rows, matrix by matrix (rows numbered through the matrices in order).
                    var first = 0
                    for i in 0..<rows.count {
                        let lo = max(range.lowerBound, first) - first, hi = min(range.upperBound, first + rows[i]) - first
                        if lo < hi { qlk_gemv4(d.baseAddress! + i, xs[i], ys[i], Int64(lo), Int64(hi), accumulate ? 1 : 0, path.code) }
                        first += rows[i]
                    }
                }
            }
        }
    }

    /// `Parallel.forEachRange`, on `pool`'s threads when there is one.
    static func forEachRange(_ count: Int, parts: Int, pool: WorkerPool?, _ body: (Range<Int>) -> Void) {
        if let pool { pool.forEachRange(count, parts: parts, body) } else { Parallel.forEachRange(count, parts: parts, body) }
    }

    private static func withDescriptors<R>(_ ws: ArraySlice<FourBitTensor>, _ done: [qlk_fourbit], _ body: ([qlk_fourbit]) -> R) -> R {
        guard let w = ws.first else { return body(done) }
        return withDescriptor(w) { withDescriptors(ws.dropFirst(), done + [$0.pointee], body) }
    }

    /// Runs `body` with the kernel's view of `w` (pointers valid only inside `body`).
    static func withDescriptor<R>(_ w: FourBitTensor, _ body: (UnsafePointer<qlk_fourbit>) -> R) -> R {
        let (n, k) = w.matrixShape
        let book = w.type.codebook
        return w.packed.withUnsafeBufferPointer { packed in
            book.withUnsafeBufferPointer { cb in
                var desc = qlk_fourbit(packed: packed.baseAddress, codebook: cb.baseAddress, scales: nil, nested_codes: nil,
                                       nested_absmax: nil, nested_map: nil, nested_offset: 0, nested_blocksize: 1,
                                       blocksize: Int64(w.blocksize), rows: Int64(n), cols: Int64(k))
                switch w.scales {
                case .plain(let absmax):
                    return absmax.withUnsafeBufferPointer { s in
                        desc.scales = s.baseAddress
                        return withUnsafePointer(to: desc, body)
                    }
                case .nested(let nested):
                    return nested.codes.withUnsafeBufferPointer { codes in
                        nested.absmax.withUnsafeBufferPointer { absmax in
                            nested.map.withUnsafeBufferPointer { map in
                                desc.nested_codes = codes.baseAddress
                                desc.nested_absmax = absmax.baseAddress
                                desc.nested_map = map.baseAddress
                                desc.nested_offset = nested.offset
                                desc.nested_blocksize = Int64(nested.blocksize)
                                return withUnsafePointer(to: desc, body)
                            }
                        }
                    }
                }
            }
        }
    }
}
