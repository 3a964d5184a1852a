// Hand-written tests for the chat-template engine: public API, values, error reporting, the
// injectable clock, built-in templates and rendering speed. Expected strings were produced with
// jinja2 3.1.6 in transformers' environment (see TemplateConformanceTests.swift for the bulk
// feature-by-feature comparison and TemplateModelTests.swift for real model templates).

import Foundation
import QLoRAFormats
import QLoRATokenizer
import Testing

private let fixedDate = Date(timeIntervalSince1970: 1_725_372_309)  // 2024-09-03 14:05:09 UTC

private func render(_ source: String, _ context: [String: TemplateValue] = [:]) throws -> String {
    var template = try ChatTemplate(source)
    template.now = { fixedDate }
    template.timeZone = TimeZone(identifier: "UTC")!
    return try template.render(context)
}

private func error(_ source: String, _ context: [String: TemplateValue] = [:], name: String = "chat_template")
    -> TemplateError?
{
    do {
        let template = try ChatTemplate(source, name: name)
        _ = try template.render(context)
        return nil
    } catch {
        return error
    }
}

private let conversation: [[String: TemplateValue]] = [
    ["role": "system", "content": "Be brief."],
    ["role": "user", "content": " Hi "],
    ["role": "assistant", "content": "Hello!"],
    ["role": "user", "content": "Bye"],
]

@Suite("ChatTemplate rendering API")
struct TemplateAPITests {
    @Test("render(messages:) passes the variables transformers passes")
    func rendersWithTransformersVariables() throws {
        let template = try ChatTemplate(
            "{{ messages | length }} {{ add_generation_prompt }} {{ tools is none }} {{ documents is none }} "
                + "{{ bos_token }} {{ eos_token }}")
        let out = try template.render(
            messages: conversation, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
        #expect(out == "4 True True True <s> </s>")
    }

    @Test("Missing special tokens are undefined, not None")
    func nilTokensAreUndefined() throws {
        let template = try ChatTemplate("[{{ bos_token }}] {{ bos_token is defined }} {{ eos_token is undefined }}")
        let out = try template.render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil)
        #expect(out == "[] False True")
    }

    @Test("Extra variables are passed through and override the defaults")
    func extraVariablesOverride() throws {
        let template = try ChatTemplate("{{ tools | length }} {{ date_string }} {{ custom.flag }}")
        let out = try template.render(
            messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil,
            extra: ["tools": ["a", "b"], "date_string": "01 Jan 2025", "custom": ["flag": true]])
        #expect(out == "2 01 Jan 2025 True")
    }

    @Test("Message dictionaries list role and content first, then other keys sorted")
    func messageKeyOrder() throws {
        let template = try ChatTemplate("{{ messages[0] | tojson }}")
        let out = try template.render(
            messages: [["name": "bob", "content": "hi", "role": "user", "extra": 1]], addGenerationPrompt: false,
            bosToken: nil, eosToken: nil)
        #expect(out == #"{"role": "user", "content": "hi", "extra": 1, "name": "bob"}"#)
    }

    @Test("A compiled template renders many contexts and keeps its source and name")
    func parseOnceRenderMany() throws {
        let template = try ChatTemplate("{% for m in messages %}{{ m.content }};{% endfor %}", name: "mine")
        #expect(template.name == "mine")
        #expect(template.source.hasPrefix("{% for"))
        for n in 0..<5 {
            let messages = (0..<n).map { i -> [String: TemplateValue] in ["role": "user", "content": .string("m\(i)")] }
            let out = try template.render(messages: messages, addGenerationPrompt: false, bosToken: nil, eosToken: nil)
            #expect(out == (0..<n).map { "m\($0);" }.joined())
        }
    }

    @Test("One template renders concurrently from many tasks")
    func concurrentRendering() async throws {
        let template = try ChatTemplate(BuiltinChatTemplates.chatml)
        let outputs = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<16 {
                group.addTask {
                    try template.render(
                        messages: [["role": "user", "content": .string("task \(i)")]], addGenerationPrompt: true,
                        bosToken: nil, eosToken: nil)
                }
            }
            var all: [String] = []
            for try await out in group { all.append(out) }
            return all
        }
        #expect(Set(outputs).count == 16)
        #expect(outputs.allSatisfy { $0.hasSuffix("<|im_end|>\n<|im_start|>assistant\n") })
    }

    @Test("Top-level set does not leak into the next render")
    func renderStateIsFresh() throws {
        let template = try ChatTemplate("{{ x is defined }}{% set x = 1 %}")
        #expect(try template.render([:]) == "False")
        #expect(try template.render([:]) == "False")
    }
}

@Suite("TemplateValue and TemplateDictionary")
struct TemplateValueTests {
    @Test("Swift literals build template values")
    func literals() {
        let value: TemplateValue = ["a": 1, "b": [true, nil, 1.5, "x"]]
        guard case .dictionary(let d) = value else {
            Issue.record("not a dictionary")
            return
        }
        #expect(d.keys == ["a", "b"])
        #expect(d["a"] == .int(1))
        #expect(d["b"] == .array([.bool(true), .none, .double(1.5), .string("x")]))
        #expect(TemplateValue("s").stringValue == "s")
        #expect(TemplateValue(nil as String?) == .none)
        #expect(TemplateValue(3).intValue == 3)
        #expect(TemplateValue.undefined.isUndefined)
    }

    @Test("Dictionaries keep insertion order; reassigning keeps the position; removing drops it")
    func dictionaryOrder() {
        var d: TemplateDictionary = ["z": 1, "a": 2]
        d["m"] = 3
        d["z"] = 4
        #expect(d.keys == ["z", "a", "m"])
        #expect(d.values == [4, 2, 3])
        d["a"] = nil
        #expect(d.keys == ["z", "m"])
        #expect(d.count == 2)
        let dup = TemplateDictionary([("k", 1), ("j", 2), ("k", 3)])
        #expect(dup.keys == ["k", "j"])
        #expect(dup["k"] == 3)
    }

    @Test("Dictionary equality ignores order, like Python")
    func dictionaryEquality() {
        let a: TemplateDictionary = ["x": 1, "y": 2]
        let b: TemplateDictionary = ["y": 2, "x": 1]
        #expect(a == b)
        #expect(a != ["x": 1])
    }

    @Test("Large dictionaries stay ordered and searchable")
    func largeDictionary() {
        var d = TemplateDictionary()
        for i in (0..<100).reversed() { d["k\(i)"] = .int(i) }
        #expect(d.keys.first == "k99")
        #expect(d["k7"] == 7)
        d["k50"] = nil
        #expect(d["k50"] == nil)
        #expect(d["k49"] == 49)
        #expect(d.count == 99)
    }

    @Test("JSON values convert with integers as int and object order kept")
    func fromJSON() throws {
        let json = try JSONParser.parse(#"{"b": 1, "a": [1.5, true, null, "s"], "c": {"n": -2}}"#)
        let value = TemplateValue(json)
        #expect(try render("{{ v | tojson }}", ["v": value]) == #"{"b": 1, "a": [1.5, true, null, "s"], "c": {"n": -2}}"#)
    }
}

@Suite("Template error reporting")
struct TemplateErrorTests {
    @Test("raise_exception reports the template's message and line")
    func raiseException() throws {
        let source = """
            {{ bos_token }}
            {%- for message in messages %}
                {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
                    {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
                {%- endif %}
                {{- message['content'] }}
            {%- endfor %}
            """
        let template = try ChatTemplate(source)
        do {
            _ = try template.render(
                messages: [["role": "user", "content": "a"], ["role": "user", "content": "b"]],
                addGenerationPrompt: false, bosToken: "<s>", eosToken: "</s>")
            Issue.record("expected raise_exception")
        } catch {
            #expect(error.kind == .raised)
            #expect(error.line == 4)
            #expect(error.message == "Conversation roles must alternate user/assistant/user/assistant/...")
            #expect(
                error.description == "chat_template line 4: Conversation roles must alternate user/assistant/user/assistant/...")
        }
    }

    @Test("The template name given at init prefixes error descriptions")
    func customName() {
        let e = error("{{ raise_exception('boom') }}", name: "tokenizer_config.json chat_template")
        #expect(e?.description == "tokenizer_config.json chat_template line 1: boom")
    }

    @Test("Runtime errors name the line of the failing statement and the undefined value")
    func runtimeErrorLine() {
        let e = error(
            "{% for message in messages %}\n{{ message.role }}\n{{ message.content.text.upper() }}\n{% endfor %}",
            ["messages": [["role": "user", "content": "hi"]]])
        #expect(e?.kind == .runtime)
        #expect(e?.line == 3)
        #expect(e?.message.contains("message.content.text") == true)
    }

    @Test("Errors in if conditions, set values and macro bodies name their lines")
    func statementLines() {
        #expect(error("a\nb\n{% if 1 < 'x' %}{% endif %}")?.line == 3)
        #expect(error("\n{% set x = 1 / 0 %}")?.line == 2)
        #expect(error("{% macro m(x) %}\nhello {{ x.y.z }}\n{% endmacro %}\n{{ m(1) }}")?.line == 2)
        #expect(error("{% for x in 5 %}{% endfor %}")?.message == "'int' object is not iterable")
    }

    @Test("An unclosed block is a syntax error naming the line that opened it")
    func unclosedBlock() {
        let e = error("line one\n{% if true %}\nbody\n")
        #expect(e?.kind == .syntax)
        #expect(e?.line == 2)
        #expect(e?.message.contains("'if'") == true)
    }

    @Test("Unknown tags, unexpected tokens and unknown filters are syntax errors with lines")
    func syntaxErrorLines() {
        let cases: [(String, Int, String)] = [
            ("a\nb\n{% frobnicate %}", 3, "unknown tag 'frobnicate'"),
            ("a\n{{ a b }}", 2, "expected end of print statement"),
            ("a\n{{ x | nosuch }}", 2, "no filter named 'nosuch'"),
            ("a\n{{ x is nosuch }}", 2, "no test named 'nosuch'"),
            ("a\nb\n{{ x ", 3, "never closed"),
            ("a\n{# never", 2, "comment"),
            ("a\n{% endfor %}", 2, "unknown tag 'endfor'"),
            ("{% for x in [1] %}\n{% if x %}\n{% endfor %}", 3, "unknown tag 'endfor'"),
            ("{% for x [1] %}{% endfor %}", 1, "expected 'in'"),
            ("x\n{% break %}", 2, "outside of a for loop"),
            ("{{ 'unterminated }}", 1, "unterminated string"),
            ("\n\n{{ (1 }}", 3, "unexpected"),
        ]
        for (source, line, fragment) in cases {
            let e = error(source)
            #expect(e?.kind == .syntax, "\(source.debugDescription)")
            #expect(e?.line == line, "\(source.debugDescription)")
            #expect(e?.message.contains(fragment) == true, "\(source.debugDescription): \(e?.message ?? "no error")")
        }
    }

    @Test("The sandbox forbids mutating lists and dicts")
    func sandbox() {
        #expect(error("{% set l = [] %}{{ l.append(1) }}")?.message == "access to attribute 'append' of 'list' object is unsafe.")
        #expect(error("{% set d = {} %}{% set _ = d.update({}) %}")?.kind == .runtime)
    }
}

@Suite("strftime_now clock")
struct TemplateClockTests {
    @Test("strftime_now formats the injected clock in the template's time zone")
    func injectedClock() throws {
        var template = try ChatTemplate("{{ strftime_now('%d %b %Y %H:%M') }}")
        template.now = { fixedDate }
        template.timeZone = TimeZone(identifier: "UTC")!
        #expect(try template.render([:]) == "03 Sep 2024 14:05")
        template.timeZone = TimeZone(secondsFromGMT: 10 * 3600)!
        #expect(try template.render([:]) == "04 Sep 2024 00:05")
    }

    @Test("Llama 3.2 takes today's date from strftime_now when no date_string is given")
    func llamaDate() throws {
        var template = try ChatTemplate(ModelTemplates.llama32)
        template.now = { fixedDate }
        template.timeZone = TimeZone(identifier: "UTC")!
        let out = try template.render(
            messages: [["role": "user", "content": "Hi"]], addGenerationPrompt: true, bosToken: "<|begin_of_text|>",
            eosToken: "<|eot_id|>")
        #expect(out.contains("Today Date: 03 Sep 2024\n"))
        let pinned = try template.render(
            messages: [["role": "user", "content": "Hi"]], addGenerationPrompt: true, bosToken: "<|begin_of_text|>",
            eosToken: "<|eot_id|>", extra: ["date_string": "26 Jul 2024"])
        #expect(pinned.contains("Today Date: 26 Jul 2024\n"))
    }

    @Test("The default clock is the current time")
    func defaultClock() throws {
        let template = try ChatTemplate("{{ strftime_now('%Y') }}")
        let year = Calendar(identifier: .gregorian).component(.year, from: Date())
        let out = try template.render([:])
        #expect(out == String(year) || out == String(year + 1) || out == String(year - 1))
    }
}

@Suite("Built-in chat templates")
struct BuiltinChatTemplateTests {
    private func render(_ source: String, generationPrompt: Bool, eos: String? = "</s>",
        messages: [[String: TemplateValue]] = conversation) throws -> String
    {
        try ChatTemplate(source).render(
            messages: messages, addGenerationPrompt: generationPrompt, bosToken: "<|begin_of_text|>", eosToken: eos)
    }

    @Test("ChatML wraps each message and has no default system prompt")
    func chatml() throws {
        #expect(
            try render(BuiltinChatTemplates.chatml, generationPrompt: true)
                == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi <|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n")
        #expect(
            try render(BuiltinChatTemplates.chatml, generationPrompt: false, messages: [["role": "user", "content": "x"]])
                == "<|im_start|>user\nx<|im_end|>\n")
    }

    @Test("Llama 3 starts with bos_token, trims contents and ends turns with eot")
    func llama3() throws {
        #expect(
            try render(BuiltinChatTemplates.llama3, generationPrompt: true)
                == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(
            try render(BuiltinChatTemplates.llama3, generationPrompt: false)
                == "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>")
    }

    @Test("The built-in Llama 3 template matches Meta's Llama-3-Instruct template")
    func llama3MatchesMeta() throws {
        for generationPrompt in [true, false] {
            #expect(
                try render(BuiltinChatTemplates.llama3, generationPrompt: generationPrompt)
                    == render(ModelTemplates.llama3, generationPrompt: generationPrompt))
        }
    }

    @Test("Alpaca renders instruction/response blocks with eos after each response")
    func alpaca() throws {
        #expect(
            try render(BuiltinChatTemplates.alpaca, generationPrompt: true)
                == "Be brief.\n\n### Instruction:\n Hi \n\n### Response:\nHello!</s>\n\n### Instruction:\nBye\n\n### Response:\n")
        #expect(
            try render(BuiltinChatTemplates.alpaca, generationPrompt: false)
                == "Be brief.\n\n### Instruction:\n Hi \n\n### Response:\nHello!</s>\n\n### Instruction:\nBye\n\n")
        #expect(
            try render(
                BuiltinChatTemplates.alpaca, generationPrompt: false,
                messages: [["role": "user", "content": "Q"], ["role": "assistant", "content": "A"]])
                == "### Instruction:\nQ\n\n### Response:\nA</s>")
        #expect(
            try render(BuiltinChatTemplates.alpaca, generationPrompt: true, eos: nil, messages: [["role": "user", "content": "Q"]])
                == "### Instruction:\nQ\n\n### Response:\n")
    }

    @Test("Alpaca rejects roles it cannot express")
    func alpacaRejectsTools() {
        #expect(throws: TemplateError.self) {
            try render(BuiltinChatTemplates.alpaca, generationPrompt: false, messages: [["role": "tool", "content": "x"]])
        }
    }
}

@Suite("Whitespace handling examples")
struct TemplateWhitespaceTests {
    @Test("trim_blocks and lstrip_blocks remove block-tag lines entirely")
    func blockLinesVanish() throws {
        let source = "{% if true %}\n  {% for m in messages %}\n    <{{ m.role }}>\n  {% endfor %}\n{% endif %}\n"
        #expect(try render(source, ["messages": [["role": "user"], ["role": "assistant"]]]) == "    <user>\n    <assistant>\n")
    }

    @Test("Minus signs strip all whitespace on their side")
    func minusStrips() throws {
        let source = "{%- for m in messages -%}\n  [{{ m.role }}]\n{%- endfor %}\n"
        #expect(try render(source, ["messages": [["role": "user"], ["role": "assistant"]]]) == "[user][assistant]")
    }

    @Test("Plus signs keep whitespace that trim_blocks and lstrip_blocks would remove")
    func plusKeeps() throws {
        #expect(try render("A  {{- ' B ' -}}  C\n{%+ if true %}D{% endif +%}\nE") == "A B C\nD\nE")
        #expect(try render("x\n    {%+ if true %}y{% endif %}") == "x\n    y")
    }

    @Test("Variable tags never trim the newline that follows them")
    func variableKeepsNewline() throws {
        #expect(try render("{{ 'a' }}\n{% if true %}\nb\n{% endif %}\n") == "a\nb\n")
    }
}

@Suite("Rendering speed")
struct TemplatePerformanceTests {
    @Test("A 20-message conversation renders in well under 10 ms once parsed")
    func twentyMessages() throws {
        let template = try ChatTemplate(ModelTemplates.llama31)
        let messages = (0..<20).map { i -> [String: TemplateValue] in
            ["role": i % 2 == 0 ? "user" : "assistant", "content": .string("Message \(i) with a sentence of text in it.")]
        }
        let iterations = 200
        var bytes = 0
        let clock = ContinuousClock()
        let elapsed = try clock.measure {
            for _ in 0..<iterations {
                bytes += try template.render(
                    messages: messages, addGenerationPrompt: true, bosToken: "<|begin_of_text|>", eosToken: "<|eot_id|>"
                ).utf8.count
            }
        }
        let perRender = elapsed / iterations
        #expect(bytes > 0)
        // Only a guard against blow-ups (a quadratic render would be far above): a render takes ~0.1 ms in a release
        // build, several times that in a debug build or under ThreadSanitizer, and timing is not what a unit test
        // should assert (scripts/sanitize.sh thread failed the old 1 ms bound at 1.14 ms).
        #expect(perRender < .milliseconds(10), "\(perRender) per render")
    }
}
