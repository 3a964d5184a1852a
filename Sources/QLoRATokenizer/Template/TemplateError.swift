// Errors from compiling or rendering a chat template.

/// A template failed to compile (syntax) or to render (runtime error, or the template called
/// `raise_exception`). `description` reads "NAME line N: MESSAGE", for example
/// "chat_template line 3: Conversation roles must alternate user/assistant/user/assistant/...".
public struct TemplateError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The source does not parse: unclosed or unknown tags, unexpected tokens, unknown filters.
        case syntax
        /// Rendering failed: undefined values used, type errors, division by zero and the like.
        case runtime
        /// The template called `raise_exception(message)`; `message` is the template's text.
        case raised
    }

    public let kind: Kind
    /// The template's name as given to `ChatTemplate.init` ("chat_template" by default).
    public let templateName: String
    /// 1-based line in the template source where the error was detected.
    public let line: Int
    /// What went wrong; for `.raised` the exact message the template passed to `raise_exception`.
    public let message: String

    public init(kind: Kind, templateName: String, line: Int, message: String) {
        self.kind = kind
        self.templateName = templateName
        self.line = line
        self.message = message
    }

    public var description: String { "\(templateName) line \(line): \(message)" }
}
