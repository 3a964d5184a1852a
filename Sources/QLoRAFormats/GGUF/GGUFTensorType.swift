// ggml tensor types as stored in GGUF tensor infos (spec/safetensors-and-gguf.md §2.4; ids from ggml's
// include/ggml.h), their block geometry, and GGUFTensorInfo.

/// A ggml tensor type. Raw values are ggml's `ggml_type` ids. An id this reader does not know (including
/// ids ggml has removed: 4, 5, 31–33, 36–38) is kept as `.unknown(id)`: such tensors are still listed, but
/// their size is unknown, so `GGUFFile.tensorData` refuses them.
public enum GGUFTensorType: Sendable, Hashable, RawRepresentable, CustomStringConvertible {
    case f32, f16, q4_0, q4_1, q5_0, q5_1, q8_0, q8_1
    case q2_K, q3_K, q4_K, q5_K, q6_K, q8_K
    case iq2_XXS, iq2_XS, iq3_XXS, iq1_S, iq4_NL, iq3_S, iq2_S, iq4_XS
    case i8, i16, i32, i64, f64, iq1_M, bf16
    case tq1_0, tq2_0, mxfp4, nvfp4, q1_0, q2_0
    case unknown(UInt32)

    /// Every known type, in id order.
    public static let known: [GGUFTensorType] = [
        .f32, .f16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q8_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K,
        .iq2_XXS, .iq2_XS, .iq3_XXS, .iq1_S, .iq4_NL, .iq3_S, .iq2_S, .iq4_XS,
        .i8, .i16, .i32, .i64, .f64, .iq1_M, .bf16, .tq1_0, .tq2_0, .mxfp4, .nvfp4, .q1_0, .q2_0,
    ]

    /// (id, elements per block, bytes per block, name) for each known type.
    private static let table: [UInt32: (type: GGUFTensorType, block: Int, bytes: Int, name: String)] = {
        let rows: [(UInt32, GGUFTensorType, Int, Int, String)] = [
            (0, .f32, 1, 4, "F32"), (1, .f16, 1, 2, "F16"), (2, .q4_0, 32, 18, "Q4_0"), (3, .q4_1, 32, 20, "Q4_1"),
            (6, .q5_0, 32, 22, "Q5_0"), (7, .q5_1, 32, 24, "Q5_1"), (8, .q8_0, 32, 34, "Q8_0"),
            (9, .q8_1, 32, 36, "Q8_1"), (10, .q2_K, 256, 84, "Q2_K"), (11, .q3_K, 256, 110, "Q3_K"),
            (12, .q4_K, 256, 144, "Q4_K"), (13, .q5_K, 256, 176, "Q5_K"), (14, .q6_K, 256, 210, "Q6_K"),
            (15, .q8_K, 256, 292, "Q8_K"), (16, .iq2_XXS, 256, 66, "IQ2_XXS"), (17, .iq2_XS, 256, 74, "IQ2_XS"),
            (18, .iq3_XXS, 256, 98, "IQ3_XXS"), (19, .iq1_S, 256, 50, "IQ1_S"), (20, .iq4_NL, 32, 18, "IQ4_NL"),
            (21, .iq3_S, 256, 110, "IQ3_S"), (22, .iq2_S, 256, 82, "IQ2_S"), (23, .iq4_XS, 256, 136, "IQ4_XS"),
            (24, .i8, 1, 1, "I8"), (25, .i16, 1, 2, "I16"), (26, .i32, 1, 4, "I32"), (27, .i64, 1, 8, "I64"),
            (28, .f64, 1, 8, "F64"), (29, .iq1_M, 256, 56, "IQ1_M"), (30, .bf16, 1, 2, "BF16"),
            (34, .tq1_0, 256, 54, "TQ1_0"), (35, .tq2_0, 256, 66, "TQ2_0"), (39, .mxfp4, 32, 17, "MXFP4"),
            (40, .nvfp4, 64, 36, "NVFP4"), (41, .q1_0, 128, 18, "Q1_0"), (42, .q2_0, 64, 18, "Q2_0"),
        ]
        var table: [UInt32: (type: GGUFTensorType, block: Int, bytes: Int, name: String)] = [:]
        for (id, type, block, bytes, name) in rows { table[id] = (type, block, bytes, name) }
        return table
    }()

    /// Maps any id; ids without a known layout become `.unknown(id)`.
    public init(rawValue: UInt32) {
        self = Self.table[rawValue]?.type ?? .unknown(rawValue)
    }

    /// The `ggml_type` id.
    public var rawValue: UInt32 {
        switch self {
        case .f32: 0
        case .f16: 1
        case .q4_0: 2
        case .q4_1: 3
        case .q5_0: 6
        case .q5_1: 7
        case .q8_0: 8
        case .q8_1: 9
        case .q2_K: 10
        case .q3_K: 11
        case .q4_K: 12
        case .q5_K: 13
        case .q6_K: 14
        case .q8_K: 15
        case .iq2_XXS: 16
        case .iq2_XS: 17
        case .iq3_XXS: 18
        case .iq1_S: 19
        case .iq4_NL: 20
        case .iq3_S: 21
        case .iq2_S: 22
        case .iq4_XS: 23
        case .i8: 24
        case .i16: 25
        case .i32: 26
        case .i64: 27
        case .f64: 28
        case .iq1_M: 29
        case .bf16: 30
        case .tq1_0: 34
        case .tq2_0: 35
        case .mxfp4: 39
        case .nvfp4: 40
        case .q1_0: 41
        case .q2_0: 42
        case .unknown(let id): id
        }
    }

    // Equality and hashing go through the id, so `.unknown(8)` (never produced by `init(rawValue:)`)
    // equals `.q8_0`.
    public static func == (lhs: GGUFTensorType, rhs: GGUFTensorType) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// Whether this reader knows the type's block layout.
    public var isKnown: Bool { Self.table[rawValue] != nil }

    /// Elements per block (1 for plain scalar types, 32 for Q4_0…Q8_1, 256 for K-quants); 0 when unknown.
    public var blockSize: Int { Self.table[rawValue]?.block ?? 0 }

    /// Bytes per block; 0 when unknown.
    public var bytesPerBlock: Int { Self.table[rawValue]?.bytes ?? 0 }

    /// ggml's name ("Q8_0"), or "unknown type N".
    public var description: String { Self.table[rawValue]?.name ?? "unknown type \(rawValue)" }
}

/// One tensor listed in a GGUF file.
public struct GGUFTensorInfo: Sendable, Hashable {
    /// The tensor name, e.g. `blk.0.attn_q.weight`.
    public let name: String
    /// Dimensions in ggml order: `dims[0]` (ne0) varies fastest, so an HF `[out, in]` weight is `[in, out]`.
    /// 1 to 4 entries, each at least 1.
    public let dims: [Int]
    /// The stored type; check `type.isKnown` before decoding.
    public let type: GGUFTensorType
    /// Byte offset of the data, relative to `GGUFFile.dataOffset`; a multiple of the file's alignment.
    public let offset: Int
    /// Bytes of data: `(ne0 / blockSize) × bytesPerBlock × ne1 × ne2 × ne3`; 0 for an unknown type.
    public let byteCount: Int
    /// Product of the dims.
    public let elementCount: Int
    /// Absolute byte offset of this tensor's info record in the file (for error messages).
    public let infoOffset: Int

    public init(name: String, dims: [Int], type: GGUFTensorType, offset: Int, byteCount: Int,
                elementCount: Int, infoOffset: Int) {
        self.name = name
        self.dims = dims
        self.type = type
        self.offset = offset
        self.byteCount = byteCount
        self.elementCount = elementCount
        self.infoOffset = infoOffset
    }
}
