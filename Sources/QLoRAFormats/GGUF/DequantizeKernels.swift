// Block kernels for GGUFDequantizer: one function per ggml type, each turning `blocks` whole blocks at
// `src` into `blocks × blockSize` Float32 values at `dst` (spec/safetensors-and-gguf.md §2.5–§2.6).
//
// Bit-exactness with ggml / gguf-py: everything is computed in Float32 with one rounding per operation,
// in the same order as the references (`d·sc` and `dmin·mn` are formed first, then multiplied by the
// quant; `d·q + m` for Q4_1/Q5_1). Swift never contracts `a * b + c` into a fused multiply-add, so the
// results are the ones numpy produces. The inner loops have fixed trip counts and no data-dependent
// branches, so the optimizer unrolls and vectorizes them.

/// IEEE binary16 bits → Float32, exact for every input. NaN payloads are kept (shifted left by 13, never
/// quieted), as numpy's `float16 → float32` cast does. Branch-free (selects only).
@inline(__always)
func ggufHalfToFloat(_ h: UInt16) -> Float {
    let h32 = UInt32(h)
    let sign = (h32 & 0x8000) << 16
    let magnitude = (h32 & 0x7FFF) << 13
    let exponent = h32 & 0x7C00
    // Normal numbers: rebias the exponent (127 − 15 = 112).
    let normal = magnitude &+ 0x3800_0000
    // Inf and NaN: all-ones exponent, mantissa (payload) kept.
    let special = magnitude | 0x7F80_0000
    // Subnormals (and zero): m·2⁻²⁴, obtained exactly as (2⁻¹⁴·(1 + m/1024)) − 2⁻¹⁴.
    let subnormal = (Float(bitPattern: magnitude &+ 0x3880_0000) - Float(bitPattern: 0x3880_0000)).bitPattern
    let bits = exponent == 0x7C00 ? special : (exponent == 0 ? subnormal : normal)
    return Float(bitPattern: bits | sign)
}

@inline(__always)
private func u8(_ p: UnsafeRawPointer, _ offset: Int) -> UInt8 {
    p.load(fromByteOffset: offset, as: UInt8.self)
}

@inline(__always)
private func halfAt(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    ggufHalfToFloat(UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
}

enum DequantKernels {
    typealias Kernel = @Sendable (UnsafeRawPointer, UnsafeMutablePointer<Float>, Int) -> Void

    // MARK: Plain scalar types (block = 1 element)

    static func f32(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        #if _endian(little)
        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
        #else
        for i in 0..<n {
            dst[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
        }
        #endif
    }

    static func f16(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n {
            dst[i] = ggufHalfToFloat(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
        }
    }

    static func bf16(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n {
            let b = UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            dst[i] = Float(bitPattern: UInt32(b) << 16)
        }
    }

    // MARK: 32-element blocks

    /// Q4_0 (18 B): d@0, qs[16]@2; x[j] = d·(lo−8), x[j+16] = d·(hi−8).
    static func q4_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 18 * b, y = dst + 32 * b
            let d = halfAt(p, 0)
            for j in 0..<16 {
                let q = u8(p, 2 + j)
                y[j] = d * Float(Int32(q & 0xF) - 8)
                y[j + 16] = d * Float(Int32(q >> 4) - 8)
            }
        }
    }

    /// Q4_1 (20 B): d@0, m@2, qs[16]@4; x = d·q + m.
    static func q4_1(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 20 * b, y = dst + 32 * b
            let d = halfAt(p, 0), m = halfAt(p, 2)
            for j in 0..<16 {
                let q = u8(p, 4 + j)
                y[j] = d * Float(q & 0xF) + m
                y[j + 16] = d * Float(q >> 4) + m
            }
        }
    }

    /// Q5_0 (22 B): d@0, qh u32@2, qs[16]@6; bit k of qh is the 5th bit of element k; x = d·(q−16).
    static func q5_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 22 * b, y = dst + 32 * b
            let d = halfAt(p, 0)
            let h = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
            for j in 0..<16 {
                let q = UInt32(u8(p, 6 + j))
                let lo = (q & 0xF) | (((h >> UInt32(j)) & 1) << 4)
                let hi = (q >> 4) | (((h >> UInt32(j + 16)) & 1) << 4)
                y[j] = d * Float(Int32(lo) - 16)
                y[j + 16] = d * Float(Int32(hi) - 16)
            }
        }
    }

    /// Q5_1 (24 B): d@0, m@2, qh u32@4, qs[16]@8; x = d·q + m.
    static func q5_1(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 24 * b, y = dst + 32 * b
            let d = halfAt(p, 0), m = halfAt(p, 2)
            let h = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            for j in 0..<16 {
                let q = UInt32(u8(p, 8 + j))
                let lo = (q & 0xF) | (((h >> UInt32(j)) & 1) << 4)
                let hi = (q >> 4) | (((h >> UInt32(j + 16)) & 1) << 4)
                y[j] = d * Float(lo) + m
                y[j + 16] = d * Float(hi) + m
            }
        }
    }

    /// Q8_0 (34 B): d@0, qs[32] Int8 @2; x = d·q.
    static func q8_0(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 34 * b, y = dst + 32 * b
            let d = halfAt(p, 0)
            for j in 0..<32 {
                y[j] = d * Float(Int8(bitPattern: u8(p, 2 + j)))
            }
        }
    }

    // MARK: K-quants (256-element super-blocks)

    /// `get_scale_min_k4`: the 6-bit scale and min of sub-block `j` (0..<8) from the 12 bytes at `s`.
    @inline(__always)
    private static func scaleMin(_ s: UnsafeRawPointer, _ j: Int) -> (Float, Float) {
        if j < 4 {
            return (Float(u8(s, j) & 63), Float(u8(s, j + 4) & 63))
        }
        let sc = (u8(s, j + 4) & 0xF) | ((u8(s, j - 4) >> 6) << 4)
        let mn = (u8(s, j + 4) >> 4) | ((u8(s, j) >> 6) << 4)
        return (Float(sc), Float(mn))
    }

    /// Q4_K (144 B): d@0, dmin@2, scales[12]@4, qs[128]@16.
    static func q4_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 144 * b, y = dst + 256 * b
            let d = halfAt(p, 0), dmin = halfAt(p, 2)
            let s = p + 4, qs = p + 16
            for c in 0..<4 {
                let (sa, ma) = scaleMin(s, 2 * c), (sb, mb) = scaleMin(s, 2 * c + 1)
                let d1 = d * sa, m1 = dmin * ma, d2 = d * sb, m2 = dmin * mb
                let yc = y + 64 * c
                for l in 0..<32 {
                    let q = u8(qs, 32 * c + l)
                    yc[l] = d1 * Float(q & 0xF) - m1
                    yc[l + 32] = d2 * Float(q >> 4) - m2
                }
            }
        }
    }

    /// Q5_K (176 B): d@0, dmin@2, scales[12]@4, qh[32]@16, qs[128]@48. Bit 2c / 2c+1 of qh[l] adds 16 to
    /// the low / high nibble of chunk c.
    static func q5_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 176 * b, y = dst + 256 * b
            let d = halfAt(p, 0), dmin = halfAt(p, 2)
            let s = p + 4, qh = p + 16, qs = p + 48
            for c in 0..<4 {
                let (sa, ma) = scaleMin(s, 2 * c), (sb, mb) = scaleMin(s, 2 * c + 1)
                let d1 = d * sa, m1 = dmin * ma, d2 = d * sb, m2 = dmin * mb
                let yc = y + 64 * c
                let shiftLo = UInt8(2 * c), shiftHi = UInt8(2 * c + 1)
                for l in 0..<32 {
                    let q = u8(qs, 32 * c + l), h = u8(qh, l)
                    let lo = (q & 0xF) | (((h >> shiftLo) & 1) << 4)
                    let hi = (q >> 4) | (((h >> shiftHi) & 1) << 4)
                    yc[l] = d1 * Float(lo) - m1
                    yc[l + 32] = d2 * Float(hi) - m2
                }
            }
        }
    }

    /// Q6_K (210 B): ql[128]@0, qh[64]@128, scales[16] Int8 @192, d@208.
    static func q6_K(_ src: UnsafeRawPointer, _ dst: UnsafeMutablePointer<Float>, _ blocks: Int) {
        for b in 0..<blocks {
            let p = src + 210 * b, y = dst + 256 * b
            let d = halfAt(p, 208)
            for half in 0..<2 {
                let ql = p + 64 * half, qh = p + 128 + 32 * half, sc = p + 192 + 8 * half
                let yh = y + 128 * half
                for g in 0..<2 {
                    let s0 = d * Float(Int8(bitPattern: u8(sc, g)))
                    let s1 = d * Float(Int8(bitPattern: u8(sc, g + 2)))
                    let s2 = d * Float(Int8(bitPattern: u8(sc, g + 4)))
                    let s3 = d * Float(Int8(bitPattern: u8(sc, g + 6)))
                    for k in 0..<16 {
                        let l = 16 * g + k
                        let a = u8(ql, l), c = u8(ql, l + 32), h = u8(qh, l)
                        let q0 = Int32((a & 0xF) | ((h & 3) << 4)) - 32
                        let q1 = Int32((c & 0xF) | (((h >> 2) & 3) << 4)) - 32
                        let q2 = Int32((a >> 4) | (((h >> 4) & 3) << 4)) - 32
                        let q3 = Int32((c >> 4) | (((h >> 6) & 3) << 4)) - 32
                        yh[l] = s0 * Float(q0)
                        yh[l + 32] = s1 * Float(q1)
                        yh[l + 64] = s2 * Float(q2)
                        yh[l + 96] = s3 * Float(q3)
                    }
                }
            }
        }
    }
}
