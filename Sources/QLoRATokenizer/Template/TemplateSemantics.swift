// Python semantics for template values: truthiness, str()/repr(), ==, ordering, len(), iteration,
// arithmetic and float formatting, as jinja2 inherits them from Python.

import Foundation

/// An error raised while rendering; the renderer attaches the line of the statement being run.
struct RenderFailure: Error {
    var kind: TemplateError.Kind
    var message: String
    var line: Int?

    init(_ message: String, kind: TemplateError.Kind = .runtime, line: Int? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
    }
}

enum Py {
    // MARK: - Type names, truthiness, len, iteration

    static func typeName(_ v: TemplateValue) -> String {
        switch v {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .array: return "list"
        case .dictionary: return "dict"
        case .object(let o):
            switch o.kind {
            case .namespace: return "Namespace"
            case .loop: return "LoopContext"
            case .builtin, .macro: return "function"
            case .method: return "builtin_function_or_method"
            }
        }
    }

    static func truthy(_ v: TemplateValue) -> Bool {
        switch v {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .dictionary(let d): return !d.isEmpty
        case .object: return true
        }
    }

    /// Python `len()`; nil when the value has no length. `Undefined` has length 0.
    static func len(_ v: TemplateValue) -> Int? {
        switch v {
        case .undefined: return 0
        case .string(let s): return s.unicodeScalars.count
        case .array(let a): return a.count
        case .dictionary(let d): return d.count
        case .object(let o):
            if case .loop(let state) = o.kind { return state.items.count }
            return nil
        default: return nil
        }
    }

    /// Python `iter()` materialized: list elements, dict keys, string characters; empty for
    /// `Undefined`; nil when the value is not iterable.
    static func iterate(_ v: TemplateValue) -> [TemplateValue]? {
        switch v {
        case .undefined: return []
        case .array(let a): return a
        case .dictionary(let d): return d.keys.map { .string($0) }
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        default: return nil
        }
    }

    /// One call per string built: see `appendEach`.
    static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    // MARK: - str() and repr()

    /// Python `str()`, with jinja2's `Undefined` printing as "".
    static func str(_ v: TemplateValue) -> String {
        switch v {
        case .undefined: return ""
        case .string(let s): return s
        default: return repr(v)
        }
    }

    static func repr(_ v: TemplateValue) -> String {
        switch v {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return formatDouble(d)
        case .string(let s): return reprString(s)
        case .array(let a): return "[" + a.map(repr).joined(separator: ", ") + "]"
        case .dictionary(let d):
            return "{" + d.pairs.map { reprString($0.key) + ": " + repr($0.value) }.joined(separator: ", ") + "}"
        case .object(let o):
            switch o.kind {
            case .namespace: return "<Namespace>"
            case .loop(let s): return "<LoopContext \(s.index0 + 1)/\(s.items.count)>"
            case .builtin(let n): return "<function \(n)>"
            case .method(let r, let n): return "<built-in method \(n) of \(typeName(r)) object>"
            case .macro: return "<Macro>"
            }
        }
    }

    /// Python's repr() of a str: single quotes unless the text has a single quote and no double one.
    static func reprString(_ s: String) -> String {
        let hasSingle = s.unicodeScalars.contains("'")
        let hasDouble = s.unicodeScalars.contains("\"")
        let quote: Unicode.Scalar = hasSingle && !hasDouble ? "\"" : "'"
        var out = String.UnicodeScalarView()
        out.append(quote)
        for c in s.unicodeScalars {
            switch c {
            // One scalar at a time: many `append(contentsOf:)` calls on a UnicodeScalarView take
            // quadratic time (Swift 6.3 on Linux), which a string of a million newlines would show.
            case "\\": out.appendEach("\\\\".unicodeScalars)
            case "\n": out.appendEach("\\n".unicodeScalars)
            case "\r": out.appendEach("\\r".unicodeScalars)
            case "\t": out.appendEach("\\t".unicodeScalars)
            default:
                if c == quote {
                    out.append("\\")
                    out.append(c)
                } else if c.value < 0x20 || c.value == 0x7F || (c.value >= 0x80 && !isPrintable(c)) {
                    let hex = String(c.value, radix: 16)
                    let (prefix, width) = c.value <= 0xFF ? ("\\x", 2) : c.value <= 0xFFFF ? ("\\u", 4) : ("\\U", 8)
                    out.appendEach((prefix + String(repeating: "0", count: width - hex.count) + hex).unicodeScalars)
                } else {
                    out.append(c)
                }
            }
        }
        out.append(quote)
        return String(out)
    }

    private static func isPrintable(_ c: Unicode.Scalar) -> Bool {
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
            .spaceSeparator:
            return false
        default:
            return true
        }
    }

    /// Python's repr() of a float: shortest round-trip digits, fixed notation for decimal exponents
    /// in [-4, 16), scientific otherwise, always with a fractional part or exponent.
    static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
        let desc = "\(Swift.abs(d))"
        var mantissa = Substring(desc)
        var exponent = 0
        if let e = desc.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = desc[..<e]
            exponent = Int(desc[desc.index(after: e)...].filter { $0 != "+" }) ?? 0
        }
        var digits: [Character] = []
        var pointPos: Int?
        for ch in mantissa {
            if ch == "." { pointPos = digits.count } else { digits.append(ch) }
        }
        var decpt = (pointPos ?? digits.count) + exponent
        while digits.count > 1, digits.first == "0" {
            digits.removeFirst()
            decpt -= 1
        }
        while digits.count > 1, digits.last == "0" { digits.removeLast() }
        var out = d < 0 ? "-" : ""
        if decpt > -4 && decpt <= 16 {
            if decpt <= 0 {
                out += "0." + String(repeating: "0", count: -decpt) + String(digits)
            } else if decpt >= digits.count {
                out += String(digits) + String(repeating: "0", count: decpt - digits.count) + ".0"
            } else {
                out += String(digits[..<decpt]) + "." + String(digits[decpt...])
            }
        } else {
            let x = decpt - 1
            out += String(digits[0])
            if digits.count > 1 { out += "." + String(digits[1...]) }
            let ax = Swift.abs(x)
            out += (x < 0 ? "e-" : "e+") + (ax < 10 ? "0" : "") + String(ax)
        }
        return out
    }

    // MARK: - Numbers

    enum Number {
        case int(Int)
        case double(Double)

        var asDouble: Double {
            switch self {
            case .int(let i): return Double(i)
            case .double(let d): return d
            }
        }
    }

    /// int, float or bool (as 0/1) as a number.
    static func number(_ v: TemplateValue) -> Number? {
        switch v {
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .bool(let b): return .int(b ? 1 : 0)
        default: return nil
        }
    }

    static func value(_ n: Number) -> TemplateValue {
        switch n {
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        }
    }

    // MARK: - Equality and ordering

    static func equals(_ a: TemplateValue, _ b: TemplateValue) -> Bool {
        if let x = number(a), let y = number(b) {
            switch (x, y) {
            case (.int(let i), .int(let j)): return i == j
            default: return x.asDouble == y.asDouble
            }
        }
        switch (a, b) {
        case (.string(let x), .string(let y)): return x == y && x.utf8.elementsEqual(y.utf8)
        case (.none, .none), (.undefined, .undefined): return true
        case (.array(let x), .array(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { equals($0, $1) }
        case (.dictionary(let x), .dictionary(let y)):
            guard x.count == y.count else { return false }
            for (k, v) in x {
                guard let w = y[k], equals(v, w) else { return false }
            }
            return true
        case (.object(let x), .object(let y)): return x == y
        default: return false
        }
    }

    /// Python ordering (`<`): -1, 0 or 1; nil when the types cannot be ordered.
    static func compare(_ a: TemplateValue, _ b: TemplateValue) -> Int? {
        if let x = number(a), let y = number(b) {
            switch (x, y) {
            case (.int(let i), .int(let j)): return i < j ? -1 : i == j ? 0 : 1
            default:
                let (p, q) = (x.asDouble, y.asDouble)
                if p.isNaN || q.isNaN { return 2 }  // every comparison false
                return p < q ? -1 : p == q ? 0 : 1
            }
        }
        switch (a, b) {
        case (.string(let x), .string(let y)):
            var i = x.unicodeScalars.makeIterator()
            var j = y.unicodeScalars.makeIterator()
            while true {
                switch (i.next(), j.next()) {
                case (nil, nil): return 0
                case (nil, _): return -1
                case (_, nil): return 1
                case (let c?, let d?):
                    if c != d { return c.value < d.value ? -1 : 1 }
                }
            }
        case (.array(let x), .array(let y)):
            for (p, q) in zip(x, y) where !equals(p, q) {
                return compare(p, q)
            }
            return x.count < y.count ? -1 : x.count == y.count ? 0 : 1
        default:
            return nil
        }
    }

    static func contains(_ container: TemplateValue, _ item: TemplateValue) throws(RenderFailure) -> Bool {
        switch container {
        case .undefined: return false
        case .string(let s):
            guard case .string(let sub) = item else {
                throw RenderFailure("'in <string>' requires string as left operand, not \(typeName(item))")
            }
            if sub.isEmpty { return true }
            return find(Array(s.unicodeScalars), Array(sub.unicodeScalars), from: 0) != nil
        case .array(let a): return a.contains { equals($0, item) }
        case .dictionary(let d):
            if case .string(let k) = item { return d[k] != nil }
            return false
        default:
            throw RenderFailure("argument of type '\(typeName(container))' is not iterable")
        }
    }

    /// Index of the first occurrence of `needle` in `hay` at or after `from`.
    static func find(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar], from: Int) -> Int? {
        if needle.isEmpty { return from <= hay.count ? from : nil }
        guard hay.count >= needle.count else { return nil }
        var i = Swift.max(from, 0)
        while i + needle.count <= hay.count {
            if hay[i] == needle[0] {
                var k = 1
                while k < needle.count, hay[i + k] == needle[k] { k += 1 }
                if k == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    // MARK: - Arithmetic

    private static func unsupported(_ op: String, _ a: TemplateValue, _ b: TemplateValue) -> RenderFailure {
        RenderFailure("unsupported operand type(s) for \(op): '\(typeName(a))' and '\(typeName(b))'")
    }

    private static func overflow() -> RenderFailure { RenderFailure("integer overflow") }

    static func binary(_ op: TemplateBinaryOp, _ a: TemplateValue, _ b: TemplateValue) throws(RenderFailure)
        -> TemplateValue
    {
        if let x = number(a), let y = number(b) {
            return try arithmetic(op, x, y)
        }
        switch (op, a, b) {
        case (.add, .string(let x), .string(let y)):
            try TemplateLimits.checkString(bytes: x.utf8.count + y.utf8.count)
            return .string(x + y)
        case (.add, .array(let x), .array(let y)):
            try TemplateLimits.checkList(count: x.count + y.count)
            return .array(x + y)
        case (.add, .string, _):
            throw RenderFailure("can only concatenate str (not \"\(typeName(b))\") to str")
        case (.add, .array, _):
            throw RenderFailure("can only concatenate list (not \"\(typeName(b))\") to list")
        case (.mul, .string, _), (.mul, _, .string), (.mul, .array, _), (.mul, _, .array):
            let aIsSeq = a.stringValue != nil || a.arrayValue != nil
            let (seq, other) = aIsSeq ? (a, b) : (b, a)
            guard let num = number(other), case .int(let n) = num else {
                throw RenderFailure("can't multiply sequence by non-int of type '\(typeName(other))'")
            }
            if case .string(let str) = seq {
                try TemplateLimits.checkString(bytes: TemplateLimits.product(str.utf8.count, max(n, 0)))
                return .string(n > 0 ? String(repeating: str, count: n) : "")
            }
            if case .array(let items) = seq { try TemplateLimits.checkList(count: TemplateLimits.product(items.count, max(n, 0))) }
            var out: [TemplateValue] = []
            if n > 0, case .array(let items) = seq { for _ in 0..<n { out += items } }
            return .array(out)
        case (.mod, .string(let format), _):
            return .string(try percentFormat(format, b))
        default:
            throw unsupported(op.rawValue, a, b)
        }
    }

    private static func arithmetic(_ op: TemplateBinaryOp, _ x: Number, _ y: Number) throws(RenderFailure)
        -> TemplateValue
    {
        if case .int(let i) = x, case .int(let j) = y {
            switch op {
            case .add:
                let (r, o) = i.addingReportingOverflow(j)
                if o { throw overflow() }
                return .int(r)
            case .sub:
                let (r, o) = i.subtractingReportingOverflow(j)
                if o { throw overflow() }
                return .int(r)
            case .mul:
                let (r, o) = i.multipliedReportingOverflow(by: j)
                if o { throw overflow() }
                return .int(r)
            case .div:
                if j == 0 { throw RenderFailure("division by zero") }
                return .double(Double(i) / Double(j))
            case .floordiv:
                if j == 0 { throw RenderFailure("integer division or modulo by zero") }
                var q = i / j
                if (i % j != 0) && ((i < 0) != (j < 0)) { q -= 1 }
                return .int(q)
            case .mod:
                if j == 0 { throw RenderFailure("integer division or modulo by zero") }
                var r = i % j
                if r != 0 && ((r < 0) != (j < 0)) { r += j }
                return .int(r)
            case .pow:
                if j < 0 { return .double(pow(Double(i), Double(j))) }
                var result = 1
                var base = i
                var e = j
                while e > 0 {
                    if e & 1 == 1 {
                        let (r, o) = result.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        result = r
                    }
                    e >>= 1
                    if e > 0 {
                        let (b2, o) = base.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        base = b2
                    }
                }
                return .int(result)
            }
        }
        let p = x.asDouble
        let q = y.asDouble
        switch op {
        case .add: return .double(p + q)
        case .sub: return .double(p - q)
        case .mul: return .double(p * q)
        case .div:
            if q == 0 { throw RenderFailure("float division by zero") }
            return .double(p / q)
        case .floordiv:
            if q == 0 { throw RenderFailure("float floor division by zero") }
            return .double((p / q).rounded(.down))
        case .mod:
            if q == 0 { throw RenderFailure("float modulo") }
            var r = p.truncatingRemainder(dividingBy: q)
            if r != 0 && ((r < 0) != (q < 0)) { r += q }
            return .double(r)
        case .pow:
            return .double(pow(p, q))
        }
    }

    static func pow(_ a: Double, _ b: Double) -> Double { Foundation.pow(a, b) }

    /// Python `%` string formatting, for the conversions templates use: %s %r %d %i %f %% (with
    /// optional flags, width and precision).
    static func percentFormat(_ format: String, _ arg: TemplateValue) throws(RenderFailure) -> String {
        var args: [TemplateValue]
        if case .array(let a) = arg { args = a } else { args = [arg] }
        var out = ""
        let f = Array(format.unicodeScalars)
        var i = 0
        var argIndex = 0
        while i < f.count {
            let c = f[i]
            if c != "%" {
                out.unicodeScalars.append(c)
                i += 1
                continue
            }
            i += 1
            guard i < f.count else { throw RenderFailure("incomplete format") }
            var flags = ""
            while i < f.count, "-+ 0#".unicodeScalars.contains(f[i]) {
                flags.unicodeScalars.append(f[i])
                i += 1
            }
            var width = 0
            while i < f.count, let d = Int(String(f[i])) {
                width = min(width * 10 + d, Int(Int32.max))
                i += 1
            }
            var precision: Int?
            if i < f.count, f[i] == "." {
                i += 1
                var p = 0
                while i < f.count, let d = Int(String(f[i])) {
                    p = p * 10 + d
                    i += 1
                }
                precision = p
            }
            guard i < f.count else { throw RenderFailure("incomplete format") }
            let conv = f[i]
            i += 1
            if conv == "%" {
                out += "%"
                continue
            }
            guard argIndex < args.count else { throw RenderFailure("not enough arguments for format string") }
            let a = args[argIndex]
            argIndex += 1
            var piece: String
            switch conv {
            case "s": piece = str(a)
            case "r": piece = repr(a)
            case "d", "i":
                guard let n = number(a) else {
                    throw RenderFailure("%\(conv) format: a real number is required, not \(typeName(a))")
                }
                switch n {
                case .int(let v): piece = String(v)
                case .double(let v): piece = String(Int(v))
                }
                if flags.contains("+"), !piece.hasPrefix("-") { piece = "+" + piece }
            case "f", "F":
                guard let n = number(a) else {
                    throw RenderFailure("must be real number, not \(typeName(a))")
                }
                piece = fixed(n.asDouble, precision ?? 6)
                if flags.contains("+"), !piece.hasPrefix("-") { piece = "+" + piece }
            default:
                throw RenderFailure("unsupported format character '\(conv)'")
            }
            if let precision, conv == "s" || conv == "r" {
                piece = string(Array(piece.unicodeScalars).prefix(precision))
            }
            let len = piece.unicodeScalars.count
            try TemplateLimits.checkString(bytes: out.utf8.count + max(width, len) + piece.utf8.count)
            if len < width {
                let pad = width - len
                if flags.contains("-") {
                    piece += String(repeating: " ", count: pad)
                } else if flags.contains("0"), conv != "s", conv != "r" {
                    let neg = piece.hasPrefix("-") || piece.hasPrefix("+")
                    let sign = neg ? String(piece.prefix(1)) : ""
                    piece = sign + String(repeating: "0", count: pad) + (neg ? String(piece.dropFirst()) : piece)
                } else {
                    piece = String(repeating: " ", count: pad) + piece
                }
            }
            out += piece
        }
        if argIndex < args.count, case .array = arg {
            throw RenderFailure("not all arguments converted during string formatting")
        }
        return out
    }

    /// Fixed-point formatting with `digits` decimals, rounding half to even on the exact binary
    /// value as printf does (good to ~15 significant digits).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (Swift.abs(value) * scale).rounded(.toNearestOrEven)
        guard scaled < 9.0e18 else { return formatDouble(value) }
        let n = UInt64(scaled)
        var s = String(n)
        if digits > 0 {
            if s.count <= digits { s = String(repeating: "0", count: digits - s.count + 1) + s }
            s.insert(".", at: s.index(s.endIndex, offsetBy: -digits))
        }
        return (value < 0 || (value == 0 && value.sign == .minus)) && scaled != 0 ? "-" + s : s
    }
}

extension String.UnicodeScalarView {
    /// Appends `scalars` one at a time. Repeated `append(contentsOf:)` calls on a UnicodeScalarView take
    /// quadratic time in the length built (Swift 6.3 on Linux); single-scalar appends are amortized O(1).
    mutating func appendEach<S: Sequence>(_ scalars: S) where S.Element == Unicode.Scalar {
        for c in scalars { append(c) }
    }
}
