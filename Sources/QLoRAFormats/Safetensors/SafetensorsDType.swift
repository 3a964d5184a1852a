// SafetensorsDType and SafetensorsTensorInfo: the element types of the safetensors format (spec
// shared/spec/safetensors-and-gguf.md §1.3) and one validated header entry.

/// A safetensors element type. The raw value is the header's `dtype` string.
///
/// `allCases` lists the types in the reference (Rust `Dtype`) enum order, which is ascending alignment;
/// the reference writer sorts tensors by this order, descending (§1.4).
public enum SafetensorsDType: String, Sendable, CaseIterable, Hashable, CustomStringConvertible {
    case bool = "BOOL"
    case f4 = "F4"
    case f6E2M3 = "F6_E2M3"
    case f6E3M2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8E5M2 = "F8_E5M2"
    case f8E4M3 = "F8_E4M3"
    case f8E8M0 = "F8_E8M0"
    case f8E4M3FNUZ = "F8_E4M3FNUZ"
    case f8E5M2FNUZ = "F8_E5M2FNUZ"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bits per element: 4 (`F4`), 6 (`F6_*`), 8, 16, 32 or 64. `BOOL` takes a whole byte.
    public var bitWidth: Int {
        switch self {
        case .f4: 4
        case .f6E2M3, .f6E3M2: 6
        case .bool, .u8, .i8, .f8E5M2, .f8E4M3, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ: 8
        case .i16, .u16, .f16, .bf16: 16
        case .i32, .u32, .f32: 32
        case .c64, .f64, .i64, .u64: 64
        }
    }

    /// Position in the reference enum (0 for `BOOL` … 21 for `U64`): larger means larger alignment.
    public var referenceOrder: Int {
        // allCases is declared in reference order; the lookup runs over 22 entries.
        Self.allCases.firstIndex(of: self)!
    }

    /// True when `SafetensorsFile.floats` can convert this type to Float32: the IEEE float types
    /// (F16, BF16, F32, F64), the integer types and BOOL. The 4/6/8-bit float formats and C64 cannot.
    public var convertsToFloat: Bool {
        switch self {
        case .f16, .bf16, .f32, .f64, .bool, .u8, .i8, .i16, .u16, .i32, .u32, .i64, .u64: true
        case .f4, .f6E2M3, .f6E3M2, .f8E5M2, .f8E4M3, .f8E8M0, .f8E4M3FNUZ, .f8E5M2FNUZ, .c64: false
        }
    }

    public var description: String { rawValue }
}

/// One tensor entry of a validated safetensors header.
public struct SafetensorsTensorInfo: Sendable, Hashable {
    /// The header key.
    public let name: String
    public let dtype: SafetensorsDType
    /// Row-major dimensions (`[]` is a scalar; zero dimensions are allowed).
    public let shape: [Int]
    /// `[begin, end)` relative to the start of the data section (file offset `8 + N`).
    public let dataOffsets: Range<Int>
    /// `dataOffsets.count`, equal to `elementCount × dtype.bitWidth / 8`.
    public let byteCount: Int
    /// The product of `shape` (1 for a scalar).
    public let elementCount: Int

    public init(name: String, dtype: SafetensorsDType, shape: [Int], dataOffsets: Range<Int>,
                byteCount: Int, elementCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataOffsets = dataOffsets
        self.byteCount = byteCount
        self.elementCount = elementCount
    }
}
