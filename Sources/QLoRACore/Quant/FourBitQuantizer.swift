// Blockwise 4-bit quantization and dequantization, bit-exact with bitsandbytes (spec nf4-and-double-quant.md):
//
// quantize (§2, CPU rule; the CUDA kernel agrees except for all-zero blocks, see below):
//   full block   absmax = max|x|;   inv = fl32(1 / max(absmax, 1e-38));   y = clamp(fl32(x · inv), -1, 1)
//   last partial block (n % B ≠ 0): absmax = max(max|x|, 1e-38) (stored clamped);   y = clamp(fl32(x / absmax), -1, 1)
//   code = order[#{k : y > t_k}]   (t = midpoints of the value-sorted code book; ties to the lower code)
//   byte k = code[2k] << 4 | code[2k+1];   an odd count pads the final low nibble with the code of 0.0
// An all-zero full block stores absmax 0 and codes of 0.0 (0x77 for NF4); CUDA writes 0x00 there. Both
// dequantize to zero; we follow the CPU rule because it is the one we can check.
//
// double quantization (§5): offset = mean(absmax) (accumulated in Float64, rounded once; bitsandbytes uses
//   torch's float32 cascade sum, whose last bit depends on the CPU's vector width, so ours may differ by an
//   ulp — the offset is stored, so files stay consistent either way);
//   c = fl32(absmax - offset); 8-bit blockwise (block 256) over the signed dynamic map; see `NestedRounding`.
//
// dequantize (§3): x̂ = fl32(codebook[code] · scale[block]), then rounded to the recorded dtype (RNE).

/// How the 8-bit index of a double-quantized scale is chosen.
public enum NestedRounding: String, Sendable, CaseIterable, Codable {
    /// The exact nearest map entry, ties to the even index: bitsandbytes' CUDA kernel (`dQuantize<0>`).
    case nearest
    /// bitsandbytes' CPU C++ kernel (`quantize_cpu`), reproduced exactly (see `FourBitQuantizer.CPUNestedTable`).
    case bitsandbytesCPU = "bitsandbytes-cpu"
}

/// Options of one quantization.
public struct FourBitOptions: Sendable, Equatable {
    public var type: FourBitType
    public var blocksize: Int
    public var doubleQuant: Bool
    public var nestedRounding: NestedRounding

    public init(type: FourBitType = .nf4, blocksize: Int = 64, doubleQuant: Bool = true,
                nestedRounding: NestedRounding = .nearest) {
        self.type = type
        self.blocksize = blocksize
        self.doubleQuant = doubleQuant
        self.nestedRounding = nestedRounding
    }
}

public enum FourBitQuantizer {
    /// Smallest divisor bitsandbytes' CPU path uses (`absmax.clamp(min=1e-38)`).
    static let minimumAbsmax: Float = 1e-38

    // MARK: quantize

    /// Quantizes `values` (row-major, `shape`) with the fast path: blocks in parallel, a branch-free search
    /// over the thresholds. Bit-identical to `quantizeReference`.
    public static func quantize(_ values: UnsafeBufferPointer<Float>, shape: [Int], dtype: FloatStorage = .float32,
                                options: FourBitOptions = FourBitOptions()) -> FourBitTensor {
        quantize(values, shape: shape, dtype: dtype, options: options, reference: false)
    }

    /// The scalar definition: one block after another, codes by counting thresholds.
    public static func quantizeReference(_ values: [Float], shape: [Int], dtype: FloatStorage = .float32,
                                         options: FourBitOptions = FourBitOptions()) -> FourBitTensor {
        values.withUnsafeBufferPointer { quantize($0, shape: shape, dtype: dtype, options: options, reference: true) }
    }

    public static func quantize(_ values: [Float], shape: [Int], dtype: FloatStorage = .float32,
                                options: FourBitOptions = FourBitOptions()) -> FourBitTensor {
        values.withUnsafeBufferPointer { quantize($0, shape: shape, dtype: dtype, options: options) }
    }

    private static func quantize(_ x: UnsafeBufferPointer<Float>, shape: [Int], dtype: FloatStorage,
                                 options: FourBitOptions, reference: Bool) -> FourBitTensor {
        let n = x.count, bs = options.blocksize
        precondition(FourBitTensor.allowedBlocksizes.contains(bs), "block size \(bs) is not one of \(FourBitTensor.allowedBlocksizes)")
        precondition(shape.reduce(1, *) == n, "shape \(shape) does not hold \(n) values")
        let blocks = (n + bs - 1) / bs
        var absmax = [Float](repeating: 0, count: blocks)
        var packed = [UInt8](repeating: 0, count: (n + 1) / 2)
        let (thresholds, order) = options.type.quantizeTable
        let zeroCode = order[thresholdCount(0, thresholds)]

        absmax.withUnsafeMutableBufferPointer { am in
            packed.withUnsafeMutableBufferPointer { out in
                thresholds.withUnsafeBufferPointer { t in
                    order.withUnsafeBufferPointer { ord in
                        let amBase = am.baseAddress!, outBase = out.baseAddress!
                        let work = { (range: Range<Int>) in
                            for b in range {
                                let start = b * bs, end = min(start + bs, n)
                                var m: Float = 0
                                for i in start..<end { m = max(m, abs(x[i])) }
                                let partial = end - start < bs
                                let inv: Float
                                if partial {
                                    m = max(m, minimumAbsmax)
                                    inv = 0
                                } else {
                                    inv = 1 / max(m, minimumAbsmax)
                                }
                                amBase[b] = m
                                var i = start
                                while i < end {
                                    let hi = code(x[i], partial: partial, absmax: m, inv: inv, t, ord, reference: reference)
                                    let lo = i + 1 < end
                                        ? code(x[i + 1], partial: partial, absmax: m, inv: inv, t, ord, reference: reference)
                                        : zeroCode
                                    outBase[i / 2] = hi << 4 | lo
                                    i += 2
                                }
                            }
                        }
                        if reference {
                            work(0..<blocks)
                        } else {
                            parallelChunks(blocks, minimumPerChunk: max(1, 16384 / bs), work)
                        }
                    }
                }
            }
        }
        let scales: FourBitScales = options.doubleQuant
            ? .nested(nest(absmax, rounding: options.nestedRounding))
            : .plain(absmax)
        return FourBitTensor(type: options.type, shape: shape, blocksize: bs, packed: packed, scales: scales, dtype: dtype)
    }

    @inline(__always)
    private static func code(_ v: Float, partial: Bool, absmax: Float, inv: Float, _ t: UnsafeBufferPointer<Float>,
                             _ order: UnsafeBufferPointer<UInt8>, reference: Bool) -> UInt8 {
        var y = partial ? v / absmax : v * inv
        y = min(max(y, -1), 1)
        if reference { return order[thresholdCount(y, Array(t))] }
        // Branch-free binary search over the 15 sorted thresholds: the count of thresholds < y.
        var lo = 0
        if y > t[lo + 7] { lo += 8 }
        if y > t[lo + 3] { lo += 4 }
        if y > t[lo + 1] { lo += 2 }
        if y > t[lo] { lo += 1 }
        return order[lo]
    }

    /// `#{k : y > thresholds[k]}` by plain counting (the definition).
    static func thresholdCount(_ y: Float, _ thresholds: [Float]) -> Int {
        var c = 0
        for t in thresholds where y > t { c += 1 }
        return c
    }

    // MARK: double quantization

    /// Compresses float32 block scales to 8-bit codes + one float32 per 256 (§5).
    /// `offset` overrides the mean (tests replaying bitsandbytes' own offset).
    public static func nest(_ absmax: [Float], rounding: NestedRounding = .nearest, blocksize: Int = 256,
                            offset: Float? = nil) -> NestedScales {
        let offset = offset ?? mean(absmax)
        let map = DynamicMap.signed
        let nestedBlocks = (absmax.count + blocksize - 1) / blocksize
        var nestedAbsmax = [Float](repeating: 0, count: nestedBlocks)
        var codes = [UInt8](repeating: 0, count: absmax.count)
        for j in 0..<nestedBlocks {
            let start = j * blocksize, end = min(start + blocksize, absmax.count)
            var m: Float = 0
            for b in start..<end { m = max(m, abs(absmax[b] - offset)) }
            nestedAbsmax[j] = m
            switch rounding {
            case .nearest:
                let inv = 1 / m
                for b in start..<end { codes[b] = nearestIndex((absmax[b] - offset) * inv, map) }
            case .bitsandbytesCPU:
                let lut = map == DynamicMap.signed ? CPUNestedTable.signed : CPUNestedTable(map: map)
                for b in start..<end { codes[b] = lut.index(absmax[b] - offset, absmax: m) }
            }
        }
        return NestedScales(codes: codes, absmax: nestedAbsmax, offset: offset, map: map, blocksize: blocksize)
    }

    /// The mean, accumulated in Float64 and rounded once.
    public static func mean(_ values: [Float]) -> Float {
        var sum = 0.0
        for a in values { sum += Double(a) }
        return Float(sum / Double(max(1, values.count)))
    }

    /// CUDA's `dQuantize<0>` net effect: the nearest entry of the sorted `map`, exact ties to the even index,
    /// NaN (an all-equal nested block computes 0 · inf) to index 0, out-of-range values clamped.
    public static func nearestIndex(_ z: Float, _ map: [Float]) -> UInt8 {
        if z.isNaN { return 0 }
        // Binary search for the first entry ≥ z.
        var lo = 0, hi = map.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if map[mid] < z { lo = mid + 1 } else { hi = mid }
        }
        if lo == 0 { return 0 }
        if lo == map.count { return UInt8(map.count - 1) }
        let below = lo - 1, above = lo
        let midpoint = (map[below] + map[above]) * 0.5
        if z < midpoint { return UInt8(below) }
        if z > midpoint { return UInt8(above) }
        return UInt8(below % 2 == 0 ? below : above)
    }

    /// bitsandbytes' CPU C++ 8-bit quantizer (`quantize_cpu_impl`), measured against bitsandbytes 0.50.2 on
    /// 1,049,340 inputs with zero mismatches (scripts/reference/make_nf4_goldens.py --verify): `z` is snapped to
    /// a 65,536-point grid over [-1, 1] and the grid point's bucket among the float32 midpoints of the map
    /// is taken (a grid point on a midpoint goes to the lower index). An all-zero block gives index 0.
    public struct CPUNestedTable: Sendable {
        let lut: [UInt8]

        public static let signed = CPUNestedTable(map: DynamicMap.signed)

        public init(map: [Float]) {
            let mids = (0..<(map.count - 1)).map { Float(0.5) * (map[$0] + map[$0 + 1]) }
            var lut = [UInt8](repeating: 0, count: 65536)
            var k = 0
            for i in 0..<65536 {
                let v = Float(-1) + Float(2 * i) / Float(65535)
                while k < mids.count, mids[k] < v { k += 1 }
                lut[i] = UInt8(k)
            }
            self.lut = lut
        }

        /// The index of `c` in a block whose largest magnitude is `absmax`.
        public func index(_ c: Float, absmax: Float) -> UInt8 {
            guard absmax != 0 else { return 0 }
            let z = min(max(c * (1 / absmax), -1), 1)
            let g = ((z + 1) * 0.5 * 65535 + 0.5).rounded(.towardZero)
            return lut[Int(g)]
        }
    }

    // MARK: dequantize

    /// `out[i] = fl32(codebook[code_i] · scale[i / blocksize])` for every element (float32), scalar.
    public static func dequantizeReference(_ t: FourBitTensor) -> [Float] {
        let book = t.type.codebook
        var out = [Float](repeating: 0, count: t.count)
        for i in 0..<t.count {
            let byte = t.packed[i / 2]
            let c = i % 2 == 0 ? byte >> 4 : byte & 0x0F
            out[i] = book[Int(c)] * t.scale(ofBlock: i / t.blocksize)
        }
        return out
    }

    /// Runs `body` over `0..<count` split into contiguous chunks on all cores (each index exactly once; the
    /// result never depends on the split).
    public static func parallelChunks(_ count: Int, minimumPerChunk: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forEachRange(count, parts: min(max(1, count / max(1, minimumPerChunk)), 64), body)
    }
}
