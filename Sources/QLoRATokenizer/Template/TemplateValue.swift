// Values flowing through the Jinja2-subset template engine (see ChatTemplate.swift).
//
// The model mirrors the Python objects a Hugging Face chat template sees when transformers renders
// it: str, int, float, bool, None, list, dict (insertion-ordered) and jinja2's `Undefined`. Python
// semantics (truthiness, `==` across int/float/bool, repr/str formatting) live in
// TemplateSemantics.swift; the `Equatable` conformance here is plain structural equality.

/// A value in a template context or produced while rendering a template.
public enum TemplateValue: Sendable, Equatable {
    /// jinja2's `Undefined`: a missing variable, attribute or item. Prints as "", is falsy, and
    /// raises an error when an attribute, item or arithmetic is taken from it.
    case undefined
    /// Python `None`.
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// A Python list (tuples are represented as lists too).
    case array([TemplateValue])
    /// A Python dict with string keys, in insertion order.
    case dictionary(TemplateDictionary)
    /// Engine-internal objects: `namespace(...)` instances, the `loop` variable, functions and bound
    /// methods. They cannot be created from outside the engine.
    indirect case object(TemplateObject)

    /// The payload of `.string`, else nil.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The payload of `.int`, else nil.
    public var intValue: Int? {
        if case .int(let i) = self { return i }
        return nil
    }

    /// The payload of `.double`, else nil.
    public var doubleValue: Double? {
        if case .double(let d) = self { return d }
        return nil
    }

    /// The payload of `.bool`, else nil.
    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    /// The elements of `.array`, else nil.
    public var arrayValue: [TemplateValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// The payload of `.dictionary`, else nil.
    public var dictionaryValue: TemplateDictionary? {
        if case .dictionary(let d) = self { return d }
        return nil
    }

    /// True for `.undefined`.
    public var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    /// True for `.none`.
    public var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}

extension TemplateValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .none }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: TemplateValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self = .dictionary(TemplateDictionary(elements))
    }
}

extension TemplateValue {
    /// `.string(value)`, or `.none` for nil.
    public init(_ value: String?) { self = value.map { .string($0) } ?? .none }
    /// `.int(value)`.
    public init(_ value: Int) { self = .int(value) }
    /// `.double(value)`.
    public init(_ value: Double) { self = .double(value) }
    /// `.bool(value)`.
    public init(_ value: Bool) { self = .bool(value) }
    /// `.array(values)`.
    public init(_ values: [TemplateValue]) { self = .array(values) }
    /// A dictionary value; key order follows the Swift dictionary's iteration order, so prefer
    /// `TemplateDictionary` or a dictionary literal when order matters (it does for `tojson`).
    public init(_ values: [String: TemplateValue]) {
        self = .dictionary(TemplateDictionary(values.map { ($0.key, $0.value) }))
    }
    /// `.dictionary(values)`.
    public init(_ values: TemplateDictionary) { self = .dictionary(values) }
}

/// A string-keyed dictionary that remembers insertion order, like a Python dict.
///
/// Assigning to an existing key keeps its position; removing a key (assigning nil) drops it.
/// Equality ignores order, as Python's dict equality does. Small dictionaries (chat messages) are
/// searched linearly; larger ones keep a hash index.
public struct TemplateDictionary: Sendable, Equatable, ExpressibleByDictionaryLiteral, Sequence {
    private var entries: [(key: String, value: TemplateValue)]
    private var index: [String: Int]?

    private static let indexThreshold = 12

    /// An empty dictionary.
    public init() {
        entries = []
        index = nil
    }

    /// A dictionary from ordered pairs. A repeated key keeps its first position and its last value,
    /// as `dict([...])` does in Python.
    public init(_ pairs: [(String, TemplateValue)]) {
        entries = []
        index = nil
        entries.reserveCapacity(pairs.count)
        for (k, v) in pairs { self[k] = v }
    }

    public init(dictionaryLiteral elements: (String, TemplateValue)...) {
        self.init(elements)
    }

    /// The number of entries.
    public var count: Int { entries.count }

    /// True when there are no entries.
    public var isEmpty: Bool { entries.isEmpty }

    /// The keys in order.
    public var keys: [String] { entries.map(\.key) }

    /// The values in key order.
    public var values: [TemplateValue] { entries.map(\.value) }

    /// The entries in key order.
    public var pairs: [(key: String, value: TemplateValue)] { entries }

    private func position(of key: String) -> Int? {
        if let index { return index[key] }
        for i in entries.indices where entries[i].key == key { return i }
        return nil
    }

    private mutating func rebuildIndex() {
        guard entries.count > Self.indexThreshold else {
            index = nil
            return
        }
        var built: [String: Int] = [:]
        built.reserveCapacity(entries.count)
        for (i, e) in entries.enumerated() { built[e.key] = i }
        index = built
    }

    /// The value for `key`, nil if absent. Setting nil removes the entry.
    public subscript(key: String) -> TemplateValue? {
        get {
            guard let i = position(of: key) else { return nil }
            return entries[i].value
        }
        set {
            if let newValue {
                if let i = position(of: key) {
                    entries[i].value = newValue
                } else {
                    entries.append((key, newValue))
                    if index != nil {
                        index![key] = entries.count - 1
                    } else if entries.count > Self.indexThreshold {
                        rebuildIndex()
                    }
                }
            } else if let i = position(of: key) {
                entries.remove(at: i)
                rebuildIndex()
            }
        }
    }

    public func makeIterator() -> IndexingIterator<[(key: String, value: TemplateValue)]> {
        entries.makeIterator()
    }

    public static func == (lhs: TemplateDictionary, rhs: TemplateDictionary) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (k, v) in lhs.entries {
            guard let w = rhs[k], v == w else { return false }
        }
        return true
    }
}

/// An engine-internal value: a `namespace(...)`, the `loop` variable of a for loop, a global
/// function, a bound method or a macro. Opaque outside the engine.
public struct TemplateObject: Sendable, Equatable {
    enum Kind: Sendable, Equatable {
        /// A namespace, by its slot in the renderer's namespace table.
        case namespace(Int)
        /// The `loop` variable.
        case loop(LoopState)
        /// A global function such as `range` or `raise_exception`.
        case builtin(String)
        /// A method bound to its receiver, such as `'a b'.split`.
        case method(receiver: TemplateValue, name: String)
        /// A macro defined in the template, by index.
        case macro(Int)
    }

    let kind: Kind

    init(_ kind: Kind) { self.kind = kind }
}

/// The state behind a for loop's `loop` variable.
struct LoopState: Sendable, Equatable {
    var items: [TemplateValue]
    var index0: Int
    var depth0: Int
}
