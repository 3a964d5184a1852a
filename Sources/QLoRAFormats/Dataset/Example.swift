/// One training example after ingest, in the schema every later stage reads (`train.jsonl`,
/// `eval.jsonl`, one JSON object per line, keys in this order):
///
///     {"id":"<32 hex>","source":"data.jsonl:12","format":"chat","messages":[{"role":"user","content":"…"},…]}
///     {"id":"…","source":"…","format":"completion","prompt":"…","completion":"…"}
///     {"id":"…","source":"…","format":"text","text":"…"}
///
/// `alpaca` and `guanaco` rows become `messages` (user, assistant); `format` keeps the original format.
/// `id` is the first 128 bits of SHA-256 over the canonical content (everything but id, source and
/// format), so identical content has the same id wherever it came from: it drives dedupe and the
/// train/eval split.
public struct Example: Sendable, Equatable {
    public enum Role: String, Sendable, CaseIterable { case system, user, assistant }

    public struct Message: Sendable, Equatable {
        public var role: Role
        public var content: String
        public init(role: Role, content: String) {
            self.role = role
            self.content = content
        }
    }

    public enum Content: Sendable, Equatable {
        case messages([Message])
        case completion(prompt: String, completion: String)
        case text(String)
    }

    public var id: String
    public var source: String
    public var format: String
    public var content: Content

    public init(id: String, source: String, format: String, content: Content) {
        self.id = id
        self.source = source
        self.format = format
        self.content = content
    }

    /// The canonical content bytes that `id` hashes: `{"messages":[…]}`, `{"prompt":…,"completion":…}`
    /// or `{"text":…}`, compact JSON.
    public static func canonicalContent(_ content: Content, into out: inout [UInt8]) {
        switch content {
        case .messages(let messages):
            out.append(contentsOf: Array(#"{"messages":["#.utf8))
            for (i, m) in messages.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                out.append(contentsOf: Array(#"{"role":""#.utf8))
                out.append(contentsOf: Array(m.role.rawValue.utf8))
                out.append(contentsOf: Array(#"","content":"#.utf8))
                JSONWriter.writeString(m.content, into: &out)
                out.append(UInt8(ascii: "}"))
            }
            out.append(contentsOf: Array("]}".utf8))
        case .completion(let prompt, let completion):
            out.append(contentsOf: Array(#"{"prompt":"#.utf8))
            JSONWriter.writeString(prompt, into: &out)
            out.append(contentsOf: Array(#","completion":"#.utf8))
            JSONWriter.writeString(completion, into: &out)
            out.append(UInt8(ascii: "}"))
        case .text(let text):
            out.append(contentsOf: Array(#"{"text":"#.utf8))
            JSONWriter.writeString(text, into: &out)
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Writes the example as one JSONL line (with the trailing newline), given its canonical content bytes.
    public static func writeLine(id: String, source: String, format: String, canonicalContent: [UInt8],
                                 into out: inout [UInt8]) {
        out.append(contentsOf: Array(#"{"id":""#.utf8))
        out.append(contentsOf: Array(id.utf8))
        out.append(contentsOf: Array(#"","source":"#.utf8))
        JSONWriter.writeString(source, into: &out)
        out.append(contentsOf: Array(#","format":"#.utf8))
        JSONWriter.writeString(format, into: &out)
        out.append(UInt8(ascii: ","))
        // Splice the content object's members after ours: drop its opening brace.
        out.append(contentsOf: canonicalContent[1...])
        out.append(UInt8(ascii: "\n"))
    }

    /// Reads one line of `train.jsonl`/`eval.jsonl`.
    public init(json value: JSONValue) throws(ExampleDecodingError) {
        guard case .object(let o) = value else { throw ExampleDecodingError("not an object") }
        func string(_ key: String) throws(ExampleDecodingError) -> String {
            guard case .string(let s)? = o[key] else { throw ExampleDecodingError("`\(key)` is missing or not a string") }
            return s
        }
        id = try string("id")
        source = try string("source")
        format = try string("format")
        if case .array(let items)? = o["messages"] {
            var messages: [Message] = []
            for item in items {
                guard case .object(let m) = item, case .string(let r)? = m["role"], let role = Role(rawValue: r),
                      case .string(let c)? = m["content"] else { throw ExampleDecodingError("malformed message") }
                messages.append(Message(role: role, content: c))
            }
            content = .messages(messages)
        } else if o["prompt"] != nil {
            content = .completion(prompt: try string("prompt"), completion: try string("completion"))
        } else {
            content = .text(try string("text"))
        }
    }

    /// Length in Unicode scalars of all content strings (the unit of ingest's length statistics).
    public static func characterCount(_ content: Content) -> Int {
        switch content {
        case .messages(let ms): return ms.reduce(0) { $0 + scalarCount($1.content) }
        case .completion(let p, let c): return scalarCount(p) + scalarCount(c)
        case .text(let t): return scalarCount(t)
        }
    }

    /// Unicode scalars in `s`: the UTF-8 bytes that are not continuation bytes (`10xxxxxx`).
    static func scalarCount(_ s: String) -> Int {
        var s = s
        return s.withUTF8 { bytes in
            var n = 0
            for b in bytes where b & 0xC0 != 0x80 { n += 1 }
            return n
        }
    }
}

public struct ExampleDecodingError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
