// Hostile chat templates (they come from a model's tokenizer_config.json or GGUF, so they are
// untrusted): deep nesting must fail to compile with a clear error instead of overflowing the
// stack, and runaway loops, recursion and unbounded strings must fail to render instead of hanging
// or allocating gigabytes. The limits are `TemplateLimits` (Sources/QLoRATokenizer/Template/TemplateLimits.swift).

import Foundation
import QLoRATokenizer
import Testing

private func failure(_ source: String, name: String = "chat_template") -> TemplateError? {
    do {
        let template = try ChatTemplate(source, name: name)
        _ = try template.render([:])
        return nil
    } catch {
        return error
    }
}

/// The error, without printing the (huge) source when there is none.
private func required(_ error: TemplateError?) throws -> TemplateError {
    guard let error else { throw NoError() }
    return error
}

private struct NoError: Error, CustomStringConvertible {
    var description: String { "the template compiled and rendered without an error" }
}

private func repeated(_ s: String, _ n: Int) -> String { String(repeating: s, count: n) }

@Suite("Chat template limits")
struct TemplateLimitTests {
    @Test("Statements nested thousands deep fail to compile, naming the template and the limit")
    func deepStatementNesting() throws {
        let source = repeated("{% if true %}", 5000) + "x" + repeated("{% endif %}", 5000)
        let error = try required(failure(source, name: "tokenizer_config.json chat_template"))
        #expect(error.kind == .syntax)
        #expect(error.description.hasPrefix("tokenizer_config.json chat_template line 1:"))
        #expect(error.message.contains("nested more than \(TemplateLimits.maxNestingDepth) levels"))
    }

    @Test("Expressions nested thousands deep fail to compile", arguments: [
        repeated("(", 5000) + "1" + repeated(")", 5000),
        repeated("[", 5000) + "1" + repeated("]", 5000),
        repeated("{'a': ", 5000) + "1" + repeated("}", 5000),
        repeated("not ", 5000) + "1",
        repeated("-", 5000) + "1",
        repeated("1 if x else ", 5000) + "1",
        "x" + repeated("[x", 5000) + repeated("]", 5000),
        "f" + repeated("(f", 5000) + repeated(")", 5000),
    ])
    func deepExpressionNesting(expression: String) throws {
        let error = try required(failure("{{ " + expression + " }}"))
        #expect(error.kind == .syntax)
        #expect(error.message.contains("nested more than \(TemplateLimits.maxNestingDepth) levels"))
    }

    @Test("Nested assignment targets fail to compile")
    func deepTargetNesting() throws {
        let error = try required(failure("{% for " + repeated("(", 5000) + "a" + repeated(")", 5000) + " in x %}{% endfor %}"))
        #expect(error.message.contains("nested more than \(TemplateLimits.maxNestingDepth) levels"))
    }

    @Test("Nesting below the limit still compiles and renders")
    func nestingBelowTheLimit() throws {
        let depth = TemplateLimits.maxNestingDepth / 2
        let statements = repeated("{% if true %}", depth) + "x" + repeated("{% endif %}", depth)
        #expect(try ChatTemplate(statements).render([:]) == "x")
        let lists = "{{ " + repeated("[", depth) + "1" + repeated("]", depth) + " }}"
        #expect(try ChatTemplate(lists).render([:]) == repeated("[", depth) + "1" + repeated("]", depth))
    }

    @Test("Loops that run too many steps fail instead of hanging")
    func stepBudget() throws {
        let source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
        let error = try required(failure(source))
        #expect(error.kind == .runtime)
        #expect(error.message.contains("more than \(TemplateLimits.maxSteps) steps"))
    }

    @Test("Macros that fan out exponentially fail instead of hanging")
    func macroFanOut() throws {
        let source = """
            {% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}
            """
        let error = try required(failure(source))
        #expect(error.message.contains("more than \(TemplateLimits.maxSteps) steps"))
    }

    @Test("Unbounded macro recursion fails with the recursion limit")
    func macroRecursion() throws {
        let error = try required(failure("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}"))
        #expect(error.message.contains("\(TemplateLimits.maxMacroDepth)"))
    }

    @Test("Output beyond the limit fails instead of allocating", arguments: [
        // straight output
        "{% for i in range(100000) %}{% for j in range(100) %}" + repeated("x", 100) + "{% endfor %}{% endfor %}",
        // one huge value
        "{{ 'x' * 1000000000000 }}",
        "{% set s = 'x' * 100000000 %}",
        "{% set l = [1] * 1000000000000 %}",
        "{{ 'x'.ljust(1000000000000) }}",
        "{{ 'x'.center(1000000000000) }}",
        "{{ 'x'.zfill(1000000000000) }}",
        "{{ 'x' | center(1000000000000) }}",
        "{{ 'x\ny' | indent(1000000000000) }}",
        "{{ '%1000000000000s' % 'x' }}",
        "{{ [1, [2]] | tojson(indent=1000000000000) }}",
        // doubling
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}",
        // many references to one big string, then flattened
        "{{ (['x' * 1000000] * 100000) | join }}",
        "{{ ''.join(['x' * 1000000] * 100000) }}",
        "{{ (['x' * 1000000] * 100000) | tojson }}",
        "{{ ['x' * 1000000] * 100000 }}",
        "{{ ('x' * 1000000).replace('x', 'yyyyyyyyyyyyyyyy') }}",
        "{{ ('x' * 1000000) | replace('x', 'yyyyyyyyyyyyyyyy') }}",
        "{% set s %}{% for i in range(100000) %}" + repeated("x", 1000) + "{% endfor %}{% endset %}",
    ])
    func outputBudget(source: String) throws {
        let error = try required(failure(source))
        #expect(error.kind == .runtime)
        #expect(error.message.contains("\(TemplateLimits.maxStringBytes) bytes") || error.message.contains("\(TemplateLimits.maxListItems) items"),
            "\(error)")
    }

    @Test("Long strings render in linear time", .timeLimit(.minutes(1)))
    func longStringsRenderInLinearTime() throws {
        let repr = try ChatTemplate("{{ ['\\n' * 1000000] | string | length }}").render([:])
        #expect(repr == "2000004")
        let replaced = try ChatTemplate("{{ ('x' * 1000000).replace('x', 'yy') | length }}").render([:])
        #expect(replaced == "2000000")
    }
}
