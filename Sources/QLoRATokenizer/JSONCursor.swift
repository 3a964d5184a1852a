import QLoRAFormats

/// Reads a parsed tokenizer.json with a JSON path for every error (`pre_tokenizer.pretokenizers[1].type`).
struct JSONCursor {
    let value: JSONValue
    let path: String
    let file: String

    func fail(_ message: String) -> TokenizerError { TokenizerError(file: file, path: path, message) }

    func child(_ key: String) -> JSONCursor? {
        guard case .object(let o) = value, let v = o[key] else { return nil }
        return JSONCursor(value: v, path: path.isEmpty ? key : "\(path).\(key)", file: file)
    }

    /// The member `key`, failing if absent (null counts as absent unless `allowNull`).
    func require(_ key: String) throws(TokenizerError) -> JSONCursor {
        guard case .object = value else { throw fail("expected an object, got \(value.typeName)") }
        guard let c = child(key), c.value != .null else {
            throw TokenizerError(file: file, path: path.isEmpty ? key : "\(path).\(key)", "missing")
        }
        return c
    }

    /// The member `key` unless absent or null.
    func optional(_ key: String) -> JSONCursor? {
        guard let c = child(key), c.value != .null else { return nil }
        return c
    }

    var string: String {
        get throws(TokenizerError) {
            guard case .string(let s) = value else { throw fail("expected a string, got \(value.typeName)") }
            return s
        }
    }

    var bool: Bool {
        get throws(TokenizerError) {
            guard case .bool(let b) = value else { throw fail("expected true or false, got \(value.typeName)") }
            return b
        }
    }

    var int: Int {
        get throws(TokenizerError) {
            guard case .number(let d) = value, d == d.rounded(), abs(d) < 1e15 else {
                throw fail("expected an integer, got \(value.typeName)")
            }
            return Int(d)
        }
    }

    var array: [JSONCursor] {
        get throws(TokenizerError) {
            guard case .array(let items) = value else { throw fail("expected an array, got \(value.typeName)") }
            return items.enumerated().map { JSONCursor(value: $0.element, path: "\(path)[\($0.offset)]", file: file) }
        }
    }

    var object: JSONObject {
        get throws(TokenizerError) {
            guard case .object(let o) = value else { throw fail("expected an object, got \(value.typeName)") }
            return o
        }
    }

    func string(_ key: String) throws(TokenizerError) -> String { try require(key).string }

    func bool(_ key: String, default d: Bool) throws(TokenizerError) -> Bool {
        guard let c = optional(key) else { return d }
        return try c.bool
    }

    /// The `type` tag of a component.
    var type: String {
        get throws(TokenizerError) { try require("type").string }
    }
}
