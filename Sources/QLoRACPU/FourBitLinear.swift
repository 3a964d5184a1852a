import COpenBLAS
import Foundation
import CQLoRAKernels
import QLoRACore

// Legend: x [m, k] activations, w [n, k] 4-bit weight (HF `[out, in]`), y [m, n].
//
// The 4-bit linear never dequantizes the whole matrix: it walks the weight in slabs of about 2 MiB,
// dequantizes a slab with the SIMD kernel (`qlk_dequant4`, bit-identical to the scalar
// reference), and feeds it to sgemm. One row (decoding) goes to the fused GEMV instead (FourBitGEMV.swift),
// which never writes dequantized weights at all.
//   forward   y[:, n0..<n1]  = x · slab(rows n0..<n1)ᵀ                     (slab = tn rows × k)
//   backward  dx[:, k0..<k1] = dy · slab(all n rows, columns k0..<k1)     (slab = n × kc, full reduction over n)
// Each output element is one sgemm dot product over the full reduction, as with a dense weight.

extension CPUBackend {
    /// Target slab size in floats (2 MiB). Measured with `qlora bench nf4` on SmolLM2's shapes at 1024 tokens
    /// (2-core EPYC): 256 K floats gave 1.11×/1.16× the fp32 sgemm time (forward/backward), 512 K 1.06×/1.07×,
    /// 64 K 1.26×/1.32× (narrow slabs make narrow, inefficient sgemm calls).
    static let slabFloats = 512 * 1024

    public func linear(_ x: UnsafePointer<Float>, _ w: FourBitTensor, _ y: UnsafeMutablePointer<Float>, rows m: Int,
                       accumulate: Bool) {
        let (n, k) = w.matrixShape
        guard m > 0, n > 0, k > 0 else { return }
        if m == 1 {
            // Decoding: the fused 4-bit GEMV (FourBitGEMV.swift) reads codes and scales in place.
            FourBitKernels.gemv(w, x, y, accumulate: accumulate, threads: threads, pool: pool, path: kernels)
            return
        }
        let scales = w.scales(ofBlocks: 0..<w.blockCount)
        let tileRows = max(16, min(n, Self.slabFloats / k) / 16 * 16)
        let slab = ScratchPool.shared.take(tileRows * k)
        defer { ScratchPool.shared.give(slab, tileRows * k) }
        let book = w.type.codebook
        var n0 = 0
        while n0 < n {
            let tn = min(tileRows, n - n0)
            FourBitKernels.dequantizeRows(w, scales: scales, codebook: book, rows: n0..<(n0 + tn), columns: 0..<k,
                                          into: slab, threads: threads, path: kernels)
            cblas_sgemm(Int32(QLoRACBLASRowMajor.rawValue), Int32(QLoRACBLASNoTrans.rawValue), Int32(QLoRACBLASTrans.rawValue),
                        Int32(m), Int32(tn), Int32(k), 1, x, Int32(k), slab, Int32(k), accumulate ? 1 : 0, y + n0, Int32(n))
            n0 += tn
        }
    }

    public func linearBackwardInput(_ dy: UnsafePointer<Float>, _ w: FourBitTensor, _ dx: UnsafeMutablePointer<Float>, rows m: Int,
                                    accumulate: Bool) {
        let (n, k) = w.matrixShape
        guard m > 0, n > 0, k > 0 else { return }
        let scales = w.scales(ofBlocks: 0..<w.blockCount)
        let slabColumns = max(16, min(k, Self.slabFloats / n) / 16 * 16)
        let slab = ScratchPool.shared.take(n * slabColumns)
        defer { ScratchPool.shared.give(slab, n * slabColumns) }
        let book = w.type.codebook
        var k0 = 0
        while k0 < k {
            let kc = min(slabColumns, k - k0)
            FourBitKernels.dequantizeRows(w, scales: scales, codebook: book, rows: 0..<n, columns: k0..<(k0 + kc),
                                          into: slab, threads: threads, path: kernels)
            cblas_sgemm(Int32(QLoRACBLASRowMajor.rawValue), Int32(QLoRACBLASNoTrans.rawValue), Int32(QLoRACBLASNoTrans.rawValue),
                        Int32(m), Int32(kc), Int32(n), 1, dy, Int32(n), slab, Int32(kc), accumulate ? 1 : 0, dx + k0, Int32(k))
            k0 += kc
        }
    }
}

/// The SIMD dequantization entry points (bit-identical to `FourBitQuantizer.dequantizeReference`).
public enum FourBitKernels {
    /// Dequantizes the sub-matrix `rows × columns` of the 2-D tensor `w` into `out` (row-major,
    /// `columns.count` floats per row). `scales` holds every block's float32 scale.
    public static func dequantizeRows(_ w: FourBitTensor, scales: [Float], codebook: [Float], rows: Range<Int>,
                                      columns: Range<Int>, into out: UnsafeMutablePointer<Float>, threads: Int,
                                      path: KernelPath = .detected) {
        let k = w.shape.count == 2 ? w.shape[1] : w.count
        let width = columns.count, bs = w.blocksize
        w.packed.withUnsafeBufferPointer { packed in
            scales.withUnsafeBufferPointer { sc in
                codebook.withUnsafeBufferPointer { book in
                    let p = packed.baseAddress!, s = sc.baseAddress!, b = book.baseAddress!
                    let work = { (part: Range<Int>) in
                        for r in part {
                            let start = r * k + columns.lowerBound
                            qlk_dequant4(p, b, s + start / bs, Int64(bs), Int64(start), Int64(width),
                                         out + (r - rows.lowerBound) * width, path.code)
                        }
                    }
                    let parts = rows.count * width >= 32768 ? max(1, threads) : 1
                    Parallel.forEachRange(rows.count, parts: parts) { part in
                        work((rows.lowerBound + part.lowerBound)..<(rows.lowerBound + part.upperBound))
                    }
                }
            }
        }
    }

    /// Dequantizes the whole tensor to float32 (SIMD, threaded).
    public static func dequantize(_ w: FourBitTensor, threads: Int = 1, path: KernelPath = .detected) -> [Float] {
        var out = [Float](repeating: 0, count: w.count)
        let scales = w.scales(ofBlocks: 0..<w.blockCount)
        out.withUnsafeMutableBufferPointer { o in
            if w.shape.count == 2 {
                dequantizeRows(w, scales: scales, codebook: w.type.codebook, rows: 0..<w.shape[0], columns: 0..<w.shape[1],
                               into: o.baseAddress!, threads: threads, path: path)
            } else {
                w.packed.withUnsafeBufferPointer { p in
                    scales.withUnsafeBufferPointer { s in
                        w.type.codebook.withUnsafeBufferPointer { b in
                            qlk_dequant4(p.baseAddress!, b.baseAddress!, s.baseAddress!, Int64(w.blocksize), 0, Int64(w.count),
                                         o.baseAddress!, path.code)
                        }
                    }
                }
            }
        }
        return out
    }

    /// The best SIMD path of this CPU: "avx2" or "scalar".
    public static var path: String { KernelPath.detected.rawValue }
}

/// Which SIMD path the CPU backend's kernels (Sources/CQLoRAKernels) take. Every path gives the same bits; the
/// choice is the backend's (`CPUBackend(kernels:)`), passed to each kernel call, never a process-wide switch.
public enum KernelPath: String, Sendable, CaseIterable {
    /// Portable C.
    case scalar
    /// AVX2 + FMA (x86-64).
    case avx2

    /// The best path this CPU supports.
    public static var detected: KernelPath { qlk_detected_path() == 1 ? .avx2 : .scalar }

    /// The kernels' `path` argument (a path this CPU lacks runs as the detected one).
    var code: Int32 { self == .avx2 ? 1 : 0 }
}

/// Reusable float buffers for slabs: allocating (and page-faulting) 2 MiB per linear call cost more system
/// time than the dequantization itself in short prefills. A few buffers are kept; concurrent callers each get
/// their own.
final class ScratchPool: @unchecked Sendable {
    static let shared = ScratchPool()
    private let lock = NSLock()
    private var free: [(pointer: UnsafeMutablePointer<Float>, capacity: Int)] = []

    func take(_ count: Int) -> UnsafeMutablePointer<Float> {
        lock.lock()
        defer { lock.unlock() }
        if let i = free.firstIndex(where: { $0.capacity == count }) ?? free.indices.last {
            let entry = free.remove(at: i)
            if entry.capacity == count { return entry.pointer }
            entry.pointer.deallocate()
        }
        return UnsafeMutablePointer<Float>.allocate(capacity: count)
    }

    func give(_ pointer: UnsafeMutablePointer<Float>, _ count: Int) {
        lock.lock()
        defer { lock.unlock() }
        if free.count < 8 {
            free.append((pointer, count))
        } else {
            pointer.deallocate()
        }
    }
}
