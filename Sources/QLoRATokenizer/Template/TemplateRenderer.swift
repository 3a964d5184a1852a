// Tree-walking renderer for parsed templates.
//
// Scoping follows jinja2: the render context and top-level `set`s share the root frame; each for
// loop iteration gets a fresh frame (so a `set` inside a loop body is not visible in the next
// iteration or after the loop, which is why templates use `namespace()`); `if` does not open a
// frame; macros see the root frame plus their arguments.
//
// Variables are interned at parse time: the root frame is an array indexed by name, and inner
// frames live on one stack of (name, value) pairs searched from the top, so rendering a loop
// allocates nothing per iteration beyond the `loop` object.

import Foundation

struct TemplateProgram: Sendable {
    let body: [TemplateStmt]
    let macros: [TemplateMacro]
    /// Variable names by index (index 0 is `loop`).
    let names: [String]
    /// Whether each name is a global function (`range`, `namespace`, ...).
    let isGlobalFunction: [Bool]

    init(body: [TemplateStmt], macros: [TemplateMacro], names: [String]) {
        self.body = body
        self.macros = macros
        self.names = names
        self.isGlobalFunction = names.map { TemplateBuiltins.globalFunctions.contains($0) }
    }
}

/// Evaluated call arguments.
struct TemplateCallArgs {
    var positional: [TemplateValue] = []
    var keywords: [(name: String, value: TemplateValue)] = []
}

struct TemplateRenderer {
    enum Flow { case normal, breakLoop, continueLoop }

    let program: TemplateProgram
    let now: @Sendable () -> Date
    let timeZone: TimeZone
    /// The root frame: context variables and top-level assignments, by name index.
    var root: [TemplateValue?]
    /// Inner frames' variables, innermost last.
    var locals: [(id: Int, value: TemplateValue)] = []
    /// Start of each inner frame in `locals`.
    var frameStarts: [Int] = []
    var namespaces: [TemplateDictionary] = []
    var out = ""
    var callDepth = 0
    /// Loop iterations, macro calls and elements inspected so far, bounded by `TemplateLimits.maxSteps`.
    var steps = 0

    init(program: TemplateProgram, context: [String: TemplateValue], now: @escaping @Sendable () -> Date,
        timeZone: TimeZone)
    {
        self.program = program
        self.now = now
        self.timeZone = timeZone
        self.root = program.names.map { context[$0] }
        self.locals.reserveCapacity(16)
    }

    mutating func pushFrame() {
        frameStarts.append(locals.count)
    }

    mutating func popFrame() {
        let start = frameStarts.removeLast()
        locals.removeSubrange(start...)
    }

    /// Assigns in the innermost frame (the root frame at top level).
    mutating func assign(_ id: Int, _ value: TemplateValue) {
        guard let start = frameStarts.last else {
            root[id] = value
            return
        }
        var i = locals.count - 1
        while i >= start {
            if locals[i].id == id {
                locals[i].value = value
                return
            }
            i -= 1
        }
        locals.append((id, value))
    }

    mutating func render() throws(RenderFailure) -> String {
        _ = try exec(program.body)
        return out
    }

    // MARK: - Budgets (TemplateLimits)

    /// Counts `n` steps of work against `TemplateLimits.maxSteps`.
    mutating func step(_ n: Int = 1) throws(RenderFailure) {
        steps += n
        if steps > TemplateLimits.maxSteps {
            throw RenderFailure(
                "the template ran more than \(TemplateLimits.maxSteps) steps (loop iterations and macro calls); "
                    + "refusing to render it")
        }
    }

    /// Appends to the output, which may not exceed `TemplateLimits.maxStringBytes`.
    mutating func emit(_ text: String) throws(RenderFailure) {
        try TemplateLimits.checkString(bytes: out.utf8.count + text.utf8.count)
        out += text
    }

    /// `Py.str(value)` after checking that printing it stays within the limit.
    func printed(_ value: TemplateValue) throws(RenderFailure) -> String {
        switch value {
        case .array, .dictionary: try TemplateLimits.checkFlattened(value)
        default: break
        }
        return Py.str(value)
    }

    /// Refuses a list or dictionary literal that would nest deeper than `TemplateLimits.maxNestingDepth`.
    mutating func checkNesting(_ values: [TemplateValue]) throws(RenderFailure) {
        var visits = 0
        for v in values {
            if TemplateLimits.nestingDepth(v, visits: &visits) >= TemplateLimits.maxNestingDepth {
                throw RenderFailure(
                    "the template built a value nested more than \(TemplateLimits.maxNestingDepth) levels deep; "
                        + "refusing to render it")
            }
        }
        try step(visits / 64)  // inspecting an element is far cheaper than a loop iteration
    }

    // MARK: - Statements

    mutating func exec(_ body: [TemplateStmt]) throws(RenderFailure) -> Flow {
        for stmt in body {
            let flow = try exec(stmt)
            if flow != .normal { return flow }
        }
        return .normal
    }

    /// Evaluates `e`, attributing an error without a line to `line`.
    mutating func evalAt(_ e: TemplateExpr, line: Int) throws(RenderFailure) -> TemplateValue {
        do {
            return try eval(e)
        } catch {
            var failure = error
            if failure.line == nil { failure.line = line }
            throw failure
        }
    }

    private mutating func exec(_ stmt: TemplateStmt) throws(RenderFailure) -> Flow {
        switch stmt {
        case .data(let text):
            try emit(text)
        case .output(let e):
            let value = try evalAt(e, line: e.line)
            try at(e.line) { (r: inout TemplateRenderer) throws(RenderFailure) in try r.emit(try r.printed(value)) }
        case .conditional(let branches, let otherwise):
            for branch in branches where Py.truthy(try evalAt(branch.test, line: branch.test.line)) {
                return try exec(branch.body)
            }
            return try exec(otherwise)
        case .forLoop(let loop):
            return try execFor(loop)
        case .assign(let target, let e, let line):
            let value = try evalAt(e, line: line)
            try at(line) { (r: inout TemplateRenderer) throws(RenderFailure) in try r.bind(target, value) }
        case .assignBlock(let target, let filters, let body, let line):
            let captured = try capture(body)
            var value = TemplateValue.string(captured)
            for f in filters { value = try applyFilterCall(f, value) }
            try at(line) { (r: inout TemplateRenderer) throws(RenderFailure) in try r.bind(target, value) }
        case .loopBreak:
            return .breakLoop
        case .loopContinue:
            return .continueLoop
        case .macro(let index):
            assign(program.macros[index].nameID, .object(TemplateObject(.macro(index))))
        case .filterBlock(let filters, let body):
            var value = TemplateValue.string(try capture(body))
            for f in filters { value = try applyFilterCall(f, value) }
            try emit(try printed(value))
        case .with(let bindings, let body):
            var values: [TemplateValue] = []
            for (_, e) in bindings { values.append(try evalAt(e, line: e.line)) }
            pushFrame()
            for (i, (target, _)) in bindings.enumerated() { try bind(target, values[i]) }
            let flow = try exec(body)
            popFrame()
            return flow
        case .scoped(let body):
            pushFrame()
            let flow = try exec(body)
            popFrame()
            return flow
        }
        return .normal
    }

    private mutating func at(_ line: Int, _ body: (inout TemplateRenderer) throws(RenderFailure) -> Void)
        throws(RenderFailure)
    {
        do {
            try body(&self)
        } catch {
            var failure = error
            if failure.line == nil { failure.line = line }
            throw failure
        }
    }

    private mutating func applyFilterCall(_ f: TemplateFilterCall, _ value: TemplateValue) throws(RenderFailure)
        -> TemplateValue
    {
        do {
            let args = try evalArgs(f.args)
            let result = try applyFilter(f.filter, value, args, valueExpr: nil)
            try TemplateLimits.check(result)
            return result
        } catch {
            var failure = error
            if failure.line == nil { failure.line = f.line }
            throw failure
        }
    }

    /// Renders `body` in a new frame and returns its output instead of emitting it.
    private mutating func capture(_ body: [TemplateStmt]) throws(RenderFailure) -> String {
        let saved = out
        out = ""
        pushFrame()
        _ = try exec(body)
        popFrame()
        let captured = out
        out = saved
        return captured
    }

    private mutating func execFor(_ loop: TemplateForLoop) throws(RenderFailure) -> Flow {
        let iterable = try evalAt(loop.iterable, line: loop.line)
        guard var items = Py.iterate(iterable) else {
            throw RenderFailure("'\(Py.typeName(iterable))' object is not iterable", line: loop.line)
        }
        if let condition = loop.condition {
            var kept: [TemplateValue] = []
            kept.reserveCapacity(items.count)
            for item in items {
                try at(loop.line) { (r: inout TemplateRenderer) throws(RenderFailure) in try r.step() }
                pushFrame()
                try at(loop.line) { (r: inout TemplateRenderer) throws(RenderFailure) in try r.bind(loop.target, item) }
                let keep = Py.truthy(try evalAt(condition, line: loop.line))
                popFrame()
                if keep { kept.append(item) }
            }
            items = kept
        }
        if items.isEmpty {
            pushFrame()
            let flow = try exec(loop.otherwise)
            popFrame()
            return flow
        }
        // Non-recursive loops always have depth 1 (jinja2 counts recursion levels only).
        for i in items.indices {
            try at(loop.line) { (r: inout TemplateRenderer) throws(RenderFailure) in try r.step() }
            let state = LoopState(items: items, index0: i, depth0: 0)
            pushFrame()
            locals.append((TemplateParser.loopID, .object(TemplateObject(.loop(state)))))
            if case .name(let id) = loop.target {
                locals.append((id, items[i]))
            } else {
                try at(loop.line) { (r: inout TemplateRenderer) throws(RenderFailure) in try r.bind(loop.target, items[i]) }
            }
            let flow = try exec(loop.body)
            popFrame()
            if flow == .breakLoop { break }
        }
        return .normal
    }

    mutating func bind(_ target: TemplateTarget, _ value: TemplateValue) throws(RenderFailure) {
        switch target {
        case .name(let id):
            assign(id, value)
        case .tuple(let targets):
            guard let items = Py.iterate(value), !value.isUndefined else {
                throw RenderFailure("cannot unpack non-iterable \(Py.typeName(value)) object")
            }
            if items.count > targets.count {
                throw RenderFailure("too many values to unpack (expected \(targets.count))")
            }
            if items.count < targets.count {
                throw RenderFailure("not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            for (t, v) in zip(targets, items) { try bind(t, v) }
        case .namespaceAttr(let ns, let attr):
            guard case .object(let o) = lookup(ns), case .namespace(let id) = o.kind else {
                throw RenderFailure("cannot assign attribute on non-namespace object")
            }
            namespaces[id][attr] = value
        }
    }

    // MARK: - Expressions

    func lookup(_ id: Int) -> TemplateValue {
        var i = locals.count - 1
        while i >= 0 {
            if locals[i].id == id { return locals[i].value }
            i -= 1
        }
        if let v = root[id] { return v }
        if program.isGlobalFunction[id] { return .object(TemplateObject(.builtin(program.names[id]))) }
        return .undefined
    }

    /// A readable rendering of an expression for error messages.
    func describe(_ e: TemplateExpr?) -> String {
        guard let e else { return "value" }
        switch e.kind {
        case .name(let id): return program.names[id]
        case .getattr(let o, let a): return describe(o) + "." + a
        case .getitem(let o, let k):
            if case .literal(let v) = k.kind { return describe(o) + "[" + Py.repr(v) + "]" }
            return describe(o) + "[...]"
        case .call(let c, _): return describe(c) + "(...)"
        case .filter(let v, let f, _): return describe(v) + "|" + f.rawValue
        case .literal(let v): return Py.repr(v)
        default: return "expression"
        }
    }

    func undefinedError(_ e: TemplateExpr?) -> RenderFailure {
        RenderFailure("'\(describe(e))' is undefined")
    }

    mutating func evalArgs(_ args: TemplateArgs) throws(RenderFailure) -> TemplateCallArgs {
        var result = TemplateCallArgs()
        if args.positional.isEmpty && args.keywords.isEmpty { return result }
        result.positional.reserveCapacity(args.positional.count)
        for e in args.positional { result.positional.append(try eval(e)) }
        for (name, e) in args.keywords { result.keywords.append((name, try eval(e))) }
        return result
    }

    mutating func eval(_ e: TemplateExpr) throws(RenderFailure) -> TemplateValue {
        switch e.kind {
        case .literal(let v):
            return v
        case .name(let n):
            return lookup(n)
        case .list(let items), .tuple(let items):
            var values: [TemplateValue] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try eval(item)) }
            try checkNesting(values)
            return .array(values)
        case .dict(let items):
            var d = TemplateDictionary()
            for (k, v) in items {
                let key = try eval(k)
                guard case .string(let s) = key else {
                    throw RenderFailure("dictionary keys must be strings in this template engine, got \(Py.typeName(key))")
                }
                d[s] = try eval(v)
            }
            try checkNesting(d.values)
            return .dictionary(d)
        case .getattr(let objExpr, let name):
            // Evaluate operands before calling non-mutating helpers, so `self` is not copied.
            let obj = try eval(objExpr)
            return try getattr(obj, name, objExpr)
        case .getitem(let objExpr, let keyExpr):
            let obj = try eval(objExpr)
            let key = try eval(keyExpr)
            return try getitem(obj, key, objExpr)
        case .slice(let objExpr, let start, let stop, let step):
            let obj = try eval(objExpr)
            let a = try start.map { (x) throws(RenderFailure) in try eval(x) } ?? .none
            let b = try stop.map { (x) throws(RenderFailure) in try eval(x) } ?? .none
            let c = try step.map { (x) throws(RenderFailure) in try eval(x) } ?? .none
            return try slice(obj, a, b, c, objExpr)
        case .call(let calleeExpr, let argExprs):
            let callee = try eval(calleeExpr)
            let args = try evalArgs(argExprs)
            let result = try call(callee, args, calleeExpr)
            try TemplateLimits.check(result)
            return result
        case .filter(let valueExpr, let name, let argExprs):
            let value = try eval(valueExpr)
            let args = try evalArgs(argExprs)
            let result = try applyFilter(name, value, args, valueExpr: valueExpr)
            try TemplateLimits.check(result)
            return result
        case .test(let valueExpr, let name, let argExprs):
            let value = try eval(valueExpr)
            let args = try evalArgs(argExprs)
            return .bool(try applyTest(name, value, args, valueExpr: valueExpr))
        case .not(let x):
            return .bool(!Py.truthy(try eval(x)))
        case .negate(let x):
            let v = try eval(x)
            switch Py.number(v) {
            case .int(let i)?:
                guard i != Int.min else { throw RenderFailure("integer overflow") }
                return .int(-i)
            case .double(let d)?: return .double(-d)
            case nil:
                if v.isUndefined { throw undefinedError(x) }
                throw RenderFailure("bad operand type for unary -: '\(Py.typeName(v))'")
            }
        case .plus(let x):
            let v = try eval(x)
            if let n = Py.number(v) { return Py.value(n) }
            if v.isUndefined { throw undefinedError(x) }
            throw RenderFailure("bad operand type for unary +: '\(Py.typeName(v))'")
        case .binary(let op, let l, let r):
            let a = try eval(l)
            let b = try eval(r)
            if a.isUndefined, !(op == .mod && b.stringValue != nil) { throw undefinedError(l) }
            if b.isUndefined, !(op == .mod && a.stringValue != nil) { throw undefinedError(r) }
            return try Py.binary(op, a, b)
        case .concat(let items):
            var s = ""
            for item in items {
                let piece = try printed(try eval(item))
                try TemplateLimits.checkString(bytes: s.utf8.count + piece.utf8.count)
                s += piece
            }
            return .string(s)
        case .and(let l, let r):
            let a = try eval(l)
            return Py.truthy(a) ? try eval(r) : a
        case .or(let l, let r):
            let a = try eval(l)
            return Py.truthy(a) ? a : try eval(r)
        case .compare(let first, let ops):
            var left = try eval(first)
            var leftExpr = first
            for (op, rhsExpr) in ops {
                let right = try eval(rhsExpr)
                if !(try compare(op, left, right, leftExpr, rhsExpr)) { return .bool(false) }
                left = right
                leftExpr = rhsExpr
            }
            return .bool(true)
        case .conditional(let test, let then, let otherwise):
            if Py.truthy(try eval(test)) { return try eval(then) }
            if let otherwise { return try eval(otherwise) }
            return .undefined
        }
    }

    private func compare(
        _ op: TemplateCompareOp, _ a: TemplateValue, _ b: TemplateValue, _ aExpr: TemplateExpr,
        _ bExpr: TemplateExpr
    ) throws(RenderFailure) -> Bool {
        switch op {
        case .eq: return Py.equals(a, b)
        case .ne: return !Py.equals(a, b)
        case .in: return try Py.contains(b, a)
        case .notIn: return !(try Py.contains(b, a))
        case .lt, .le, .gt, .ge:
            if a.isUndefined { throw undefinedError(aExpr) }
            if b.isUndefined { throw undefinedError(bExpr) }
            guard let c = Py.compare(a, b) else {
                throw RenderFailure(
                    "'\(op.rawValue)' not supported between instances of '\(Py.typeName(a))' and '\(Py.typeName(b))'")
            }
            if c == 2 { return false }
            switch op {
            case .lt: return c < 0
            case .le: return c <= 0
            case .gt: return c > 0
            default: return c >= 0
            }
        }
    }

    // MARK: - Attribute and item access

    private func method(_ receiver: TemplateValue, _ name: String) -> TemplateValue {
        .object(TemplateObject(.method(receiver: receiver, name: name)))
    }

    /// Python attribute lookup for names that are not dict keys: methods of str/dict/list,
    /// namespace attributes and the `loop` variable's attributes.
    private func attribute(_ obj: TemplateValue, _ name: String) throws(RenderFailure) -> TemplateValue {
        switch obj {
        case .string:
            if TemplateBuiltins.stringMethods.contains(name) { return method(obj, name) }
        case .dictionary:
            switch name {
            case "copy", "get", "items", "keys", "values":
                return method(obj, name)
            case "clear", "pop", "popitem", "setdefault", "update":
                throw RenderFailure("access to attribute '\(name)' of 'dict' object is unsafe.")
            default:
                break
            }
        case .array:
            if TemplateBuiltins.listMethods.contains(name) { return method(obj, name) }
            if TemplateBuiltins.listMutators.contains(name) {
                throw RenderFailure("access to attribute '\(name)' of 'list' object is unsafe.")
            }
        case .object(let o):
            switch o.kind {
            case .namespace(let id): return namespaces[id][name] ?? .undefined
            case .loop(let s): return loopAttribute(s, name, obj)
            default: break
            }
        default:
            break
        }
        return .undefined
    }

    private func loopAttribute(_ s: LoopState, _ name: String, _ obj: TemplateValue) -> TemplateValue {
        let n = s.items.count
        switch name {
        case "index": return .int(s.index0 + 1)
        case "index0": return .int(s.index0)
        case "revindex": return .int(n - s.index0)
        case "revindex0": return .int(n - s.index0 - 1)
        case "first": return .bool(s.index0 == 0)
        case "last": return .bool(s.index0 == n - 1)
        case "length": return .int(n)
        case "depth": return .int(s.depth0 + 1)
        case "depth0": return .int(s.depth0)
        case "previtem": return s.index0 > 0 ? s.items[s.index0 - 1] : .undefined
        case "nextitem": return s.index0 + 1 < n ? s.items[s.index0 + 1] : .undefined
        case "cycle": return method(obj, "cycle")
        default: return .undefined
        }
    }

    /// `obj.name`: attribute first, then item (jinja2's `Environment.getattr`).
    func getattr(_ obj: TemplateValue, _ name: String, _ objExpr: TemplateExpr?) throws(RenderFailure)
        -> TemplateValue
    {
        switch obj {
        case .undefined:
            throw undefinedError(objExpr)
        case .dictionary(let d):
            let attr = try attribute(obj, name)
            if !attr.isUndefined { return attr }
            return d[name] ?? .undefined
        default:
            return try attribute(obj, name)
        }
    }

    /// `obj[key]`: item first, then attribute for string keys (jinja2's `Environment.getitem`).
    func getitem(_ obj: TemplateValue, _ key: TemplateValue, _ objExpr: TemplateExpr?) throws(RenderFailure)
        -> TemplateValue
    {
        switch obj {
        case .undefined:
            throw undefinedError(objExpr)
        case .dictionary(let d):
            if case .string(let k) = key {
                if let v = d[k] { return v }
                return try attribute(obj, k)
            }
            return .undefined
        case .array(let a):
            if case .int(let i)? = Py.number(key) {
                let j = i < 0 ? i + a.count : i
                return j >= 0 && j < a.count ? a[j] : .undefined
            }
            if case .string(let k) = key { return try attribute(obj, k) }
            return .undefined
        case .string(let s):
            if case .int(let i)? = Py.number(key) {
                let scalars = s.unicodeScalars
                let count = scalars.count
                let j = i < 0 ? i + count : i
                guard j >= 0 && j < count else { return .undefined }
                return .string(String(scalars[scalars.index(scalars.startIndex, offsetBy: j)]))
            }
            if case .string(let k) = key { return try attribute(obj, k) }
            return .undefined
        case .object:
            if case .string(let k) = key { return try attribute(obj, k) }
            return .undefined
        default:
            return .undefined
        }
    }

    /// Python slice index resolution; nil when the bounds are not ints or None.
    static func sliceIndices(count: Int, _ start: TemplateValue, _ stop: TemplateValue, _ step: TemplateValue)
        throws(RenderFailure) -> [Int]?
    {
        func intOrNil(_ v: TemplateValue) -> Int?? {
            if case .none = v { return .some(nil) }
            if case .int(let i)? = Py.number(v) { return .some(i) }
            return nil
        }
        guard let a = intOrNil(start), let b = intOrNil(stop), let c = intOrNil(step) else { return nil }
        let st = c ?? 1
        if st == 0 { throw RenderFailure("slice step cannot be zero") }
        let lower = st < 0 ? -1 : 0
        let upper = st < 0 ? count - 1 : count
        func clamp(_ v: Int?, _ dflt: Int) -> Int {
            guard var v else { return dflt }
            if v < 0 {
                v += count
                if v < lower { v = lower }
            } else if v > upper {
                v = upper
            }
            return v
        }
        let from = clamp(a, st < 0 ? upper : lower)
        let to = clamp(b, st < 0 ? lower : upper)
        var result: [Int] = []
        var i = from
        if st > 0 {
            while i < to {
                result.append(i)
                i += st
            }
        } else {
            while i > to {
                result.append(i)
                i += st
            }
        }
        return result
    }

    private func slice(
        _ obj: TemplateValue, _ start: TemplateValue, _ stop: TemplateValue, _ step: TemplateValue,
        _ objExpr: TemplateExpr
    ) throws(RenderFailure) -> TemplateValue {
        switch obj {
        case .undefined:
            throw undefinedError(objExpr)
        case .array(let a):
            guard let idx = try Self.sliceIndices(count: a.count, start, stop, step) else { return .undefined }
            if case .none = step, idx.count == a.count { return obj }
            return .array(idx.map { a[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            guard let idx = try Self.sliceIndices(count: scalars.count, start, stop, step) else { return .undefined }
            var view = String.UnicodeScalarView()
            for i in idx { view.append(scalars[i]) }
            return .string(String(view))
        default:
            return .undefined
        }
    }

    // MARK: - Calls

    mutating func call(_ callee: TemplateValue, _ args: TemplateCallArgs, _ calleeExpr: TemplateExpr?)
        throws(RenderFailure) -> TemplateValue
    {
        switch callee {
        case .undefined:
            throw undefinedError(calleeExpr)
        case .object(let o):
            switch o.kind {
            case .builtin(let name): return try callGlobal(name, args)
            case .method(let receiver, let name): return try callMethod(receiver, name, args)
            case .macro(let index): return try callMacro(index, args)
            case .namespace, .loop: break
            }
        default:
            break
        }
        throw RenderFailure("'\(Py.typeName(callee))' object is not callable")
    }

    private mutating func callMacro(_ index: Int, _ args: TemplateCallArgs) throws(RenderFailure) -> TemplateValue {
        let macro = program.macros[index]
        guard args.positional.count <= macro.params.count else {
            throw RenderFailure("macro '\(macro.name)' takes not more than \(macro.params.count) argument(s)")
        }
        for (name, _) in args.keywords where !macro.params.contains(where: { $0.name == name }) {
            throw RenderFailure("macro '\(macro.name)' takes no keyword argument '\(name)'")
        }
        guard callDepth < TemplateLimits.maxMacroDepth else {
            throw RenderFailure(
                "maximum macro recursion depth exceeded (macros nested more than \(TemplateLimits.maxMacroDepth) calls deep)")
        }
        try step()
        let savedLocals = locals
        let savedFrames = frameStarts
        let savedOut = out
        locals = []
        frameStarts = [0]
        out = ""
        callDepth += 1
        for (i, param) in macro.params.enumerated() {
            var value: TemplateValue
            if i < args.positional.count {
                value = args.positional[i]
            } else if let kw = args.keywords.first(where: { $0.name == param.name }) {
                value = kw.value
            } else if let dflt = param.defaultValue {
                value = try evalAt(dflt, line: macro.line)
            } else {
                value = .undefined
            }
            assign(param.id, value)
        }
        _ = try exec(macro.body)
        let result = out
        callDepth -= 1
        locals = savedLocals
        frameStarts = savedFrames
        out = savedOut
        return .string(result)
    }
}
