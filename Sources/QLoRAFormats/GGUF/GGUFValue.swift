// GGUF metadata values (spec/safetensors-and-gguf.md §2.2): the thirteen value types, the value enum
// with typed accessors, and GGUFMetadata, the key → value pairs in file order.

/// A GGUF metadata value type (`gguf_type`); raw values are the ids stored in the file.
public enum GGUFValueType: UInt32, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, bool = 7
    case string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Encoded size in bytes of one scalar of this type; nil for string and array (variable length).
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// The fewest bytes one value of this type can occupy (a string needs its u64 length, an array its
    /// u32 element type and u64 count). Used to bound counts before anything is allocated.
    var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }

    public var description: String {
        switch self {
        case .uint8: "UINT8"
        case .int8: "INT8"
        case .uint16: "UINT16"
        case .int16: "INT16"
        case .uint32: "UINT32"
        case .int32: "INT32"
        case .float32: "FLOAT32"
        case .bool: "BOOL"
        case .string: "STRING"
        case .array: "ARRAY"
        case .uint64: "UINT64"
        case .int64: "INT64"
        case .float64: "FLOAT64"
        }
    }
}

/// One GGUF metadata value. An array carries its element type, so an empty array keeps it too.
/// Equality is structural (a NaN float is unequal to itself, as in IEEE-754).
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8)
    case int8(Int8)
    case uint16(UInt16)
    case int16(Int16)
    case uint32(UInt32)
    case int32(Int32)
    case float32(Float)
    case bool(Bool)
    case string(String)
    /// Element type, then the elements (each of that type).
    case array(GGUFValueType, [GGUFValue])
    case uint64(UInt64)
    case int64(Int64)
    case float64(Double)

    /// The type id this value is written with.
    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// The string, for a STRING value.
    public var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The value of any integer type, when it fits in `Int` (BOOL and floats are not integers here).
    public var int: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(exactly: v)
        default: nil
        }
    }

    /// A FLOAT32/FLOAT64 value widened to Double, or an integer value converted (possibly rounded for
    /// magnitudes above 2^53). Nil for BOOL, STRING and ARRAY.
    public var double: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        case .uint64(let v): Double(v)
        case .int64(let v): Double(v)
        default: int.map(Double.init)
        }
    }

    /// The flag, for a BOOL value.
    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements, for an ARRAY value.
    public var array: [GGUFValue]? {
        if case .array(_, let items) = self { return items }
        return nil
    }

    /// The element type, for an ARRAY value.
    public var arrayElementType: GGUFValueType? {
        if case .array(let t, _) = self { return t }
        return nil
    }

    /// The strings of an ARRAY[STRING] (e.g. `tokenizer.ggml.tokens`, `tokenizer.ggml.merges`).
    public var stringArray: [String]? {
        guard case .array(.string, let items) = self else { return nil }
        var out: [String] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard case .string(let s) = item else { return nil }
            out.append(s)
        }
        return out
    }

    /// The integers of an array of any integer element type (e.g. `tokenizer.ggml.token_type`,
    /// INT32), or nil when some element does not fit in `Int`.
    public var intArray: [Int]? {
        guard case .array(let t, let items) = self, t != .bool, t != .string, t != .array,
              t != .float32, t != .float64 else { return nil }
        var out: [Int] = []
        out.reserveCapacity(items.count)
        for item in items {
            guard let v = item.int else { return nil }
            out.append(v)
        }
        return out
    }

    /// The numbers of an ARRAY[FLOAT32] (e.g. `tokenizer.ggml.scores`) or ARRAY[FLOAT64] (narrowed).
    public var floatArray: [Float]? {
        guard case .array(let t, let items) = self, t == .float32 || t == .float64 else { return nil }
        var out: [Float] = []
        out.reserveCapacity(items.count)
        for item in items {
            switch item {
            case .float32(let v): out.append(v)
            case .float64(let v): out.append(Float(v))
            default: return nil
            }
        }
        return out
    }
}

/// GGUF metadata: the key → value pairs in the order the file lists them, with lookup by key.
/// Keys are unique (the reader rejects duplicates).
public struct GGUFMetadata: Sendable, Equatable, RandomAccessCollection {
    /// One key → value pair.
    public struct Entry: Sendable, Equatable {
        public let key: String
        public let value: GGUFValue

        public init(key: String, value: GGUFValue) {
            self.key = key
            self.value = value
        }
    }

    /// The pairs in file order.
    public let entries: [Entry]
    private let positions: [String: Int]

    /// Builds metadata from pairs whose keys are unique (a repeated key is a programming error).
    public init(_ entries: [Entry]) {
        var positions: [String: Int] = [:]
        positions.reserveCapacity(entries.count)
        for (i, entry) in entries.enumerated() {
            let previous = positions.updateValue(i, forKey: entry.key)
            precondition(previous == nil, "duplicate GGUF metadata key \(entry.key)")
        }
        self.entries = entries
        self.positions = positions
    }

    public static func == (lhs: GGUFMetadata, rhs: GGUFMetadata) -> Bool { lhs.entries == rhs.entries }

    public var startIndex: Int { 0 }
    public var endIndex: Int { entries.count }
    public subscript(position: Int) -> Entry { entries[position] }

    /// The value stored under `key`, if any.
    public subscript(key: String) -> GGUFValue? {
        guard let i = positions[key] else { return nil }
        return entries[i].value
    }

    /// The keys in file order.
    public var keys: [String] { entries.map(\.key) }
}
