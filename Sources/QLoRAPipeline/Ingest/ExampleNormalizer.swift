import Foundation
import QLoRAFormats

/// Why a row was rejected; the raw values appear in `rejected.jsonl` and `stats.json`.
public enum RejectionReason: String, Sendable, CaseIterable, Codable {
    case invalidJSON = "invalid_json"
    case truncatedLine = "truncated_line"
    case invalidUTF8 = "invalid_utf8"
    case notAnObject = "not_an_object"
    case missingField = "missing_field"
    case emptyField = "empty_field"
    case wrongType = "wrong_type"
    case unknownRole = "unknown_role"
    case noAssistantMessage = "no_assistant_message"
    case malformedGuanaco = "malformed_guanaco"
    case csvColumnCount = "csv_column_count"
    /// A CSV record with a NUL byte (a JSON row with one is `invalid_json`).
    case nulByte = "nul_byte"
    /// A JSONL line longer than `IngestReader.maxRowBytes` (skipped without being held in memory).
    case rowTooLong = "row_too_long"
}

public struct Rejection: Error, Sendable, Equatable {
    public var reason: RejectionReason
    public var detail: String
    public init(_ reason: RejectionReason, _ detail: String) {
        self.reason = reason
        self.detail = detail
    }
}

/// Turns one parsed row (a JSON object; CSV rows arrive as objects of strings) of a given format into an
/// `Example.Content`, or a `Rejection` saying exactly what is wrong.
public struct ExampleNormalizer: Sendable {
    public let format: DatasetFormat
    private let names: [String: String]

    public init(format: DatasetFormat, fieldMap: [String: String]) {
        self.format = format
        var names: [String: String] = [:]
        for field in Self.schemaFields(format) { names[field] = fieldMap[field] ?? field }
        self.names = names
    }

    /// Field names of each format's schema (the keys `field_map` may rename).
    public static func schemaFields(_ format: DatasetFormat) -> [String] {
        switch format {
        case .alpaca: return ["instruction", "input", "output"]
        case .chat: return ["messages", "role", "content"]
        case .completion: return ["prompt", "completion"]
        case .guanaco, .text: return ["text"]
        }
    }

    /// Name of a schema field in the file.
    public func column(_ field: String) -> String { names[field] ?? field }

    public func normalize(_ row: JSONValue) -> Result<Example.Content, Rejection> {
        guard case .object(let object) = row else {
            return .failure(Rejection(.notAnObject, "expected a JSON object, got \(row.typeName)"))
        }
        do {
            switch format {
            case .alpaca:
                let instruction = try string(object, "instruction", nonEmpty: true)
                let input = try optionalString(object, "input") ?? ""
                let output = try string(object, "output", nonEmpty: true)
                let user = isBlank(input) ? instruction : instruction + "\n\n" + input
                return .success(.messages([.init(role: .user, content: user), .init(role: .assistant, content: output)]))
            case .chat:
                return .success(.messages(try messages(object)))
            case .completion:
                let prompt = try string(object, "prompt", nonEmpty: false)
                let completion = try string(object, "completion", nonEmpty: true)
                return .success(.completion(prompt: prompt, completion: completion))
            case .guanaco:
                return .success(.messages(try Self.guanacoTurns(try string(object, "text", nonEmpty: true))))
            case .text:
                return .success(.text(try string(object, "text", nonEmpty: true)))
            }
        } catch let rejection as Rejection {
            return .failure(rejection)
        } catch {
            preconditionFailure("unexpected error \(error)")
        }
    }

    private func isBlank(_ s: String) -> Bool { s.unicodeScalars.allSatisfy { $0.properties.isWhitespace } }

    private func string(_ o: JSONObject, _ field: String, nonEmpty: Bool) throws -> String {
        let key = column(field)
        guard let value = o[key] else { throw Rejection(.missingField, "missing field `\(key)`") }
        guard case .string(let s) = value else {
            throw Rejection(.wrongType, "field `\(key)` must be a string, got \(value.typeName)")
        }
        if nonEmpty && isBlank(s) { throw Rejection(.emptyField, "field `\(key)` is empty") }
        return s
    }

    private func optionalString(_ o: JSONObject, _ field: String) throws -> String? {
        let key = column(field)
        guard let value = o[key] else { return nil }
        switch value {
        case .null: return nil
        case .string(let s): return s
        default: throw Rejection(.wrongType, "field `\(key)` must be a string, got \(value.typeName)")
        }
    }

    private func messages(_ o: JSONObject) throws -> [Example.Message] {
        let key = column("messages"), roleKey = column("role"), contentKey = column("content")
        guard let value = o[key] else { throw Rejection(.missingField, "missing field `\(key)`") }
        guard case .array(let items) = value else {
            throw Rejection(.wrongType, "field `\(key)` must be an array, got \(value.typeName)")
        }
        if items.isEmpty { throw Rejection(.emptyField, "field `\(key)` is empty") }
        var out: [Example.Message] = []
        for (i, item) in items.enumerated() {
            let at = "\(key)[\(i)]"
            guard case .object(let m) = item else {
                throw Rejection(.wrongType, "`\(at)` must be an object, got \(item.typeName)")
            }
            guard let roleValue = m[roleKey] else { throw Rejection(.missingField, "missing field `\(at).\(roleKey)`") }
            guard case .string(let roleName) = roleValue else {
                throw Rejection(.wrongType, "`\(at).\(roleKey)` must be a string, got \(roleValue.typeName)")
            }
            guard let role = Example.Role(rawValue: roleName) else {
                throw Rejection(.unknownRole, "`\(at).\(roleKey)` is `\(roleName)`; expected system, user or assistant")
            }
            guard let contentValue = m[contentKey] else {
                throw Rejection(.missingField, "missing field `\(at).\(contentKey)`")
            }
            guard case .string(let content) = contentValue else {
                throw Rejection(.wrongType, "`\(at).\(contentKey)` must be a string, got \(contentValue.typeName)")
            }
            if isBlank(content) { throw Rejection(.emptyField, "`\(at).\(contentKey)` is empty") }
            out.append(.init(role: role, content: content))
        }
        if !out.contains(where: { $0.role == .assistant }) {
            throw Rejection(.noAssistantMessage, "no assistant message: nothing to train on")
        }
        return out
    }

    /// Splits `### Human: … ### Assistant: …` text (the QLoRA paper's Guanaco format) into alternating
    /// user/assistant turns, each trimmed. The text must start with a Human turn and contain an Assistant turn.
    static func guanacoTurns(_ text: String) throws -> [Example.Message] {
        let human = "### Human:", assistant = "### Assistant:"
        var turns: [Example.Message] = []
        var rest = Substring(text)
        // Leading whitespace before the first marker is allowed; anything else is not.
        rest = rest.drop(while: { $0.isWhitespace })
        guard rest.hasPrefix(human) else {
            throw Rejection(.malformedGuanaco, "text must start with `\(human)`")
        }
        var expectUser = true
        while !rest.isEmpty {
            let marker = expectUser ? human : assistant
            guard rest.hasPrefix(marker) else {
                throw Rejection(.malformedGuanaco, "expected `\(marker)` for turn \(turns.count + 1)")
            }
            rest = rest.dropFirst(marker.count)
            let nextHuman = rest.range(of: human)?.lowerBound ?? rest.endIndex
            let nextAssistant = rest.range(of: assistant)?.lowerBound ?? rest.endIndex
            let end = min(nextHuman, nextAssistant)
            let body = rest[..<end].trimmingCharacters(in: .whitespacesAndNewlines)
            if body.isEmpty { throw Rejection(.malformedGuanaco, "turn \(turns.count + 1) is empty") }
            turns.append(.init(role: expectUser ? .user : .assistant, content: body))
            rest = rest[end...]
            expectUser.toggle()
        }
        if !turns.contains(where: { $0.role == .assistant }) {
            throw Rejection(.malformedGuanaco, "no `\(assistant)` turn")
        }
        return turns
    }
}
