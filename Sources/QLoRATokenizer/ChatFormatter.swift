import QLoRAFormats

/// Renders conversations with a chat template and splits the rendering into masked (prompt) and
/// trained (assistant) segments.
///
/// Masking rule (the same one `scripts/reference/make_tokenize_goldens.py` implements): for each
/// assistant message k, the prompt part is `render(messages[..<k], add_generation_prompt: true)` and
/// the trained part is what `render(messages[...k])` adds to it. Text between one assistant turn and
/// the next prompt is masked; messages after the last assistant turn are dropped. Each part must be a
/// prefix of the next rendering (else `ChatFormatter.Error.notPrefixConsistent`), which is what makes
/// the training rendering agree with what inference will see.
public struct ChatFormatter: Sendable {
    public enum Error: Swift.Error, CustomStringConvertible {
        case notPrefixConsistent(turn: Int)
        case noAssistantMessage
        case template(String)

        public var description: String {
            switch self {
            case .notPrefixConsistent(let turn):
                return "the chat template's rendering of message \(turn) does not extend the rendering of the messages before it (not prefix-consistent); the prompt/response split is undefined"
            case .noAssistantMessage: return "no assistant message"
            case .template(let m): return m
            }
        }
    }

    public let template: ChatTemplate
    /// `model`, `chatml`, `llama3`, `alpaca`: which template is in use.
    public let templateName: String
    public let templateSource: String
    public let bosToken: String?
    public let eosToken: String?

    /// `choice` is `model` (the tokenizer's own template; ChatML if it has none), or a built-in name.
    public init(tokenizer: Tokenizer, choice: String) throws {
        var source: String
        var name = choice
        switch choice {
        case "model":
            if let own = tokenizer.chatTemplate {
                source = own
            } else {
                source = BuiltinChatTemplates.chatml
                name = "chatml (the tokenizer has no chat template)"
            }
        case "chatml": source = BuiltinChatTemplates.chatml
        case "llama3": source = BuiltinChatTemplates.llama3
        case "alpaca": source = BuiltinChatTemplates.alpaca
        default: throw Error.template("unknown chat template `\(choice)` (model, chatml, llama3 or alpaca)")
        }
        templateSource = source
        templateName = name
        template = try ChatTemplate(source, name: "chat_template")
        bosToken = tokenizer.bosToken
        eosToken = tokenizer.eosToken
    }

    public func render(_ messages: [Example.Message], addGenerationPrompt: Bool) throws -> String {
        let values: [[String: TemplateValue]] = messages.map { ["role": .string($0.role.rawValue), "content": .string($0.content)] }
        return try template.render(messages: values, addGenerationPrompt: addGenerationPrompt, bosToken: bosToken, eosToken: eosToken)
    }

    /// (text, trained) parts whose concatenation is the rendering of the conversation up to its last
    /// assistant message.
    public func segments(_ messages: [Example.Message]) throws -> [(text: String, trained: Bool)] {
        guard let last = messages.lastIndex(where: { $0.role == .assistant }) else { throw Error.noAssistantMessage }
        var out: [(text: String, trained: Bool)] = []
        var consumed: [UInt8] = []
        for k in 0...last where messages[k].role == .assistant {
            let prompt = Array(try render(Array(messages[..<k]), addGenerationPrompt: true).utf8)
            let full = Array(try render(Array(messages[...k]), addGenerationPrompt: false).utf8)
            guard prompt.starts(with: consumed), full.starts(with: prompt) else { throw Error.notPrefixConsistent(turn: k) }
            if prompt.count > consumed.count { out.append((String(decoding: prompt[consumed.count...], as: UTF8.self), false)) }
            out.append((String(decoding: full[prompt.count...], as: UTF8.self), true))
            consumed = full
        }
        return out
    }
}
