// Recursive-descent parser for the Jinja2 subset, following jinja2 3.1's parser.py grammar and
// operator precedence:
//   conditional (`x if c else y`) < or < and < not < comparisons/in < + - < ~ < * / // % < ** <
//   unary - + < postfix (`.attr`, `[item]`, `(call)`) with filters `|f` and tests `is t`.

struct TemplateParser {
    private var tokens: [TemplateToken]
    private var index = 0
    private let name: String
    private(set) var macros: [TemplateMacro] = []
    private(set) var names: [String] = []
    private var nameIDs: [String: Int] = [:]
    private var loopDepth = 0
    /// Current nesting of blocks and expressions, bounded by `TemplateLimits.maxNestingDepth` so
    /// that a hostile template fails here instead of overflowing the stack (here or in the renderer).
    private var depth = 0

    /// Index of the `loop` variable in `names`.
    static let loopID = 0

    init(tokens: [TemplateToken], name: String) {
        self.tokens = tokens
        self.name = name
        _ = intern("loop")
    }

    static func parse(_ source: String, name: String) throws(TemplateError) -> TemplateProgram {
        let tokens = try TemplateLexer.tokenize(source, name: name)
        var parser = TemplateParser(tokens: tokens, name: name)
        let body = try parser.subparse(endTags: [], opener: nil)
        return TemplateProgram(body: body, macros: parser.macros, names: parser.names)
    }

    private mutating func intern(_ variable: String) -> Int {
        if let id = nameIDs[variable] { return id }
        names.append(variable)
        nameIDs[variable] = names.count - 1
        return names.count - 1
    }

    // MARK: - Token stream

    private var current: TemplateToken { tokens[index] }

    private func peek(_ offset: Int = 1) -> TemplateToken {
        tokens[min(index + offset, tokens.count - 1)]
    }

    private mutating func advance() -> TemplateToken {
        let t = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    private func error(_ message: String, line: Int? = nil) -> TemplateError {
        TemplateError(kind: .syntax, templateName: name, line: line ?? current.line, message: message)
    }

    /// Enters one level of nesting; pair with `depth -= 1` (a `defer`).
    private mutating func descend() throws(TemplateError) {
        depth += 1
        if depth > TemplateLimits.maxNestingDepth {
            throw error(
                "the template is nested more than \(TemplateLimits.maxNestingDepth) levels deep "
                    + "(blocks and expressions together); refusing to compile it")
        }
    }

    private func isName(_ t: TemplateToken, _ value: String) -> Bool {
        if case .name(let n) = t.kind, n == value { return true }
        return false
    }

    private func isOp(_ t: TemplateToken, _ value: String) -> Bool {
        if case .op(let o) = t.kind, o == value { return true }
        return false
    }

    private mutating func skipName(_ value: String) -> Bool {
        if isName(current, value) {
            _ = advance()
            return true
        }
        return false
    }

    private mutating func skipOp(_ value: String) -> Bool {
        if isOp(current, value) {
            _ = advance()
            return true
        }
        return false
    }

    private static func describe(_ t: TemplateToken) -> String {
        switch t.kind {
        case .data: return "template data"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "end of statement block"
        case .name(let n): return "'\(n)'"
        case .string: return "string literal"
        case .integer(let i): return "'\(i)'"
        case .float(let d): return "'\(d)'"
        case .op(let o): return "'\(o)'"
        case .eof: return "end of template"
        }
    }

    private mutating func expectOp(_ value: String) throws(TemplateError) {
        guard skipOp(value) else {
            throw error("expected '\(value)', got \(Self.describe(current))")
        }
    }

    private mutating func expectName() throws(TemplateError) -> String {
        if case .name(let n) = current.kind {
            _ = advance()
            return n
        }
        throw error("expected a name, got \(Self.describe(current))")
    }

    private mutating func expectBlockEnd() throws(TemplateError) {
        guard current.kind == .blockEnd else {
            throw error("expected end of statement block, got \(Self.describe(current))")
        }
        _ = advance()
    }

    // MARK: - Statements

    /// Parses template content until a `{% tag %}` whose name is in `endTags`; leaves the stream on
    /// that tag's name. With empty `endTags`, parses to the end of the template.
    private mutating func subparse(endTags: Set<String>, opener: (tag: String, line: Int)?) throws(TemplateError)
        -> [TemplateStmt]
    {
        try descend()
        defer { depth -= 1 }
        var body: [TemplateStmt] = []
        while true {
            let token = current
            switch token.kind {
            case .data(let text):
                _ = advance()
                body.append(.data(text))
            case .variableBegin:
                _ = advance()
                let expr = try parseTuple()
                guard current.kind == .variableEnd else {
                    throw error("expected end of print statement, got \(Self.describe(current))")
                }
                _ = advance()
                body.append(.output(expr))
            case .blockBegin:
                _ = advance()
                if case .name(let tag) = current.kind, endTags.contains(tag) {
                    return body
                }
                body.append(contentsOf: try parseStatement(endTags: endTags, opener: opener))
                try expectBlockEnd()
            case .eof:
                if let opener {
                    let expected = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                    throw error(
                        "unexpected end of template: '\(opener.tag)' block opened on line \(opener.line) "
                            + "was never closed (expected \(expected))",
                        line: opener.line)
                }
                return body
            default:
                throw error("unexpected \(Self.describe(token))")
            }
        }
    }

    /// After the opening tag's own arguments: expects `%}`, then parses the body up to an end tag.
    private mutating func parseBody(endTags: Set<String>, opener: (tag: String, line: Int)) throws(TemplateError)
        -> (body: [TemplateStmt], endTag: String)
    {
        _ = skipOp(":")
        try expectBlockEnd()
        let body = try subparse(endTags: endTags, opener: opener)
        let tag = try expectName()
        return (body, tag)
    }

    private mutating func parseStatement(endTags: Set<String>, opener: (tag: String, line: Int)?)
        throws(TemplateError) -> [TemplateStmt]
    {
        let token = current
        guard case .name(let tag) = token.kind else {
            throw error("tag name expected, got \(Self.describe(token))")
        }
        switch tag {
        case "for": return [try parseFor()]
        case "if": return [try parseIf()]
        case "set": return [try parseSet()]
        case "macro": return [try parseMacro()]
        case "with": return [try parseWith()]
        case "filter": return [try parseFilterBlock()]
        case "generation":
            _ = advance()
            let (body, _) = try parseBody(endTags: ["endgeneration"], opener: ("generation", token.line))
            return [.scoped(body)]
        case "break", "continue":
            _ = advance()
            guard loopDepth > 0 else { throw error("'\(tag)' outside of a for loop", line: token.line) }
            return [tag == "break" ? .loopBreak(line: token.line) : .loopContinue(line: token.line)]
        case "raw", "endraw":
            throw error("malformed '\(tag)' tag", line: token.line)
        case "include", "import", "from", "extends", "block", "call", "do", "autoescape", "trans":
            throw error("the '\(tag)' tag is not supported by this template engine", line: token.line)
        default:
            var message = "encountered unknown tag '\(tag)'"
            if let opener {
                let expected = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
                message += "; expected \(expected) to close the '\(opener.tag)' block opened on line \(opener.line)"
            }
            throw error(message, line: token.line)
        }
    }

    private mutating func parseFor() throws(TemplateError) -> TemplateStmt {
        let line = advance().line
        let target = try parseAssignTarget(extraEnd: "in")
        guard skipName("in") else { throw error("expected 'in', got \(Self.describe(current))") }
        let iterable = try parseTuple(withCondexpr: false, extraEnd: "recursive")
        var condition: TemplateExpr?
        if skipName("if") { condition = try parseExpression() }
        if isName(current, "recursive") {
            throw error("recursive for loops are not supported")
        }
        loopDepth += 1
        let (body, tag) = try parseBody(endTags: ["endfor", "else"], opener: ("for", line))
        loopDepth -= 1
        var otherwise: [TemplateStmt] = []
        if tag == "else" {
            (otherwise, _) = try parseBody(endTags: ["endfor"], opener: ("for", line))
        }
        return .forLoop(
            TemplateForLoop(
                target: target, iterable: iterable, condition: condition, body: body, otherwise: otherwise,
                line: line))
    }

    private mutating func parseIf() throws(TemplateError) -> TemplateStmt {
        let line = advance().line
        var branches: [(test: TemplateExpr, body: [TemplateStmt])] = []
        var otherwise: [TemplateStmt] = []
        while true {
            let test = try parseTuple(withCondexpr: false)
            let (body, tag) = try parseBody(endTags: ["elif", "else", "endif"], opener: ("if", line))
            branches.append((test, body))
            if tag == "elif" { continue }
            if tag == "else" {
                (otherwise, _) = try parseBody(endTags: ["endif"], opener: ("if", line))
            }
            break
        }
        return .conditional(branches, otherwise: otherwise)
    }

    private mutating func parseSet() throws(TemplateError) -> TemplateStmt {
        let line = advance().line
        let target = try parseAssignTarget(withNamespace: true)
        if skipOp("=") {
            let value = try parseTuple()
            return .assign(target, value, line: line)
        }
        var filters: [TemplateFilterCall] = []
        while skipOp("|") { filters.append(try parseFilterCall()) }
        if case .namespaceAttr = target { throw error("block assignment to a namespace attribute is not supported") }
        let (body, _) = try parseBody(endTags: ["endset"], opener: ("set", line))
        return .assignBlock(target, filters, body, line: line)
    }

    private mutating func parseMacro() throws(TemplateError) -> TemplateStmt {
        let line = advance().line
        let macroName = try expectName()
        try expectOp("(")
        var params: [(name: String, id: Int, defaultValue: TemplateExpr?)] = []
        while !isOp(current, ")") {
            if !params.isEmpty { try expectOp(",") }
            if isOp(current, ")") { break }
            let param = try expectName()
            var defaultValue: TemplateExpr?
            if skipOp("=") {
                defaultValue = try parseExpression()
            } else if params.contains(where: { $0.defaultValue != nil }) {
                throw error("non-default argument '\(param)' follows default argument")
            }
            params.append((param, intern(param), defaultValue))
        }
        try expectOp(")")
        let savedDepth = loopDepth
        loopDepth = 0
        let (body, _) = try parseBody(endTags: ["endmacro"], opener: ("macro", line))
        loopDepth = savedDepth
        macros.append(
            TemplateMacro(name: macroName, nameID: intern(macroName), params: params, body: body, line: line))
        return .macro(macros.count - 1)
    }

    private mutating func parseWith() throws(TemplateError) -> TemplateStmt {
        let line = advance().line
        var bindings: [(TemplateTarget, TemplateExpr)] = []
        while current.kind != .blockEnd {
            if !bindings.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget()
            try expectOp("=")
            bindings.append((target, try parseExpression()))
        }
        let (body, _) = try parseBody(endTags: ["endwith"], opener: ("with", line))
        return .with(bindings, body)
    }

    private mutating func parseFilterBlock() throws(TemplateError) -> TemplateStmt {
        let line = advance().line
        var filters = [try parseFilterCall()]
        while skipOp("|") { filters.append(try parseFilterCall()) }
        let (body, _) = try parseBody(endTags: ["endfilter"], opener: ("filter", line))
        return .filterBlock(filters, body)
    }

    private mutating func parseAssignTarget(withNamespace: Bool = false, extraEnd: String? = nil)
        throws(TemplateError) -> TemplateTarget
    {
        if withNamespace, case .name(let ns) = current.kind, isOp(peek(), ".") {
            _ = advance()
            _ = advance()
            let attr = try expectName()
            return .namespaceAttr(intern(ns), attr)
        }
        // parse_tuple(simplified=True): names separated by commas, optionally parenthesized.
        var items: [TemplateTarget] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            items.append(try parseTargetPrimary())
            if isOp(current, ",") { isTuple = true } else { break }
        }
        if !isTuple {
            guard let only = items.first else {
                throw error("expected an assignment target, got \(Self.describe(current))")
            }
            return only
        }
        return .tuple(items)
    }

    private mutating func parseTargetPrimary() throws(TemplateError) -> TemplateTarget {
        try descend()
        defer { depth -= 1 }
        let token = current
        if case .name(let n) = token.kind {
            if ["true", "false", "True", "False", "none", "None"].contains(n) {
                throw error("can't assign to const", line: token.line)
            }
            _ = advance()
            return .name(intern(n))
        }
        if skipOp("(") {
            var items: [TemplateTarget] = []
            while !isOp(current, ")") {
                if !items.isEmpty { try expectOp(",") }
                if isOp(current, ")") { break }
                items.append(try parseTargetPrimary())
            }
            try expectOp(")")
            return items.count == 1 ? items[0] : .tuple(items)
        }
        throw error("can't assign to \(Self.describe(token))", line: token.line)
    }

    // MARK: - Expressions

    private func isTupleEnd(_ extraEnd: String?) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd: return true
        case .op(")"): return true
        case .name(let n): return n == extraEnd
        default: return false
        }
    }

    mutating func parseTuple(withCondexpr: Bool = true, extraEnd: String? = nil, explicitParens: Bool = false)
        throws(TemplateError) -> TemplateExpr
    {
        var line = current.line
        var items: [TemplateExpr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            items.append(withCondexpr ? try parseExpression() : try parseOr())
            if isOp(current, ",") { isTuple = true } else { break }
            line = current.line
        }
        if !isTuple {
            if let only = items.first { return only }
            if !explicitParens {
                throw error("expected an expression, got \(Self.describe(current))")
            }
        }
        return TemplateExpr(.tuple(items), line: line)
    }

    mutating func parseExpression() throws(TemplateError) -> TemplateExpr {
        try parseCondexpr()
    }

    private mutating func parseCondexpr() throws(TemplateError) -> TemplateExpr {
        var line = current.line
        var expr = try parseOr()
        while skipName("if") {
            let test = try parseOr()
            var otherwise: TemplateExpr?
            if skipName("else") {
                try descend()
                defer { depth -= 1 }
                otherwise = try parseCondexpr()
            }
            expr = TemplateExpr(.conditional(test: test, then: expr, otherwise: otherwise), line: line)
            line = current.line
        }
        return expr
    }

    private mutating func parseOr() throws(TemplateError) -> TemplateExpr {
        var left = try parseAnd()
        while isName(current, "or") {
            let line = advance().line
            left = TemplateExpr(.or(left, try parseAnd()), line: line)
        }
        return left
    }

    private mutating func parseAnd() throws(TemplateError) -> TemplateExpr {
        var left = try parseNot()
        while isName(current, "and") {
            let line = advance().line
            left = TemplateExpr(.and(left, try parseNot()), line: line)
        }
        return left
    }

    private mutating func parseNot() throws(TemplateError) -> TemplateExpr {
        if isName(current, "not") {
            try descend()
            defer { depth -= 1 }
            let line = advance().line
            return TemplateExpr(.not(try parseNot()), line: line)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws(TemplateError) -> TemplateExpr {
        let line = current.line
        let expr = try parseMath1()
        var ops: [(op: TemplateCompareOp, rhs: TemplateExpr)] = []
        while true {
            if case .op(let o) = current.kind, let op = TemplateCompareOp(rawValue: o),
                op != .in, op != .notIn
            {
                _ = advance()
                ops.append((op, try parseMath1()))
            } else if skipName("in") {
                ops.append((.in, try parseMath1()))
            } else if isName(current, "not"), isName(peek(), "in") {
                _ = advance()
                _ = advance()
                ops.append((.notIn, try parseMath1()))
            } else {
                break
            }
        }
        if ops.isEmpty { return expr }
        return TemplateExpr(.compare(expr, ops), line: line)
    }

    private mutating func parseMath1() throws(TemplateError) -> TemplateExpr {
        var left = try parseConcat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let line = advance().line
            left = TemplateExpr(.binary(o == "+" ? .add : .sub, left, try parseConcat()), line: line)
        }
        return left
    }

    private mutating func parseConcat() throws(TemplateError) -> TemplateExpr {
        let line = current.line
        var items = [try parseMath2()]
        while skipOp("~") { items.append(try parseMath2()) }
        return items.count == 1 ? items[0] : TemplateExpr(.concat(items), line: line)
    }

    private mutating func parseMath2() throws(TemplateError) -> TemplateExpr {
        var left = try parsePow()
        while case .op(let o) = current.kind, o == "*" || o == "/" || o == "//" || o == "%" {
            let line = advance().line
            left = TemplateExpr(.binary(TemplateBinaryOp(rawValue: o)!, left, try parsePow()), line: line)
        }
        return left
    }

    private mutating func parsePow() throws(TemplateError) -> TemplateExpr {
        var left = try parseUnary()
        while isOp(current, "**") {
            let line = advance().line
            left = TemplateExpr(.binary(.pow, left, try parseUnary()), line: line)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws(TemplateError) -> TemplateExpr {
        let line = current.line
        var node: TemplateExpr
        if skipOp("-") {
            try descend()
            defer { depth -= 1 }
            node = TemplateExpr(.negate(try parseUnary(withFilter: false)), line: line)
        } else if skipOp("+") {
            try descend()
            defer { depth -= 1 }
            node = TemplateExpr(.plus(try parseUnary(withFilter: false)), line: line)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    private mutating func parsePrimary() throws(TemplateError) -> TemplateExpr {
        let token = current
        if isOp(token, "(") || isOp(token, "[") || isOp(token, "{") { try descend() }
        defer { if isOp(token, "(") || isOp(token, "[") || isOp(token, "{") { depth -= 1 } }
        switch token.kind {
        case .name(let n):
            _ = advance()
            switch n {
            case "true", "True": return TemplateExpr(.literal(.bool(true)), line: token.line)
            case "false", "False": return TemplateExpr(.literal(.bool(false)), line: token.line)
            case "none", "None": return TemplateExpr(.literal(.none), line: token.line)
            default: return TemplateExpr(.name(intern(n)), line: token.line)
            }
        case .string(var s):
            _ = advance()
            while case .string(let more) = current.kind {
                s += more
                _ = advance()
            }
            return TemplateExpr(.literal(.string(s)), line: token.line)
        case .integer(let i):
            _ = advance()
            return TemplateExpr(.literal(.int(i)), line: token.line)
        case .float(let d):
            _ = advance()
            return TemplateExpr(.literal(.double(d)), line: token.line)
        case .op("("):
            _ = advance()
            let node = try parseTuple(explicitParens: true)
            try expectOp(")")
            return node
        case .op("["):
            _ = advance()
            var items: [TemplateExpr] = []
            while !isOp(current, "]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp(current, "]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return TemplateExpr(.list(items), line: token.line)
        case .op("{"):
            _ = advance()
            var items: [(key: TemplateExpr, value: TemplateExpr)] = []
            while !isOp(current, "}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp(current, "}") { break }
                let key = try parseExpression()
                try expectOp(":")
                items.append((key, try parseExpression()))
            }
            try expectOp("}")
            return TemplateExpr(.dict(items), line: token.line)
        default:
            throw error("unexpected \(Self.describe(token))", line: token.line)
        }
    }

    private mutating func parsePostfix(_ start: TemplateExpr) throws(TemplateError) -> TemplateExpr {
        var node = start
        while true {
            if isOp(current, ".") || isOp(current, "[") {
                node = try parseSubscript(node)
            } else if isOp(current, "(") {
                let line = current.line
                node = TemplateExpr(.call(node, try parseCallArgs()), line: line)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpr(_ start: TemplateExpr) throws(TemplateError) -> TemplateExpr {
        var node = start
        while true {
            if isOp(current, "|") {
                _ = advance()
                let call = try parseFilterCall()
                node = TemplateExpr(.filter(node, call.filter, call.args), line: call.line)
            } else if isName(current, "is") {
                node = try parseTest(node)
            } else if isOp(current, "(") {
                let line = current.line
                node = TemplateExpr(.call(node, try parseCallArgs()), line: line)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterCall() throws(TemplateError) -> TemplateFilterCall {
        let line = current.line
        var filterName = try expectName()
        while skipOp(".") { filterName += "." + (try expectName()) }
        guard let filter = TemplateFilter(name: filterName) else {
            throw error("no filter named '\(filterName)'", line: line)
        }
        let args = isOp(current, "(") ? try parseCallArgs() : .none
        return TemplateFilterCall(filter: filter, args: args, line: line)
    }

    private mutating func parseTest(_ node: TemplateExpr) throws(TemplateError) -> TemplateExpr {
        let line = advance().line  // `is`
        let negated = skipName("not")
        var testName = try expectName()
        while skipOp(".") { testName += "." + (try expectName()) }
        guard let test = TemplateTest(name: testName) else {
            throw error("no test named '\(testName)'", line: line)
        }
        var args = TemplateArgs.none
        if isOp(current, "(") {
            args = try parseCallArgs()
        } else {
            var takesArg = false
            switch current.kind {
            case .name(let n): takesArg = n != "else" && n != "or" && n != "and"
            case .string, .integer, .float, .op("("), .op("["), .op("{"): takesArg = true
            default: takesArg = false
            }
            if takesArg {
                if isName(current, "is") { throw error("you cannot chain multiple tests with is") }
                let arg = try parsePostfix(try parsePrimary())
                args = TemplateArgs(positional: [arg], keywords: [])
            }
        }
        let testExpr = TemplateExpr(.test(node, test, args), line: line)
        return negated ? TemplateExpr(.not(testExpr), line: line) : testExpr
    }

    private mutating func parseSubscript(_ node: TemplateExpr) throws(TemplateError) -> TemplateExpr {
        try descend()
        defer { depth -= 1 }
        let token = advance()
        if isOp(token, ".") {
            let attr = current
            _ = advance()
            switch attr.kind {
            case .name(let n): return TemplateExpr(.getattr(node, n), line: token.line)
            case .integer(let i):
                return TemplateExpr(.getitem(node, TemplateExpr(.literal(.int(i)), line: attr.line)), line: token.line)
            default: throw error("expected name or number", line: attr.line)
            }
        }
        // `[`
        var args: [TemplateExpr] = []
        while !isOp(current, "]") {
            if !args.isEmpty { try expectOp(",") }
            args.append(try parseSubscribed(node))
        }
        try expectOp("]")
        if args.count == 1 {
            if case .slice = args[0].kind { return args[0] }
            return TemplateExpr(.getitem(node, args[0]), line: token.line)
        }
        return TemplateExpr(.getitem(node, TemplateExpr(.tuple(args), line: token.line)), line: token.line)
    }

    /// One subscript argument: an expression or a slice `a:b:c` (returned as a `.slice` on `node`).
    private mutating func parseSubscribed(_ node: TemplateExpr) throws(TemplateError) -> TemplateExpr {
        let line = current.line
        var start: TemplateExpr?
        if isOp(current, ":") {
            _ = advance()
        } else {
            let expr = try parseExpression()
            if !isOp(current, ":") { return expr }
            _ = advance()
            start = expr
        }
        var stop: TemplateExpr?
        if !isOp(current, ":"), !isOp(current, "]"), !isOp(current, ",") {
            stop = try parseExpression()
        }
        var step: TemplateExpr?
        if skipOp(":") {
            if !isOp(current, "]"), !isOp(current, ",") { step = try parseExpression() }
        }
        return TemplateExpr(.slice(node, start: start, stop: stop, step: step), line: line)
    }

    private mutating func parseCallArgs() throws(TemplateError) -> TemplateArgs {
        try descend()
        defer { depth -= 1 }
        let line = current.line
        try expectOp("(")
        var args = TemplateArgs()
        var requireComma = false
        while !isOp(current, ")") {
            if requireComma {
                try expectOp(",")
                if isOp(current, ")") { break }
            }
            if isOp(current, "*") || isOp(current, "**") {
                throw error("*args and **kwargs in calls are not supported")
            }
            if case .name(let key) = current.kind, isOp(peek(), "=") {
                _ = advance()
                _ = advance()
                args.keywords.append((key, try parseExpression()))
            } else {
                if !args.keywords.isEmpty {
                    throw error("invalid syntax for function call expression", line: line)
                }
                args.positional.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return args
    }
}
