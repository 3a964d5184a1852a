import Yams

/// A closed set of string values in a spec (`format: alpaca`). Decoding an unknown value names the
/// allowed ones and suggests the closest.
public protocol SpecEnum: CaseIterable, RawRepresentable, Codable, Sendable where RawValue == String {}

/// Decodes job-spec types from a Yams node tree, strictly:
/// - every mapping is checked against the type's `CodingKeys` (which must be `CaseIterable`), so an
///   unknown key is an error with a did-you-mean suggestion rather than being ignored;
/// - every error carries the file, line, column and key path;
/// - booleans are `true`/`false` only (no YAML 1.1 `yes`/`on` surprises);
/// - the position of every key is recorded in `marks` so later range checks can point at it;
/// - a node whose tag is not one of YAML's core schema (`!!python/object:…`, `!!binary`, `!custom`)
///   is an error: a spec is data, and a tag asks a loader to construct something else.
final class SpecDecoder {
    let file: String
    private(set) var marks: [String: Mark] = [:]

    init(file: String) { self.file = file }

    func decode<T: Decodable>(_ type: T.Type, from node: Node) throws -> T {
        marks[""] = node.mark
        try refuseTags(node, path: [])
        return try decodeValue(type, node: node, path: [])
    }

    /// The tags a node may carry, explicitly (`!!str 5`) or as resolved from a plain scalar.
    static let coreTags: Set<String> = ["str", "int", "float", "bool", "null", "map", "seq", "timestamp", "merge", "value"]
        .reduce(into: []) { $0.insert("tag:yaml.org,2002:" + $1) }

    /// Throws at the first node (document order) whose tag is not in `coreTags`.
    private func refuseTags(_ node: Node, path: [PathComponent]) throws {
        if case .alias = node { return }  // refused by `decodeValue`
        let tag = node.tag.description
        if !Self.coreTags.contains(tag) {
            let shown = tag.hasPrefix("tag:yaml.org,2002:") ? "!!" + tag.dropFirst("tag:yaml.org,2002:".count) : tag
            throw error(path, node.mark, "YAML tag `\(shown)` is not allowed in a job spec (only plain values: strings, numbers, booleans, null, lists and mappings)")
        }
        switch node {
        case .mapping(let mapping):
            for (key, value) in mapping {
                let name = key.string ?? "?"
                try refuseTags(key, path: path + [.key(name)])
                try refuseTags(value, path: path + [.key(name)])
            }
        case .sequence(let sequence):
            for (i, item) in sequence.enumerated() { try refuseTags(item, path: path + [.index(i)]) }
        case .scalar, .alias:
            break
        }
    }

    func error(_ path: [PathComponent], _ mark: Mark?, _ message: String) -> SpecError {
        SpecError(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1,
                  keyPath: PathComponent.render(path), message: message)
    }

    func decodeValue<T: Decodable>(_ type: T.Type, node: Node, path: [PathComponent]) throws -> T {
        if case .alias = node { throw error(path, node.mark, "YAML aliases are not supported in job specs") }
        if let enumType = type as? any SpecEnum.Type {
            return try decodeEnum(enumType, node: node, path: path) as! T
        }
        if T.self == String.self { return try scalarString(node, path: path, expected: "a string") as! T }
        if T.self == Bool.self { return try decodeBool(node, path: path) as! T }
        if T.self == Int.self { return try decodeInt(node, path: path) as! T }
        if T.self == Double.self { return try decodeDouble(node, path: path) as! T }
        if T.self == [String: String].self { return try decodeStringMap(node, path: path) as! T }
        return try T(from: NodeDecoder(owner: self, node: node, path: path))
    }

    private func decodeEnum<E: SpecEnum>(_ type: E.Type, node: Node, path: [PathComponent]) throws -> E {
        let allowed = E.allCases.map(\.rawValue)
        let raw = try scalarString(node, path: path, expected: "one of \(allowed.map { "`\($0)`" }.joined(separator: ", "))")
        if let value = E(rawValue: raw) { return value }
        var message = "`\(raw)` is not one of \(allowed.map { "`\($0)`" }.joined(separator: ", "))"
        if let s = Suggestion.closest(to: raw, in: allowed) { message += "; did you mean `\(s)`?" }
        throw error(path, node.mark, message)
    }

    /// A free-form `key: value` mapping of strings (e.g. `field_map`), keys in any order.
    private func decodeStringMap(_ node: Node, path: [PathComponent]) throws -> [String: String] {
        guard case .mapping(let mapping) = node else {
            throw error(path, node.mark, "expected a mapping of strings, got \(describe(node))")
        }
        var out: [String: String] = [:]
        for (k, v) in mapping {
            let key = try scalarString(k, path: path, expected: "a key")
            record(path + [.key(key)], k.mark)
            out[key] = try scalarString(v, path: path + [.key(key)], expected: "a string")
        }
        return out
    }

    func scalarString(_ node: Node, path: [PathComponent], expected: String) throws -> String {
        guard case .scalar(let scalar) = node else {
            throw error(path, node.mark, "expected \(expected), got \(describe(node))")
        }
        if scalar.style == .plain, ["~", "null", "Null", "NULL", ""].contains(scalar.string) {
            throw error(path, node.mark, "expected \(expected), got null")
        }
        return scalar.string
    }

    private func decodeBool(_ node: Node, path: [PathComponent]) throws -> Bool {
        let s = try scalarString(node, path: path, expected: "true or false")
        switch s {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: throw error(path, node.mark, "expected true or false, got `\(s)`")
        }
    }

    private func decodeInt(_ node: Node, path: [PathComponent]) throws -> Int {
        let s = try scalarString(node, path: path, expected: "an integer")
        if let v = Int(s.replacingOccurrences(of: "_", with: "")) { return v }
        throw error(path, node.mark, "expected an integer, got `\(s)`")
    }

    private func decodeDouble(_ node: Node, path: [PathComponent]) throws -> Double {
        let s = try scalarString(node, path: path, expected: "a number")
        if let v = Double(s.replacingOccurrences(of: "_", with: "")), v.isFinite { return v }
        throw error(path, node.mark, "expected a finite number, got `\(s)`")
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): return "`\(s.string)`"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    func record(_ path: [PathComponent], _ mark: Mark?) {
        if let mark { marks[PathComponent.render(path)] = mark }
    }
}

/// One step of a key path: a mapping key or a list index.
enum PathComponent: Sendable {
    case key(String)
    case index(Int)

    static func render(_ path: [PathComponent]) -> String {
        var out = ""
        for component in path {
            switch component {
            case .key(let k): out += out.isEmpty ? k : ".\(k)"
            case .index(let i): out += "[\(i)]"
            }
        }
        return out
    }

    var codingKey: any CodingKey {
        switch self {
        case .key(let k): return AnyKey(stringValue: k)
        case .index(let i): return AnyKey(intValue: i)
        }
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) { self.stringValue = "\(intValue)"; self.intValue = intValue }
}

private func keyNames<K: CaseIterable & CodingKey>(_ type: K.Type) -> [String] {
    K.allCases.map(\.stringValue)
}

/// The `Decoder` that `Decodable` initializers see; it delegates to `SpecDecoder`.
struct NodeDecoder: Decoder {
    let owner: SpecDecoder
    let node: Node
    let path: [PathComponent]
    var codingPath: [any CodingKey] { path.map(\.codingKey) }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .mapping(let mapping) = node else {
            throw owner.error(path, node.mark, "expected a mapping, got \(owner.describe(node))")
        }
        var entries: [String: (key: Node, value: Node)] = [:]
        for (k, v) in mapping {
            let name = try owner.scalarString(k, path: path, expected: "a key")
            entries[name] = (k, v)
        }
        if let iterable = Key.self as? any (CaseIterable & CodingKey).Type {
            let known = keyNames(iterable)
            // Report unknown keys in document order.
            for (k, _) in mapping {
                let name = k.string ?? ""
                if known.contains(name) { continue }
                let here = path + [.key(name)]
                var message = "unknown key `\(name)`"
                if let s = Suggestion.closest(to: name, in: known) { message += "; did you mean `\(s)`?" }
                else { message += " (known keys: \(known.joined(separator: ", ")))" }
                throw owner.error(here, k.mark, message)
            }
        } else {
            preconditionFailure("spec type keyed by \(Key.self) must declare CaseIterable CodingKeys")
        }
        for (name, entry) in entries { owner.record(path + [.key(name)], entry.key.mark) }
        return KeyedDecodingContainer(KeyedNodeContainer<Key>(decoder: self, entries: entries))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .sequence(let sequence) = node else {
            throw owner.error(path, node.mark, "expected a list, got \(owner.describe(node))")
        }
        return UnkeyedNodeContainer(decoder: self, items: Array(sequence))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleNodeContainer(decoder: self)
    }
}

struct KeyedNodeContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: NodeDecoder
    let entries: [String: (key: Node, value: Node)]
    var codingPath: [any CodingKey] { decoder.codingPath }
    var allKeys: [Key] { entries.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { entries[key.stringValue] != nil }

    private func isNull(_ node: Node) -> Bool {
        if case .scalar(let s) = node, s.style == .plain, ["~", "null", "Null", "NULL", ""].contains(s.string) {
            return true
        }
        return false
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let entry = entries[key.stringValue] else { return true }
        return isNull(entry.value)
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let entry = entries[key.stringValue] else {
            throw decoder.owner.error(decoder.path, decoder.node.mark, "missing required key `\(key.stringValue)`")
        }
        return try decoder.owner.decodeValue(type, node: entry.value, path: decoder.path + [.key(key.stringValue)])
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let entry = entries[key.stringValue], !isNull(entry.value) else { return nil }
        return try decoder.owner.decodeValue(type, node: entry.value, path: decoder.path + [.key(key.stringValue)])
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey> {
        try superDecoder(forKey: key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try superDecoder(forKey: key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        guard let entry = entries[key.stringValue] else {
            throw decoder.owner.error(decoder.path, decoder.node.mark, "missing required key `\(key.stringValue)`")
        }
        return NodeDecoder(owner: decoder.owner, node: entry.value, path: decoder.path + [.key(key.stringValue)])
    }
}

struct UnkeyedNodeContainer: UnkeyedDecodingContainer {
    let decoder: NodeDecoder
    let items: [Node]
    var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    init(decoder: NodeDecoder, items: [Node]) {
        self.decoder = decoder
        self.items = items
    }

    mutating func decodeNil() throws -> Bool { false }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        guard !isAtEnd else { throw decoder.owner.error(decoder.path, decoder.node.mark, "list is too short") }
        let path = decoder.path + [.index(currentIndex)]
        decoder.owner.record(path, items[currentIndex].mark)
        let value = try decoder.owner.decodeValue(type, node: items[currentIndex], path: path)
        currentIndex += 1
        return value
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey> {
        try superDecoder().container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try superDecoder().unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        guard !isAtEnd else { throw decoder.owner.error(decoder.path, decoder.node.mark, "list is too short") }
        defer { currentIndex += 1 }
        return NodeDecoder(owner: decoder.owner, node: items[currentIndex], path: decoder.path + [.index(currentIndex)])
    }
}

struct SingleNodeContainer: SingleValueDecodingContainer {
    let decoder: NodeDecoder
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool {
        if case .scalar(let s) = decoder.node, s.style == .plain, ["~", "null", ""].contains(s.string) { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try decoder.owner.decodeValue(type, node: decoder.node, path: decoder.path)
    }
}
