// Renders Hugging Face chat templates (`chat_template` in tokenizer_config.json) the way
// transformers does: jinja2's ImmutableSandboxedEnvironment with trim_blocks=True,
// lstrip_blocks=True and the loopcontrols extension (`break`/`continue`), plus transformers'
// `{% generation %}` tag (rendered as its body), its `tojson` filter, and the globals
// `raise_exception(message)` and `strftime_now(format)`.
//
// Supported Jinja: `{{ }}`, `{% %}`, `{# #}`, whitespace control (`-`/`+`), `{% raw %}`; statements
// `if/elif/else`, `for ... in ... [if ...]` with `else`, `loop.*`, `break`, `continue`, `set`
// (including `ns.attr = ...` with `namespace(...)`, tuple unpacking and block set), `macro`, `with`,
// `filter`; literals, lists, dicts, attribute and item access, slices, arithmetic, `~`, comparisons,
// `in`, `and/or/not`, conditional expressions, calls, filters and tests (TemplateBuiltins.swift),
// str/dict/list methods, and jinja2's default `Undefined` semantics.
//
// Deliberately not supported (a template using them fails with a syntax or runtime error, or the
// noted difference shows): `include`/`import`/`extends`/`block`, call blocks (`{% call %}`, `caller`),
// recursive loops, `loop.changed`, `*args`/`**kwargs` in calls and macro `varargs`/`kwargs`, the `do`
// and i18n extensions, dict keys other than strings, integers beyond 64 bits, `str.format` specs.
// Tuples are lists, and `select`/`map`/`range`/`dict.items()` return lists where Python returns
// generators or views: the same when iterated, joined, counted or serialized, but `{{ (1, 2) }}`
// prints `[1, 2]` instead of `(1, 2)`. An unclosed block is reported at the line that opened it
// (jinja2 reports the end of the template).

import Foundation

/// A compiled chat template: parse once, render many times.
public struct ChatTemplate: Sendable {
    /// The Jinja source the template was compiled from.
    public let source: String
    /// The name used in error messages ("chat_template" by default).
    public let name: String
    /// The clock behind `strftime_now`; defaults to the current time. Tests inject a fixed date.
    public var now: @Sendable () -> Date = { Date() }
    /// The time zone `strftime_now` formats in (Python's `datetime.now()` uses local time).
    public var timeZone: TimeZone = .current

    let program: TemplateProgram

    /// Compiles `source`. Throws a `.syntax` error naming the line for unclosed or unknown tags,
    /// unexpected tokens and unknown filters or tests.
    public init(_ source: String, name: String = "chat_template") throws(TemplateError) {
        self.source = source
        self.name = name
        self.program = try TemplateParser.parse(source, name: name)
    }

    /// Renders with the given top-level variables.
    public func render(_ context: [String: TemplateValue]) throws(TemplateError) -> String {
        var renderer = TemplateRenderer(program: program, context: context, now: now, timeZone: timeZone)
        do {
            return try renderer.render()
        } catch {
            throw TemplateError(kind: error.kind, templateName: name, line: error.line ?? 1, message: error.message)
        }
    }

    /// Renders a conversation with the variables transformers' `apply_chat_template` passes:
    /// `messages`, `add_generation_prompt`, `tools` and `documents` (None), `bos_token` and
    /// `eos_token` (left undefined when nil), then `extra` (which may override any of them, e.g.
    /// `tools` or `date_string`).
    public func render(
        messages: [[String: TemplateValue]], addGenerationPrompt: Bool, bosToken: String?, eosToken: String?,
        extra: [String: TemplateValue] = [:]
    ) throws(TemplateError) -> String {
        var context: [String: TemplateValue] = [
            "messages": .array(messages.map { message in
                .dictionary(TemplateDictionary(Self.orderedMessagePairs(message)))
            }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "tools": .none,
            "documents": .none,
        ]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (k, v) in extra { context[k] = v }
        return try render(context)
    }

    /// Message keys in a stable order: `role`, `content`, then the rest sorted (Swift dictionaries
    /// are unordered; the order only shows when a template prints or serializes a whole message).
    private static func orderedMessagePairs(_ message: [String: TemplateValue]) -> [(String, TemplateValue)] {
        var pairs: [(String, TemplateValue)] = []
        for key in ["role", "content"] { if let v = message[key] { pairs.append((key, v)) } }
        for key in message.keys.sorted() where key != "role" && key != "content" { pairs.append((key, message[key]!)) }
        return pairs
    }
}
