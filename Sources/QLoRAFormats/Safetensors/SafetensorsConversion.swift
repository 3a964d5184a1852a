// Scalar conversions between safetensors element encodings and Float32: IEEE binary16 and bfloat16 in both
// directions (written by hand so they need no `Float16`, which macOS x86-64 lacks), and the bulk
// little-endian decoder behind `SafetensorsFile.floats`.

/// Float32 ⇄ F16/BF16 bit conversions, round-to-nearest-even, matching ggml/numpy (spec §2.5).
public enum SafetensorsConversion {
    /// The Float32 value of IEEE binary16 bits (exact: every half is a float).
    @inline(__always)
    public static func float(fromHalf h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa × 2^-24, exact in Float32.
            let magnitude = Float(mantissa) * 0x1p-24
            return Float(bitPattern: sign | magnitude.bitPattern)
        }
        if exponent == 0x1F {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }

    /// IEEE binary16 bits of `value`, rounded to nearest even; overflow gives ±infinity, NaN stays a
    /// (quiet) NaN with its sign and top payload bits.
    @inline(__always)
    public static func half(from value: Float) -> UInt16 {
        let x = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (x >> 16) & 0x8000)
        let exponent = Int((x >> 23) & 0xFF)
        var mantissa = x & 0x7F_FFFF
        if exponent == 0xFF {
            return sign | 0x7C00 | (mantissa != 0 ? 0x200 | UInt16(truncatingIfNeeded: mantissa >> 13) : 0)
        }
        let e = exponent - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }          // below half the smallest subnormal: ±0
            mantissa |= 0x80_0000               // the implicit bit
            let shift = UInt32(14 - e)          // 14...24
            var h = mantissa >> shift
            let remainder = mantissa & ((1 << shift) - 1)
            let halfway: UInt32 = 1 << (shift - 1)
            if remainder > halfway || (remainder == halfway && h & 1 == 1) { h += 1 }
            return sign | UInt16(truncatingIfNeeded: h)     // a carry into 0x400 is the smallest normal
        }
        var h = UInt32(e) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && h & 1 == 1) { h += 1 }  // may carry up to infinity
        return sign | UInt16(truncatingIfNeeded: h)
    }

    /// The Float32 value of bfloat16 bits: `bits << 16`.
    @inline(__always)
    public static func float(fromBF16 b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }

    /// bfloat16 bits of `value`, as ggml's `ggml_compute_fp32_to_bf16`: round to nearest even, and a NaN
    /// becomes the quiet NaN `(bits >> 16) | 0x40`.
    @inline(__always)
    public static func bf16(from value: Float) -> UInt16 {
        let u = value.bitPattern
        if u & 0x7FFF_FFFF > 0x7F80_0000 {
            return UInt16(truncatingIfNeeded: u >> 16) | 0x40
        }
        return UInt16(truncatingIfNeeded: (u &+ 0x7FFF &+ ((u >> 16) & 1)) >> 16)
    }

    /// Decodes `count` little-endian elements of `dtype` from `bytes` into `out` (which has room for
    /// `count`). Precondition: `dtype.convertsToFloat` and `bytes.count == count × element size`.
    static func convert(_ bytes: UnsafeRawBufferPointer, dtype: SafetensorsDType, count: Int,
                        into out: UnsafeMutableBufferPointer<Float>) {
        precondition(dtype.convertsToFloat && bytes.count == count * dtype.bitWidth / 8 && out.count >= count)
        guard count > 0 else { return }
        switch dtype {
        case .f32:
            #if _endian(little)
            UnsafeMutableRawBufferPointer(out).copyMemory(from: bytes)
            #else
            for i in 0..<count {
                out[i] = Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
            }
            #endif
        case .f16:
            for i in 0..<count { out[i] = float(fromHalf: load(bytes, i, UInt16.self)) }
        case .bf16:
            for i in 0..<count { out[i] = float(fromBF16: load(bytes, i, UInt16.self)) }
        case .f64:
            for i in 0..<count { out[i] = Float(Double(bitPattern: load(bytes, i, UInt64.self))) }
        case .bool:
            for i in 0..<count { out[i] = bytes[i] != 0 ? 1 : 0 }
        case .u8:
            for i in 0..<count { out[i] = Float(bytes[i]) }
        case .i8:
            for i in 0..<count { out[i] = Float(Int8(bitPattern: bytes[i])) }
        case .u16:
            for i in 0..<count { out[i] = Float(load(bytes, i, UInt16.self)) }
        case .i16:
            for i in 0..<count { out[i] = Float(Int16(bitPattern: load(bytes, i, UInt16.self))) }
        case .u32:
            for i in 0..<count { out[i] = Float(load(bytes, i, UInt32.self)) }
        case .i32:
            for i in 0..<count { out[i] = Float(Int32(bitPattern: load(bytes, i, UInt32.self))) }
        case .u64:
            for i in 0..<count { out[i] = Float(load(bytes, i, UInt64.self)) }
        case .i64:
            for i in 0..<count { out[i] = Float(Int64(bitPattern: load(bytes, i, UInt64.self))) }
        case .f4, .f6E2M3, .f6E3M2, .f8E5M2, .f8E4M3, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ, .c64:
            preconditionFailure("\(dtype) does not convert to Float32")
        }
    }

    /// Element `i` of a little-endian array of `T`, read without assuming alignment.
    @inline(__always)
    private static func load<T: FixedWidthInteger>(_ bytes: UnsafeRawBufferPointer, _ i: Int, _: T.Type) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: i &* MemoryLayout<T>.size, as: T.self))
    }

    /// Little-endian bytes of `values` encoded as `dtype`, which must be F32, F16, BF16 or F64.
    static func encode(_ values: [Float], as dtype: SafetensorsDType) -> [UInt8]? {
        let width: Int
        switch dtype {
        case .f32: width = 4
        case .f16, .bf16: width = 2
        case .f64: width = 8
        default: return nil
        }
        guard !values.isEmpty else { return [] }  // see SafetensorsFile.floats: no zero-capacity initializer
        return [UInt8](unsafeUninitializedCapacity: values.count * width) { out, initialized in
            let raw = UnsafeMutableRawBufferPointer(out)
            for (i, v) in values.enumerated() {
                switch dtype {
                case .f32: raw.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self)
                case .f16: raw.storeBytes(of: half(from: v).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                case .bf16: raw.storeBytes(of: bf16(from: v).littleEndian, toByteOffset: 2 * i, as: UInt16.self)
                default: raw.storeBytes(of: Double(v).bitPattern.littleEndian, toByteOffset: 8 * i, as: UInt64.self)
                }
            }
            initialized = values.count * width
        }
    }
}
