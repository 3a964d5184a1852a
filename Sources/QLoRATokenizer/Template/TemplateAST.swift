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
        /// A variable, by its index in `TemplateProgram.names`.
        case name(Int)
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
        case filter(TemplateExpr, TemplateFilter, TemplateArgs)
        case test(TemplateExpr, TemplateTest, TemplateArgs)
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
    /// A variable, by its index in `TemplateProgram.names`.
    case name(Int)
    case tuple([TemplateTarget])
    /// `ns.attr` (only in `set`): the namespace variable's index and the attribute.
    case namespaceAttr(Int, String)
}

struct TemplateFilterCall: Sendable {
    let filter: TemplateFilter
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
    let nameID: Int
    let params: [(name: String, id: Int, defaultValue: TemplateExpr?)]
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

/// Filters, resolved at parse time (aliases map to one case).
enum TemplateFilter: String, Sendable, CaseIterable {
    case abs, attr, capitalize, center, dictsort, escape, first, float, format, indent, int, items, join, last
    case length, list, lower, map, max, min, reject, rejectattr, replace, reverse, round, safe, select
    case selectattr, sort, string, sum, title, tojson, trim, unique, upper, wordcount
    case `default`

    init?(name: String) {
        switch name {
        case "d": self = .default
        case "count": self = .length
        case "e", "forceescape": self = .escape
        default: self.init(rawValue: name)
        }
    }
}

/// Tests (`x is name`), resolved at parse time (aliases map to one case).
enum TemplateTest: String, Sendable, CaseIterable {
    case defined, undefined, none, boolean, integer, float, number, string, mapping, iterable, sequence
    case callable, escaped, odd, even, divisibleby, lower, upper, sameas, eq, ne, lt, le, gt, ge, filter, test
    case `true`, `false`, `in`

    init?(name: String) {
        switch name {
        case "equalto", "==": self = .eq
        case "!=": self = .ne
        case "lessthan", "<": self = .lt
        case "<=": self = .le
        case "greaterthan", ">": self = .gt
        case ">=": self = .ge
        default: self.init(rawValue: name)
        }
    }
}
