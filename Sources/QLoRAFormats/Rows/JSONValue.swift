// In-memory JSON document model produced by `JSONParser` and consumed by `JSONWriter`.

/// A JSON value (RFC 8259). Numbers are stored as `Double`; objects keep their keys in input order.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The JSON type name used in error messages: "null", "boolean", "number", "string", "array",
    /// "object".
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// The payload of a `.string`, else nil.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The payload of a `.number`, else nil.
    public var numberValue: Double? {
        if case .number(let d) = self { return d }
        return nil
    }

    /// The payload of a `.bool`, else nil.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements of an `.array`, else nil.
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The members of an `.object`, else nil.
    public var objectValue: JSONObject? {
        if case .object(let o) = self { return o }
        return nil
    }

    /// True for `.null`.
    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Member lookup on an object (exact code-point match of the key); nil for absent keys and for
    /// values that are not objects.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }
}

/// A JSON object: key/value pairs in their original (or insertion) order, keys unique.
///
/// Keys are compared by their exact Unicode scalars (UTF-8 bytes), as JSON does; two canonically
/// equivalent but differently encoded keys are distinct. Equality of whole objects is order-sensitive:
/// the same pairs in the same order. Lookup is a linear scan, meant for the small objects of data rows.
public struct JSONObject: Equatable, Sendable {
    /// The members in order. Mutating this directly must keep keys unique.
    public var pairs: [(key: String, value: JSONValue)]

    /// An empty object.
    public init() { pairs = [] }

    /// An object from ordered pairs. Keys must be unique (not checked).
    public init(_ pairs: [(key: String, value: JSONValue)]) {
        self.pairs = pairs
    }

    /// The keys in order.
    public var keys: [String] { pairs.map(\.key) }

    /// The number of members.
    public var count: Int { pairs.count }

    /// True when the object has no members.
    public var isEmpty: Bool { pairs.isEmpty }

    /// The value for `key`, nil if absent. Setting a value replaces it in place or appends a new
    /// member; setting nil removes the member.
    public subscript(key: String) -> JSONValue? {
        get {
            guard let i = index(forKey: key) else { return nil }
            return pairs[i].value
        }
        set {
            let i = index(forKey: key)
            switch (i, newValue) {
            case (let i?, let v?): pairs[i].value = v
            case (let i?, nil): pairs.remove(at: i)
            case (nil, let v?): pairs.append((key: key, value: v))
            case (nil, nil): break
            }
        }
    }

    /// Position of the member named `key` (exact code-point match), nil if absent.
    public func index(forKey key: String) -> Int? {
        pairs.firstIndex { sameScalars($0.key, key) }
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.pairs.count == rhs.pairs.count else { return false }
        for (l, r) in zip(lhs.pairs, rhs.pairs) where l.key != r.key || l.value != r.value {
            return false
        }
        return true
    }
}

/// Exact code-point equality. `String.==` compares canonical equivalence, which is cheap for the
/// common (ASCII, unequal) case, so it filters first; a match is confirmed byte by byte.
@inline(__always)
func sameScalars(_ a: String, _ b: String) -> Bool {
    a == b && a.utf8.elementsEqual(b.utf8)
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// Builds an object in literal order. Keys must be unique (not checked).
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    /// Builds an object in literal order. Keys must be unique (not checked).
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements.map { (key: $0.0, value: $0.1) })
    }
}

extension JSONValue: CustomStringConvertible {
    /// Compact JSON text (see `JSONWriter`); a non-finite number, which JSON cannot hold, shows as
    /// `nan` or `inf` here rather than failing.
    public var description: String { JSONWriter.debugString(self) }
}
