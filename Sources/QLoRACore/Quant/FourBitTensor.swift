// A 4-bit blockwise-quantized tensor exactly as bitsandbytes stores it (spec nf4-and-double-quant.md §2-§5, §8):
// flat row-major codes, two per byte (element 2k in the high nibble), one scale ("absmax") per block, the
// scales optionally double-quantized to 8 bits.

/// Element type a 4-bit tensor dequantizes to (the original weight dtype recorded in the quant state).
public enum FloatStorage: String, Sendable, Codable, CaseIterable {
    case float32, bfloat16, float16

    public var byteWidth: Int { self == .float32 ? 4 : 2 }
}

/// The 8-bit double quantization of the block scales (§5): `absmax'[b] = D[codes[b]] · absmax[b / blocksize] + offset`.
public struct NestedScales: Sendable, Equatable {
    /// One 8-bit index into `map` per 4-bit block.
    public var codes: [UInt8]
    /// One float32 scale per `blocksize` codes.
    public var absmax: [Float]
    /// The mean subtracted from the block scales before quantizing them.
    public var offset: Float
    /// The 256-entry code map (the signed dynamic map for files we write; read back from files otherwise).
    public var map: [Float]
    /// Codes per nested block (256 in every bitsandbytes file).
    public var blocksize: Int

    public init(codes: [UInt8], absmax: [Float], offset: Float, map: [Float] = DynamicMap.signed, blocksize: Int = 256) {
        self.codes = codes
        self.absmax = absmax
        self.offset = offset
        self.map = map
        self.blocksize = blocksize
    }

    /// `fl32(fl32(map[q] · absmax[b / blocksize]) + offset)` (bitsandbytes' 8-bit dequantize, then the add).
    @inline(__always)
    public func scale(ofBlock b: Int) -> Float {
        map[Int(codes[b])] * absmax[b / blocksize] + offset
    }
}

/// How the block scales are stored.
public enum FourBitScales: Sendable, Equatable {
    /// One float32 absmax per block (4.5 bits per parameter at block size 64).
    case plain([Float])
    /// Double-quantized (≈ 4.127 bits per parameter at block size 64).
    case nested(NestedScales)
}

/// A tensor quantized to 4 bits in bitsandbytes' layout.
public struct FourBitTensor: Sendable, Equatable {
    public var type: FourBitType
    /// Original shape (`[out, in]` for a linear weight).
    public var shape: [Int]
    /// Elements per block (32 ... 4096, a power of two).
    public var blocksize: Int
    /// `(count + 1) / 2` bytes; an odd count pads the last low nibble with the code of 0.0.
    public var packed: [UInt8]
    public var scales: FourBitScales
    /// The dtype dequantization produces (the weight's original dtype).
    public var dtype: FloatStorage

    public init(type: FourBitType, shape: [Int], blocksize: Int, packed: [UInt8], scales: FourBitScales,
                dtype: FloatStorage) {
        self.type = type
        self.shape = shape
        self.blocksize = blocksize
        self.packed = packed
        self.scales = scales
        self.dtype = dtype
    }

    /// Block sizes bitsandbytes accepts.
    public static let allowedBlocksizes = [32, 64, 128, 256, 512, 1024, 2048, 4096]

    /// `(rows, columns)` of a 2-D tensor (a linear weight `[out, in]`).
    public var matrixShape: (rows: Int, columns: Int) {
        precondition(shape.count == 2, "a 4-bit linear weight must be 2-D, got shape \(shape)")
        return (shape[0], shape[1])
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }
    /// Number of 4-bit blocks.
    public var blockCount: Int { (count + blocksize - 1) / blocksize }
    public var isDoubleQuantized: Bool { if case .nested = scales { return true } else { return false } }

    /// The float32 scale of block `b` (reconstructed from the nested form when double-quantized).
    @inline(__always)
    public func scale(ofBlock b: Int) -> Float {
        switch scales {
        case .plain(let absmax): return absmax[b]
        case .nested(let nested): return nested.scale(ofBlock: b)
        }
    }

    /// Scales of blocks `range` (callers dequantizing a tile precompute them once).
    public func scales(ofBlocks range: Range<Int>) -> [Float] {
        switch scales {
        case .plain(let absmax): return Array(absmax[range])
        case .nested(let nested): return range.map { nested.scale(ofBlock: $0) }
        }
    }

    /// Bytes this tensor occupies in a checkpoint: packed codes, scales, maps (the JSON quant state aside).
    public var storageBytes: Int {
        switch scales {
        case .plain(let absmax): return packed.count + 4 * absmax.count + 4 * 16
        case .nested(let n): return packed.count + n.codes.count + 4 * n.absmax.count + 4 * n.map.count + 4 + 4 * 16
        }
    }

    /// Storage bits per parameter (what the paper's 4.127 counts: codes + scales, excluding per-tensor maps).
    public var bitsPerParameter: Double {
        let bits: Int
        switch scales {
        case .plain(let absmax): bits = 8 * packed.count + 32 * absmax.count
        case .nested(let n): bits = 8 * packed.count + 8 * n.codes.count + 32 * n.absmax.count
        }
        return Double(bits) / Double(max(1, count))
    }
}
