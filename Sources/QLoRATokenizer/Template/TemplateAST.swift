// Syntax tree of a parsed template. Built once by TemplateParser, rendered many times.

struct TemplateExpr: Sendable {
    let line: Int
    let kind: Kind

    init(_ kind: Kind, line: Int) {
        self.kind = kind
        self.line = line
    }

    indirect enum Kind: Sendable {
        case literal(TemplateValue)
        case name(String)
        case list([TemplateExpr])
        case tuple([TemplateExpr])
        case dict([(key: TemplateExpr, value: TemplateExpr)])
        /// `a.b`: attribute first, then item (jinja2 `getattr`).
        case getattr(TemplateExpr, String)
        /// `a[b]`: item first, then attribute (jinja2 `getitem`).
        case getitem(TemplateExpr, TemplateExpr)
        /// `a[start:stop:step]`.
        case slice(TemplateExpr, start: TemplateExpr?, stop: TemplateExpr?, step: TemplateExpr?)
        case call(TemplateExpr, TemplateArgs)
        case filter(TemplateExpr, String, TemplateArgs)
        case test(TemplateExpr, String, TemplateArgs)
        case not(TemplateExpr)
        case negate(TemplateExpr)
        case plus(TemplateExpr)
        case binary(TemplateBinaryOp, TemplateExpr, TemplateExpr)
        case concat([TemplateExpr])
        case and(TemplateExpr, TemplateExpr)
        case or(TemplateExpr, TemplateExpr)
        case compare(TemplateExpr, [(op: TemplateCompareOp, rhs: TemplateExpr)])
        case conditional(test: TemplateExpr, then: TemplateExpr, otherwise: TemplateExpr?)
    }
}

struct TemplateArgs: Sendable {
    var positional: [TemplateExpr] = []
    var keywords: [(name: String, value: TemplateExpr)] = []

    static let none = TemplateArgs()
}

enum TemplateBinaryOp: String, Sendable {
    case add = "+"
    case sub = "-"
    case mul = "*"
    case div = "/"
    case floordiv = "//"
    case mod = "%"
    case pow = "**"
}

enum TemplateCompareOp: String, Sendable {
    case eq = "=="
    case ne = "!="
    case lt = "<"
    case le = "<="
    case gt = ">"
    case ge = ">="
    case `in` = "in"
    case notIn = "not in"
}

/// The left-hand side of `set`, `for` and `with`.
indirect enum TemplateTarget: Sendable {
    case name(String)
    case tuple([TemplateTarget])
    /// `ns.attr` (only in `set`).
    case namespaceAttr(String, String)
}

struct TemplateFilterCall: Sendable {
    let name: String
    let args: TemplateArgs
    let line: Int
}

struct TemplateForLoop: Sendable {
    let target: TemplateTarget
    let iterable: TemplateExpr
    let condition: TemplateExpr?
    let body: [TemplateStmt]
    let otherwise: [TemplateStmt]
    let line: Int
}

struct TemplateMacro: Sendable {
    let name: String
    let params: [(name: String, defaultValue: TemplateExpr?)]
    let body: [TemplateStmt]
    let line: Int
}

indirect enum TemplateStmt: Sendable {
    /// Literal template text.
    case data(String)
    /// `{{ expr }}`.
    case output(TemplateExpr)
    /// `if` / `elif` chain with optional `else`.
    case conditional([(test: TemplateExpr, body: [TemplateStmt])], otherwise: [TemplateStmt])
    case forLoop(TemplateForLoop)
    /// `{% set target = expr %}`.
    case assign(TemplateTarget, TemplateExpr, line: Int)
    /// `{% set target | filters %}…{% endset %}`.
    case assignBlock(TemplateTarget, [TemplateFilterCall], [TemplateStmt], line: Int)
    case loopBreak(line: Int)
    case loopContinue(line: Int)
    /// `{% macro %}`: binds the macro (by index in the template's macro table) to its name.
    case macro(Int)
    /// `{% filter name(args) %}…{% endfilter %}`.
    case filterBlock([TemplateFilterCall], [TemplateStmt])
    /// `{% with a = 1 %}…{% endwith %}`.
    case with([(TemplateTarget, TemplateExpr)], [TemplateStmt])
    /// A body rendered in its own scope, like jinja2's call blocks (transformers' `{% generation %}`).
    case scoped([TemplateStmt])
}
