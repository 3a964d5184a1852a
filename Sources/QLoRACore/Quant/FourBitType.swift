// The two 4-bit data types of bitsandbytes (spec nf4-and-double-quant.md §1, §4) and the 8-bit signed
// dynamic map used by double quantization (§6). Tables are shipped as float32 bit patterns, never
// recomputed, so every machine uses the same values.

/// A 4-bit code book: 16 float32 values indexed by the 4-bit code.
public enum FourBitType: String, Sendable, CaseIterable, Codable {
    /// NormalFloat4: quantiles of a standard normal, scaled to [-1, 1]; 7 negative, 0, 8 positive values.
    case nf4
    /// bitsandbytes' FP4 (E2M1-like, bit 3 = sign): {0, 0.0625, 8, 12, 4, 6, 2, 3} / 12 with a sign bit.
    case fp4

    /// The 16 values, index = code.
    public var codebook: [Float] {
        switch self {
        case .nf4: return FourBitTables.nf4
        case .fp4: return FourBitTables.fp4
        }
    }

    /// Decision rule used when quantizing: `code = order[#{k : y > thresholds[k]}]` — bitsandbytes' CPU
    /// `bucketize` over the midpoints of the sorted code book (ties go to the lower bucket).
    public var quantizeTable: (thresholds: [Float], order: [UInt8]) {
        switch self {
        case .nf4: return (FourBitTables.nf4Thresholds, FourBitTables.identityOrder)
        case .fp4: return (FourBitTables.fp4Thresholds, FourBitTables.fp4Order)
        }
    }
}

enum FourBitTables {
    static let nf4: [Float] = [
        0xbf80_0000, 0xbf32_39b1, 0xbf06_6b30, 0xbeca_32a0, 0xbe91_a24d, 0xbe3d_353f, 0xbdba_7871, 0x0000_0000,
        0x3da2_faff, 0x3e24_cae3, 0x3e7c_04dd, 0x3ead_033a, 0x3ee1_a4b8, 0x3f10_07ab, 0x3f39_13b3, 0x3f80_0000,
    ].map { Float(bitPattern: $0) }

    /// bitsandbytes' `get_4bit_type("fp4")`: `[0, 0.0625, 8, 12, 4, 6, 2, 3, -0, -0.0625, -8, -12, -4, -6, -2, -3] / 12`
    /// in float32, where Python's `-0` is the integer 0, so code 8 is +0.0 (its C++ dequantizer uses -0.0f there;
    /// the two zeros compare equal).
    static let fp4: [Float] = [0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3].map { Float($0) / 12 }

    static let identityOrder: [UInt8] = Array(0..<16)

    /// Codes sorted by value (stable: among the two zeros, +0 (code 0) comes before -0 (code 8)).
    static let fp4Order: [UInt8] = (0..<16).sorted { a, b in
        fp4[a] != fp4[b] ? fp4[a] < fp4[b] : a < b
    }.map(UInt8.init)

    /// `fl32((v[k] + v[k+1]) / 2)` over the value-sorted code book.
    static func midpoints(_ sorted: [Float]) -> [Float] {
        (0..<(sorted.count - 1)).map { (sorted[$0] + sorted[$0 + 1]) / 2 }
    }

    static let nf4Thresholds = midpoints(nf4)
    static let fp4Thresholds = midpoints(fp4Order.map { fp4[Int($0)] })
}

/// The 256-entry signed dynamic map `D` (`create_dynamic_map(signed=True)`) that double quantization uses
/// for the block constants: indices 0...126 negative, 127 = 0, 128...254 positive, 255 = 1.0.
public enum DynamicMap {
    public static let signed: [Float] = [
        0xbf7e3333, 0xbf7a999a, 0xbf770000, 0xbf736666, 0xbf6fcccd, 0xbf6c3333, 0xbf68999a, 0xbf650000,
        0xbf616666, 0xbf5dcccd, 0xbf5a3333, 0xbf56999a, 0xbf530000, 0xbf4f6666, 0xbf4bcccd, 0xbf483333,
        0xbf44999a, 0xbf410000, 0xbf3d6666, 0xbf39cccd, 0xbf363334, 0xbf32999a, 0xbf2f0000, 0xbf2b6666,
        0xbf27cccd, 0xbf243334, 0xbf20999a, 0xbf1d0000, 0xbf196666, 0xbf15cccd, 0xbf123334, 0xbf0e999a,
        0xbf0b0000, 0xbf076666, 0xbf03cccc, 0xbf003333, 0xbef93332, 0xbef20000, 0xbeeacccc, 0xbee3999a,
        0xbedc6666, 0xbed53333, 0xbece0000, 0xbec6cccc, 0xbebf999a, 0xbeb86666, 0xbeb13333, 0xbeaa0000,
        0xbea2cccc, 0xbe9b999a, 0xbe946666, 0xbe8d3334, 0xbe860000, 0xbe7d9999, 0xbe6f3333, 0xbe60cccd,
        0xbe526666, 0xbe440000, 0xbe35999a, 0xbe273333, 0xbe18cccd, 0xbe0a6666, 0xbdf80000, 0xbddb3334,
        0xbdc9eb85, 0xbdc428f7, 0xbdbe6667, 0xbdb8a3d7, 0xbdb2e148, 0xbdad1eb8, 0xbda75c2a, 0xbda1999a,
        0xbd9bd70a, 0xbd96147b, 0xbd9051eb, 0xbd8a8f5d, 0xbd84cccd, 0xbd7e147b, 0xbd728f5d, 0xbd670a3d,
        0xbd5b851f, 0xbd500000, 0xbd447ae1, 0xbd38f5c3, 0xbd2d70a3, 0xbd21eb85, 0xbd166667, 0xbd0ae148,
        0xbcfeb852, 0xbce7ae15, 0xbcd0a3d7, 0xbcb9999a, 0xbca28f5d, 0xbc8b851f, 0xbc68f5c3, 0xbc3ae148,
        0xbc1f3b64, 0xbc160418, 0xbc0ccccd, 0xbc039581, 0xbbf4bc6a, 0xbbe24dd3, 0xbbcfdf3b, 0xbbbd70a4,
        0xbbab020d, 0xbb989374, 0xbb8624dd, 0xbb676c8a, 0xbb428f5c, 0xbb1db22d, 0xbaf1a9fc, 0xbaa7ef9d,
        0xba7765ff, 0xba59e83e, 0xba3c6a80, 0xba1eecc1, 0xba016f01, 0xb9c7e283, 0xb98ce705, 0xb923d70b,
        0xb8ba1f4b, 0xb88aefb3, 0xb8378034, 0xb7b24206, 0xb70205ff, 0xb65a1a94, 0xb513a3b7, 0x00000000,
        0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b, 0x3923d70b,
        0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
        0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4,
        0x3bcfdf3b, 0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148,
        0x3c68f5c3, 0x3c8b851f, 0x3ca28f5d, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae15, 0x3cfeb852, 0x3d0ae148,
        0x3d166667, 0x3d21eb85, 0x3d2d70a3, 0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d,
        0x3d728f5d, 0x3d7e147b, 0x3d84cccd, 0x3d8a8f5d, 0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a,
        0x3da75c2a, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667, 0x3dc428f7, 0x3dc9eb85, 0x3ddb3334,
        0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e35999a, 0x3e440000, 0x3e526666, 0x3e60cccd,
        0x3e6f3333, 0x3e7d9999, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc, 0x3eaa0000,
        0x3eb13333, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53333, 0x3edc6666, 0x3ee3999a,
        0x3eeacccc, 0x3ef20000, 0x3ef93332, 0x3f003333, 0x3f03cccc, 0x3f076666, 0x3f0b0000, 0x3f0e999a,
        0x3f123334, 0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243334, 0x3f27cccd, 0x3f2b6666,
        0x3f2f0000, 0x3f32999a, 0x3f363334, 0x3f39cccd, 0x3f3d6666, 0x3f410000, 0x3f44999a, 0x3f483333,
        0x3f4bcccd, 0x3f4f6666, 0x3f530000, 0x3f56999a, 0x3f5a3333, 0x3f5dcccd, 0x3f616666, 0x3f650000,
        0x3f68999a, 0x3f6c3333, 0x3f6fcccd, 0x3f736666, 0x3f770000, 0x3f7a999a, 0x3f7e3333, 0x3f800000,
    ].map { Float(bitPattern: UInt32($0)) }
}
