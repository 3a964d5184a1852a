// Filters, tests, global functions and str/dict/list methods available to templates, with the
// behaviour of jinja2 3.1 (and Python) for the inputs chat templates pass them. `tojson` is the one
// transformers installs: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
// sort_keys=False)`, which keeps non-ASCII text and does not HTML-escape.

import Foundation

enum TemplateBuiltins {
    static let globalFunctions: Set<String> = ["range", "namespace", "dict", "raise_exception", "strftime_now"]

    static let stringMethods: Set<String> = [
        "capitalize", "casefold", "center", "count", "endswith", "find", "format", "index", "isalnum", "isalpha",
        "isdecimal", "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "join", "ljust", "lower",
        "lstrip", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rsplit", "rstrip",
        "split", "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
    ]
    static let listMethods: Set<String> = ["copy", "count", "index"]
    static let listMutators: Set<String> = ["append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"]
}

// MARK: - Argument binding

extension TemplateCallArgs {
    /// Binds positional and keyword arguments to `params` in order; absent ones are nil.
    func bind(_ params: [String], _ function: String) throws(RenderFailure) -> [TemplateValue?] {
        guard positional.count <= params.count else {
            throw RenderFailure("\(function)() takes at most \(params.count) argument(s) (\(positional.count) given)")
        }
        var result: [TemplateValue?] = positional.map { $0 }
        result += Array(repeating: nil, count: params.count - positional.count)
        for (name, value) in keywords {
            guard let i = params.firstIndex(of: name) else {
                throw RenderFailure("\(function)() got an unexpected keyword argument '\(name)'")
            }
            if result[i] != nil { throw RenderFailure("\(function)() got multiple values for argument '\(name)'") }
            result[i] = value
        }
        return result
    }
}

// MARK: - Python string helpers

enum PyString {
    static func isSpace(_ c: Unicode.Scalar) -> Bool { TemplateLexer.isSpace(c) }

    static func strip(_ s: String, _ chars: TemplateValue?, left: Bool, right: Bool) throws(RenderFailure) -> String {
        let set: Set<Unicode.Scalar>?
        switch chars {
        case nil, .none?, .undefined?: set = nil
        case .string(let c)?: set = Set(c.unicodeScalars)
        case let other?: throw RenderFailure("strip arg must be None or str, not \(Py.typeName(other))")
        }
        let remove: (Unicode.Scalar) -> Bool = { c in set.map { $0.contains(c) } ?? isSpace(c) }
        let scalars = s.unicodeScalars
        var a = scalars.startIndex
        var b = scalars.endIndex
        if left { while a < b, remove(scalars[a]) { a = scalars.index(after: a) } }
        if right {
            while b > a {
                let p = scalars.index(before: b)
                if !remove(scalars[p]) { break }
                b = p
            }
        }
        if a == scalars.startIndex && b == scalars.endIndex { return s }
        return String(scalars[a..<b])
    }

    static func split(_ s: String, _ sep: TemplateValue?, _ maxsplit: TemplateValue?, fromRight: Bool)
        throws(RenderFailure) -> [TemplateValue]
    {
        var limit = -1
        if let maxsplit, !maxsplit.isNone {
            guard case .int(let m)? = Py.number(maxsplit) else {
                throw RenderFailure("'\(Py.typeName(maxsplit))' object cannot be interpreted as an integer")
            }
            limit = m
        }
        let scalars = Array(s.unicodeScalars)
        var parts: [String] = []
        switch sep {
        case nil, .none?:
            // Runs of whitespace separate; leading/trailing whitespace is ignored.
            if !fromRight {
                var i = 0
                while true {
                    while i < scalars.count, isSpace(scalars[i]) { i += 1 }
                    if i >= scalars.count { break }
                    if limit >= 0 && parts.count == limit {
                        var end = scalars.count
                        while end > i, isSpace(scalars[end - 1]) { end -= 1 }
                        parts.append(Py.string(scalars[i..<end]))
                        break
                    }
                    let start = i
                    while i < scalars.count, !isSpace(scalars[i]) { i += 1 }
                    parts.append(Py.string(scalars[start..<i]))
                }
            } else {
                var i = scalars.count
                while true {
                    while i > 0, isSpace(scalars[i - 1]) { i -= 1 }
                    if i <= 0 { break }
                    if limit >= 0 && parts.count == limit {
                        var start = 0
                        while start < i, isSpace(scalars[start]) { start += 1 }
                        parts.append(Py.string(scalars[start..<i]))
                        break
                    }
                    let end = i
                    while i > 0, !isSpace(scalars[i - 1]) { i -= 1 }
                    parts.append(Py.string(scalars[i..<end]))
                }
                parts.reverse()
            }
        case .string(let sepString)?:
            let needle = Array(sepString.unicodeScalars)
            guard !needle.isEmpty else { throw RenderFailure("empty separator") }
            if !fromRight {
                var start = 0
                while limit < 0 || parts.count < limit, let at = Py.find(scalars, needle, from: start) {
                    parts.append(Py.string(scalars[start..<at]))
                    start = at + needle.count
                }
                parts.append(Py.string(scalars[start...]))
            } else {
                var end = scalars.count
                var i = end - needle.count
                while i >= 0, limit < 0 || parts.count < limit {
                    if Array(scalars[i..<(i + needle.count)]) == needle {
                        parts.append(Py.string(scalars[(i + needle.count)..<end]))
                        end = i
                        i -= needle.count
                    } else {
                        i -= 1
                    }
                }
                parts.append(Py.string(scalars[0..<end]))
                parts.reverse()
            }
        case let other?:
            throw RenderFailure("must be str or None, not \(Py.typeName(other))")
        }
        return parts.map { .string($0) }
    }

    /// Python `str.splitlines()`.
    static func splitlines(_ s: String, keepends: Bool = false) -> [String] {
        let scalars = Array(s.unicodeScalars)
        var lines: [String] = []
        var start = 0
        var i = 0
        while i < scalars.count {
            let c = scalars[i].value
            var breakLen = 0
            if c == 0x0D, i + 1 < scalars.count, scalars[i + 1] == "\n" {
                breakLen = 2
            } else if [0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029].contains(c) {
                breakLen = 1
            }
            if breakLen > 0 {
                lines.append(Py.string(scalars[start..<(keepends ? i + breakLen : i)]))
                i += breakLen
                start = i
            } else {
                i += 1
            }
        }
        if start < scalars.count { lines.append(Py.string(scalars[start...])) }
        return lines
    }

    /// Python `str.title()`: uppercase a cased character that follows an uncased one.
    static func pyTitle(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s.unicodeScalars {
            let cased = c.properties.isCased
            if cased {
                out += previousCased ? String(c).lowercased() : c.properties.titlecaseMapping
            } else {
                out.unicodeScalars.append(c)
            }
            previousCased = cased
        }
        return out
    }

    /// Python `str.capitalize()`: first character title-cased, the rest lowercased.
    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return first.properties.titlecaseMapping + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())).lowercased()
    }

    /// jinja2's `title` filter: words start after `-`, whitespace, `(`, `{`, `[` or `<`.
    static func jinjaTitle(_ s: String) -> String {
        var out = ""
        var atWordStart = true
        for c in s.unicodeScalars {
            let isBoundary = c == "-" || c == "(" || c == "{" || c == "[" || c == "<" || isSpace(c)
            if isBoundary {
                out.unicodeScalars.append(c)
                atWordStart = true
            } else if atWordStart {
                out += String(c).uppercased()
                atWordStart = false
            } else {
                out += String(c).lowercased()
            }
        }
        return out
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int) throws(RenderFailure) -> String {
        if count == 0 { return s }
        // Each replacement adds at most `new`'s bytes: refuse before building more than the limit.
        let grows = new.utf8.count > old.utf8.count
        var added = 0
        func replacing() throws(RenderFailure) {
            guard grows else { return }
            added += new.utf8.count
            try TemplateLimits.checkString(bytes: s.utf8.count + added)
        }
        let hay = Array(s.unicodeScalars)
        let needle = Array(old.unicodeScalars)
        let replacement = Array(new.unicodeScalars)
        // Built as an array and converted once: appending to a String.UnicodeScalarView piece by piece
        // is quadratic on long strings.
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(hay.count)
        var replaced = 0
        if needle.isEmpty {
            // Python inserts `new` between characters and at both ends.
            for c in hay {
                if count < 0 || replaced < count {
                    try replacing()
                    out.append(contentsOf: replacement)
                    replaced += 1
                }
                out.append(c)
            }
            if count < 0 || replaced < count { out.append(contentsOf: replacement) }
            return Py.string(out[...])
        }
        var i = 0
        while i < hay.count {
            if count < 0 || replaced < count, let at = Py.find(hay, needle, from: i) {
                try replacing()
                out.append(contentsOf: hay[i..<at])
                out.append(contentsOf: replacement)
                i = at + needle.count
                replaced += 1
            } else {
                out.append(contentsOf: hay[i...])
                break
            }
        }
        return Py.string(out[...])
    }

    static func htmlEscape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&#34;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// `str.format` with `{}`, `{0}`, `{name}` and `{{`/`}}` (no format specs or conversions).
    static func format(_ s: String, _ args: TemplateCallArgs) throws(RenderFailure) -> String {
        let f = Array(s.unicodeScalars)
        var out = ""
        var auto = 0
        var i = 0
        while i < f.count {
            let c = f[i]
            if c == "{" {
                if i + 1 < f.count, f[i + 1] == "{" {
                    out += "{"
                    i += 2
                    continue
                }
                guard let close = f[i...].firstIndex(of: "}") else { throw RenderFailure("Single '{' encountered in format string") }
                let field = Py.string(f[(i + 1)..<close])
                if field.contains(":") || field.contains("!") {
                    throw RenderFailure("format specifications in str.format are not supported")
                }
                let value: TemplateValue
                if field.isEmpty {
                    guard auto < args.positional.count else { throw RenderFailure("Replacement index \(auto) out of range") }
                    value = args.positional[auto]
                    auto += 1
                } else if let n = Int(field) {
                    guard n < args.positional.count else { throw RenderFailure("Replacement index \(n) out of range") }
                    value = args.positional[n]
                } else {
                    guard let kw = args.keywords.first(where: { $0.name == field }) else {
                        throw RenderFailure("KeyError: '\(field)'")
                    }
                    value = kw.value
                }
                let piece = Py.str(value)
                try TemplateLimits.checkString(bytes: out.utf8.count + piece.utf8.count)
                out += piece
                i = close + 1
            } else if c == "}" {
                if i + 1 < f.count, f[i + 1] == "}" {
                    out += "}"
                    i += 2
                    continue
                }
                throw RenderFailure("Single '}' encountered in format string")
            } else {
                out.unicodeScalars.append(c)
                i += 1
            }
        }
        return out
    }
}

// MARK: - Filters, tests, globals, methods

extension TemplateRenderer {
    private func requireString(_ v: TemplateValue?, _ what: String) throws(RenderFailure) -> String {
        guard case .string(let s)? = v else {
            throw RenderFailure("\(what) must be a string, not \(v.map(Py.typeName) ?? "nothing")")
        }
        return s
    }

    private func requireInt(_ v: TemplateValue?, _ what: String) throws(RenderFailure) -> Int {
        guard let v, case .int(let i)? = Py.number(v) else {
            throw RenderFailure("\(what) must be an integer, not \(v.map(Py.typeName) ?? "nothing")")
        }
        return i
    }

    private func length(_ v: TemplateValue) throws(RenderFailure) -> Int {
        guard let n = Py.len(v) else { throw RenderFailure("object of type '\(Py.typeName(v))' has no len()") }
        return n
    }

    private func items(_ v: TemplateValue) throws(RenderFailure) -> [TemplateValue] {
        guard let items = Py.iterate(v) else { throw RenderFailure("'\(Py.typeName(v))' object is not iterable") }
        return items
    }

    /// jinja2's `make_attrgetter`: dotted path, integer parts as indexes, item-first lookup.
    private func attrGetter(_ item: TemplateValue, _ attribute: TemplateValue, default dflt: TemplateValue? = nil)
        throws(RenderFailure) -> TemplateValue
    {
        var value = item
        switch attribute {
        case .string(let path):
            for part in path.split(separator: ".", omittingEmptySubsequences: false) {
                let key: TemplateValue = Int(part).map { .int($0) } ?? .string(String(part))
                value = try getitem(value, key, nil)
            }
        case .int:
            value = try getitem(value, attribute, nil)
        default:
            value = try getitem(value, attribute, nil)
        }
        if let dflt, value.isUndefined { return dflt }
        return value
    }

    /// Lowercases strings for case-insensitive comparisons (jinja2's `ignore_case`).
    private func ignoreCase(_ v: TemplateValue, _ caseSensitive: Bool) -> TemplateValue {
        if !caseSensitive, case .string(let s) = v { return .string(s.lowercased()) }
        return v
    }

    private func sorted(_ values: [TemplateValue], key: (TemplateValue) throws(RenderFailure) -> TemplateValue,
        reverse: Bool) throws(RenderFailure) -> [TemplateValue]
    {
        var keyed: [(key: TemplateValue, value: TemplateValue)] = []
        for v in values { keyed.append((try key(v), v)) }
        var failure: RenderFailure?
        // Stable insertion-merge sort via indices to keep Python's stable ordering.
        let order = keyed.indices.sorted { i, j in
            guard let c = Py.compare(keyed[i].key, keyed[j].key) else {
                failure = RenderFailure(
                    "'<' not supported between instances of '\(Py.typeName(keyed[i].key))' and '\(Py.typeName(keyed[j].key))'")
                return i < j
            }
            if c == 0 || c == 2 { return i < j }
            return reverse ? c > 0 : c < 0
        }
        if let failure { throw failure }
        return order.map { keyed[$0].value }
    }

    mutating func applyFilter(_ filter: TemplateFilter, _ value: TemplateValue, _ args: TemplateCallArgs,
        valueExpr: TemplateExpr?) throws(RenderFailure) -> TemplateValue
    {
        let name = filter.rawValue
        switch filter {
        case .abs:
            _ = try args.bind([], name)
            switch Py.number(value) {
            case .int(let i)?: return .int(Swift.abs(i))
            case .double(let d)?: return .double(Swift.abs(d))
            case nil: throw RenderFailure("bad operand type for abs(): '\(Py.typeName(value))'")
            }
        case .attr:
            let a = try args.bind(["name"], name)
            if value.isUndefined { throw undefinedError(valueExpr) }
            return try getattr(value, try requireString(a[0], "attribute name"), valueExpr)
        case .capitalize:
            _ = try args.bind([], name)
            return .string(PyString.capitalize(Py.str(value)))
        case .center:
            let a = try args.bind(["width"], name)
            let width = try a[0].map { (v) throws(RenderFailure) in try requireInt(v, "width") } ?? 80
            let s = Py.str(value)
            let n = s.unicodeScalars.count
            guard width > n else { return .string(s) }
            try TemplateLimits.checkString(bytes: s.utf8.count + width - n)
            let total = width - n
            let left = total / 2 + (total & width & 1)
            return .string(String(repeating: " ", count: left) + s + String(repeating: " ", count: total - left))
        case .length:
            _ = try args.bind([], name)
            return .int(try length(value))
        case .`default`:
            let a = try args.bind(["default_value", "boolean"], name)
            let boolean = a[1].map(Py.truthy) ?? false
            if value.isUndefined || (boolean && !Py.truthy(value)) { return a[0] ?? .string("") }
            return value
        case .dictsort:
            let a = try args.bind(["case_sensitive", "by", "reverse"], name)
            guard case .dictionary(let d) = value else {
                throw RenderFailure("dictsort filter requires a mapping, got \(Py.typeName(value))")
            }
            let caseSensitive = a[0].map(Py.truthy) ?? false
            let byValue = a[1].map { Py.str($0) } == "value"
            let pairs: [TemplateValue] = d.pairs.map { .array([.string($0.key), $0.value]) }
            return .array(
                try sorted(
                    pairs,
                    key: { (p) throws(RenderFailure) in
                        guard case .array(let kv) = p else { return p }
                        return ignoreCase(kv[byValue ? 1 : 0], caseSensitive)
                    }, reverse: a[2].map(Py.truthy) ?? false))
        case .escape:
            _ = try args.bind([], name)
            return .string(PyString.htmlEscape(Py.str(value)))
        case .first:
            _ = try args.bind([], name)
            if case .undefined = value { return .undefined }
            return try items(value).first ?? .undefined
        case .last:
            _ = try args.bind([], name)
            if case .undefined = value { return .undefined }
            return try items(value).last ?? .undefined
        case .float:
            let a = try args.bind(["default"], name)
            let dflt = a[0] ?? .double(0)
            switch value {
            case .double: return value
            case .int(let i): return .double(Double(i))
            case .bool(let b): return .double(b ? 1 : 0)
            case .string(let s):
                let t = try PyString.strip(s, nil, left: true, right: true).filter { $0 != "_" }
                let lowered = t.lowercased()
                if ["inf", "+inf", "infinity", "+infinity"].contains(lowered) { return .double(.infinity) }
                if ["-inf", "-infinity"].contains(lowered) { return .double(-.infinity) }
                if ["nan", "+nan", "-nan"].contains(lowered) { return .double(.nan) }
                if let d = Double(t), !t.isEmpty, t.allSatisfy({ $0.isASCII }), !lowered.hasPrefix("0x") {
                    return .double(d)
                }
                return dflt
            default: return dflt
            }
        case .format:
            return .string(try Py.percentFormat(Py.str(value), args.keywords.isEmpty ? .array(args.positional) : .dictionary(TemplateDictionary(args.keywords.map { ($0.name, $0.value) }))))
        case .indent:
            let a = try args.bind(["width", "first", "blank"], name)
            var indention = "    "
            if let w = a[0] {
                if case .string(let s) = w {
                    indention = s
                } else {
                    let width = Swift.max(0, try requireInt(w, "width"))
                    try TemplateLimits.checkString(bytes: width)
                    indention = String(repeating: " ", count: width)
                }
            }
            let first = a[1].map(Py.truthy) ?? false
            let blank = a[2].map(Py.truthy) ?? false
            let s = Py.str(value) + "\n"
            var lines = PyString.splitlines(s)
            try TemplateLimits.checkString(
                bytes: s.utf8.count + TemplateLimits.product(lines.count + 1, indention.utf8.count))
            var rv: String
            if blank {
                rv = lines.joined(separator: "\n" + indention)
            } else {
                rv = lines.isEmpty ? "" : lines.removeFirst()
                if !lines.isEmpty {
                    rv += "\n" + lines.map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
                }
            }
            if first { rv = indention + rv }
            return .string(rv)
        case .int:
            let a = try args.bind(["default", "base"], name)
            let dflt = a[0] ?? .int(0)
            let base = try a[1].map { (v) throws(RenderFailure) in try requireInt(v, "base") } ?? 10
            switch value {
            case .int: return value
            case .bool(let b): return .int(b ? 1 : 0)
            case .double(let d):
                guard d.isFinite, Swift.abs(d) < 9.2e18 else { return dflt }
                return .int(Int(d))
            case .string(let s):
                var t = try PyString.strip(s, nil, left: true, right: true).filter { $0 != "_" }
                var negative = false
                if t.hasPrefix("-") || t.hasPrefix("+") {
                    negative = t.hasPrefix("-")
                    t.removeFirst()
                }
                var radix = base
                let lower = t.lowercased()
                if base == 16 || base == 0, lower.hasPrefix("0x") { t.removeFirst(2); radix = 16 }
                else if base == 8 || base == 0, lower.hasPrefix("0o") { t.removeFirst(2); radix = 8 }
                else if base == 2 || base == 0, lower.hasPrefix("0b") { t.removeFirst(2); radix = 2 }
                else if base == 0 { radix = 10 }
                if radix >= 2, radix <= 36, !t.isEmpty, t.allSatisfy({ $0.isASCII }), let i = Int(t, radix: radix) {
                    return .int(negative ? -i : i)
                }
                // jinja2 falls back to int(float(value)).
                if base == 10, let d = Double(try PyString.strip(s, nil, left: true, right: true)), d.isFinite,
                    Swift.abs(d) < 9.2e18
                {
                    return .int(Int(d))
                }
                return dflt
            default:
                return dflt
            }
        case .items:
            _ = try args.bind([], name)
            switch value {
            case .undefined: return .array([])
            case .dictionary(let d): return .array(d.pairs.map { .array([.string($0.key), $0.value]) })
            default: throw RenderFailure("Can only get item pairs from a mapping.")
            }
        case .join:
            let a = try args.bind(["d", "attribute"], name)
            let separator = a[0].map { Py.str($0) } ?? ""
            var parts: [String] = []
            let all = try items(value)
            if a[1] == nil { try TemplateLimits.checkFlattened(.array(all), perItem: separator.utf8.count) }
            var bytes = 0
            for item in all {
                let v = try a[1].map { (attr) throws(RenderFailure) in try attrGetter(item, attr) } ?? item
                let part = Py.str(v)
                bytes += part.utf8.count + separator.utf8.count
                try TemplateLimits.checkString(bytes: bytes)
                parts.append(part)
            }
            return .string(parts.joined(separator: separator))
        case .list:
            _ = try args.bind([], name)
            return .array(try items(value))
        case .lower:
            _ = try args.bind([], name)
            return .string(Py.str(value).lowercased())
        case .upper:
            _ = try args.bind([], name)
            return .string(Py.str(value).uppercased())
        case .map:
            let seq = try items(value)
            if args.positional.isEmpty {
                var attribute: TemplateValue?
                var dflt: TemplateValue?
                for (k, v) in args.keywords {
                    switch k {
                    case "attribute": attribute = v
                    case "default": dflt = v
                    default: throw RenderFailure("Unexpected keyword argument '\(k)'")
                    }
                }
                guard let attribute else { throw RenderFailure("map requires a filter name or attribute=") }
                var out: [TemplateValue] = []
                for item in seq { out.append(try attrGetter(item, attribute, default: dflt.flatMap { $0.isNone ? nil : $0 })) }
                return .array(out)
            }
            let filterName = try requireString(args.positional[0], "map filter name")
            guard let mapped = TemplateFilter(name: filterName) else {
                throw RenderFailure("No filter named '\(filterName)'.")
            }
            let rest = TemplateCallArgs(positional: Array(args.positional.dropFirst()), keywords: args.keywords)
            var out: [TemplateValue] = []
            for item in seq { out.append(try applyFilter(mapped, item, rest, valueExpr: nil)) }
            return .array(out)
        case .max, .min:
            let a = try args.bind(["case_sensitive", "attribute"], name)
            let seq = try items(value)
            guard !seq.isEmpty else { return .undefined }
            let caseSensitive = a[0].map(Py.truthy) ?? false
            let s = try sorted(
                seq,
                key: { (v) throws(RenderFailure) in
                    ignoreCase(try a[1].map { (attr) throws(RenderFailure) in try attrGetter(v, attr) } ?? v, caseSensitive)
                }, reverse: false)
            return name == "min" ? s.first! : s.last!
        case .select, .reject, .selectattr, .rejectattr:
            let byAttribute = name.hasSuffix("attr")
            var rest = args.positional
            var attribute: TemplateValue?
            if byAttribute {
                guard !rest.isEmpty else { throw RenderFailure("\(name) requires an attribute name") }
                attribute = rest.removeFirst()
            }
            var test: TemplateTest?
            if !rest.isEmpty {
                let testName = try requireString(rest.removeFirst(), "test name")
                guard let resolved = TemplateTest(name: testName) else {
                    throw RenderFailure("No test named '\(testName)'.")
                }
                test = resolved
            }
            let testArgs = TemplateCallArgs(positional: rest, keywords: args.keywords)
            let keep = name.hasPrefix("select")
            var out: [TemplateValue] = []
            for item in try items(value) {
                let subject = try attribute.map { (attr) throws(RenderFailure) in try attrGetter(item, attr) } ?? item
                let passed = try test.map { (t) throws(RenderFailure) in try applyTest(t, subject, testArgs, valueExpr: nil) }
                    ?? Py.truthy(subject)
                if passed == keep { out.append(item) }
            }
            return .array(out)
        case .replace:
            let a = try args.bind(["old", "new", "count"], name)
            let count = try a[2].flatMap { (v) throws(RenderFailure) -> Int? in v.isNone ? nil : try requireInt(v, "count") } ?? -1
            return .string(
                try PyString.replace(Py.str(value), Py.str(a[0] ?? .string("")), Py.str(a[1] ?? .string("")), count: count))
        case .reverse:
            _ = try args.bind([], name)
            if case .string(let s) = value { return .string(String(String.UnicodeScalarView(s.unicodeScalars.reversed()))) }
            return .array(try items(value).reversed())
        case .round:
            let a = try args.bind(["precision", "method"], name)
            let precision = try a[0].map { (v) throws(RenderFailure) in try requireInt(v, "precision") } ?? 0
            let method = a[1].map { Py.str($0) } ?? "common"
            guard let n = Py.number(value) else { throw RenderFailure("type \(Py.typeName(value)) doesn't define __round__ method") }
            if method == "common", case .int(let i) = n, precision >= 0 { return .int(i) }
            var scale = 1.0
            for _ in 0..<Swift.abs(precision) { scale *= 10 }
            let x = n.asDouble
            let scaled = precision >= 0 ? x * scale : x / scale
            let rounded: Double
            switch method {
            case "common": rounded = scaled.rounded(.toNearestOrEven)
            case "ceil": rounded = scaled.rounded(.up)
            case "floor": rounded = scaled.rounded(.down)
            default: throw RenderFailure("method must be 'common', 'ceil' or 'floor'")
            }
            return .double(precision >= 0 ? rounded / scale : rounded * scale)
        case .safe:
            _ = try args.bind([], name)
            if case .string = value { return value }
            return .string(Py.str(value))
        case .sort:
            let a = try args.bind(["reverse", "case_sensitive", "attribute"], name)
            let caseSensitive = a[1].map(Py.truthy) ?? false
            return .array(
                try sorted(
                    try items(value),
                    key: { (v) throws(RenderFailure) in
                        ignoreCase(try a[2].map { (attr) throws(RenderFailure) in try attrGetter(v, attr) } ?? v, caseSensitive)
                    }, reverse: a[0].map(Py.truthy) ?? false))
        case .string:
            _ = try args.bind([], name)
            return .string(Py.str(value))
        case .sum:
            let a = try args.bind(["attribute", "start"], name)
            var total = a[1] ?? .int(0)
            for item in try items(value) {
                let v = try a[0].map { (attr) throws(RenderFailure) in try attrGetter(item, attr) } ?? item
                total = try Py.binary(.add, total, v)
            }
            return total
        case .title:
            _ = try args.bind([], name)
            return .string(PyString.jinjaTitle(Py.str(value)))
        case .tojson:
            let a = try args.bind(["ensure_ascii", "indent", "separators", "sort_keys"], name)
            return .string(try TemplateJSON.dumps(value, ensureASCII: a[0], indent: a[1], separators: a[2], sortKeys: a[3]))
        case .trim:
            let a = try args.bind(["chars"], name)
            return .string(try PyString.strip(Py.str(value), a[0], left: true, right: true))
        case .unique:
            let a = try args.bind(["case_sensitive", "attribute"], name)
            let caseSensitive = a[0].map(Py.truthy) ?? false
            var seen: [TemplateValue] = []
            var out: [TemplateValue] = []
            for item in try items(value) {
                let key = ignoreCase(try a[1].map { (attr) throws(RenderFailure) in try attrGetter(item, attr) } ?? item, caseSensitive)
                if !seen.contains(where: { Py.equals($0, key) }) {
                    seen.append(key)
                    out.append(item)
                }
            }
            return .array(out)
        case .wordcount:
            _ = try args.bind([], name)
            var count = 0
            var inWord = false
            for c in Py.str(value).unicodeScalars {
                let word = c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
                if word && !inWord { count += 1 }
                inWord = word
            }
            return .int(count)
        }
    }

    func applyTest(_ test: TemplateTest, _ value: TemplateValue, _ args: TemplateCallArgs, valueExpr: TemplateExpr?)
        throws(RenderFailure) -> Bool
    {
        let name = test.rawValue
        func other() throws(RenderFailure) -> TemplateValue {
            let a = try args.bind(["other"], name)
            guard let o = a[0] else { throw RenderFailure("\(name)() missing required argument") }
            return o
        }
        func ordered(_ accept: (Int) -> Bool) throws(RenderFailure) -> Bool {
            let o = try other()
            if value.isUndefined { throw undefinedError(valueExpr) }
            guard let c = Py.compare(value, o) else {
                throw RenderFailure("'\(name)' not supported between instances of '\(Py.typeName(value))' and '\(Py.typeName(o))'")
            }
            return c != 2 && accept(c)
        }
        switch test {
        case .defined: return !value.isUndefined
        case .undefined: return value.isUndefined
        case .none: return value.isNone
        case .boolean: return value.boolValue != nil
        case .`true`: return value.boolValue == true
        case .`false`: return value.boolValue == false
        case .integer: return value.intValue != nil
        case .float: return value.doubleValue != nil
        case .number: return Py.number(value) != nil
        case .string: return value.stringValue != nil
        case .mapping: return value.dictionaryValue != nil
        case .iterable:
            if case .object(let o) = value, case .loop = o.kind { return true }
            return Py.iterate(value) != nil
        case .sequence:
            switch value {
            case .undefined, .string, .array, .dictionary: return true
            default: return false
            }
        case .callable:
            if case .object(let o) = value {
                switch o.kind {
                case .namespace: return false
                default: return true
                }
            }
            return false
        case .escaped: return false
        case .odd, .even, .divisibleby:
            let divisor: TemplateValue = name == "divisibleby" ? try other() : .int(2)
            if value.isUndefined { throw undefinedError(valueExpr) }
            let r = try Py.binary(.mod, value, divisor)
            return name == "odd" ? Py.equals(r, .int(1)) : Py.equals(r, .int(0))
        case .lower:
            let s = Py.str(value)
            return s.unicodeScalars.contains { $0.properties.isCased } && s == s.lowercased()
        case .upper:
            let s = Py.str(value)
            return s.unicodeScalars.contains { $0.properties.isCased } && s == s.uppercased()
        case .sameas:
            let o = try other()
            switch (value, o) {
            case (.none, .none), (.undefined, .undefined): return true
            case (.bool(let a), .bool(let b)): return a == b
            case (.int(let a), .int(let b)): return a == b
            case (.string(let a), .string(let b)): return a == b
            case (.object(let a), .object(let b)): return a == b
            default: return false
            }
        case .`in`: return try Py.contains(try other(), value)
        case .eq: return Py.equals(value, try other())
        case .ne: return !Py.equals(value, try other())
        case .lt: return try ordered { $0 < 0 }
        case .le: return try ordered { $0 <= 0 }
        case .gt: return try ordered { $0 > 0 }
        case .ge: return try ordered { $0 >= 0 }
        case .filter: return TemplateFilter(name: Py.str(value)) != nil
        case .test: return TemplateTest(name: Py.str(value)) != nil
        }
    }

    mutating func callGlobal(_ name: String, _ args: TemplateCallArgs) throws(RenderFailure) -> TemplateValue {
        switch name {
        case "raise_exception":
            let a = try args.bind(["message"], name)
            throw RenderFailure(Py.str(a[0] ?? .none), kind: .raised)
        case "strftime_now":
            let a = try args.bind(["format"], name)
            return .string(TemplateStrftime.format(try requireString(a[0], "strftime format"), now(), timeZone))
        case "range":
            guard args.keywords.isEmpty, (1...3).contains(args.positional.count) else {
                throw RenderFailure("range expected 1 to 3 integer arguments")
            }
            var ints: [Int] = []
            for v in args.positional { ints.append(try requireInt(v, "range argument")) }
            let (start, stop, step) = ints.count == 1 ? (0, ints[0], 1) : (ints[0], ints[1], ints.count == 3 ? ints[2] : 1)
            guard step != 0 else { throw RenderFailure("range() arg 3 must not be zero") }
            let count = step > 0 ? Swift.max(0, (stop - start + step - 1) / step) : Swift.max(0, (start - stop - step - 1) / -step)
            guard count <= 100_000 else {
                throw RenderFailure("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
            }
            return .array((0..<count).map { .int(start + $0 * step) })
        case "namespace", "dict":
            var d = TemplateDictionary()
            for p in args.positional {
                switch p {
                case .dictionary(let src): for (k, v) in src { d[k] = v }
                case .array(let pairs):
                    for pair in pairs {
                        guard case .array(let kv) = pair, kv.count == 2, case .string(let k) = kv[0] else {
                            throw RenderFailure("\(name)() expects a mapping or key/value pairs")
                        }
                        d[k] = kv[1]
                    }
                default: throw RenderFailure("\(name)() expects a mapping or key/value pairs")
                }
            }
            for (k, v) in args.keywords { d[k] = v }
            if name == "dict" { return .dictionary(d) }
            namespaces.append(d)
            return .object(TemplateObject(.namespace(namespaces.count - 1)))
        default:
            throw RenderFailure("'\(name)' is undefined")
        }
    }

    func callMethod(_ receiver: TemplateValue, _ name: String, _ args: TemplateCallArgs) throws(RenderFailure)
        -> TemplateValue
    {
        switch receiver {
        case .string(let s): return try callStringMethod(s, name, args)
        case .dictionary(let d):
            switch name {
            case "items":
                _ = try args.bind([], name)
                return .array(d.pairs.map { .array([.string($0.key), $0.value]) })
            case "keys":
                _ = try args.bind([], name)
                return .array(d.keys.map { .string($0) })
            case "values":
                _ = try args.bind([], name)
                return .array(d.values)
            case "get":
                let a = try args.bind(["key", "default"], name)
                guard let key = a[0] else { throw RenderFailure("get expected at least 1 argument, got 0") }
                if case .string(let k) = key, let v = d[k] { return v }
                return a[1] ?? .none
            case "copy":
                _ = try args.bind([], name)
                return receiver
            default: break
            }
        case .array(let items):
            switch name {
            case "count":
                let a = try args.bind(["value"], name)
                return .int(items.filter { Py.equals($0, a[0] ?? .none) }.count)
            case "index":
                let a = try args.bind(["value"], name)
                guard let i = items.firstIndex(where: { Py.equals($0, a[0] ?? .none) }) else {
                    throw RenderFailure("\(Py.repr(a[0] ?? .none)) is not in list")
                }
                return .int(i)
            case "copy":
                _ = try args.bind([], name)
                return receiver
            default: break
            }
        case .object(let o):
            if case .loop(let state) = o.kind, name == "cycle" {
                guard !args.positional.isEmpty else { throw RenderFailure("no items for cycling given") }
                return args.positional[state.index0 % args.positional.count]
            }
        default:
            break
        }
        throw RenderFailure("'\(Py.typeName(receiver))' object has no method '\(name)'")
    }

    private func callStringMethod(_ s: String, _ name: String, _ args: TemplateCallArgs) throws(RenderFailure)
        -> TemplateValue
    {
        switch name {
        case "strip", "lstrip", "rstrip":
            let a = try args.bind(["chars"], name)
            return .string(try PyString.strip(s, a[0], left: name != "rstrip", right: name != "lstrip"))
        case "startswith", "endswith":
            let a = try args.bind(["prefix", "start", "end"], name)
            var candidates: [String] = []
            switch a[0] {
            case .string(let p)?: candidates = [p]
            case .array(let list)?:
                for item in list {
                    guard case .string(let p) = item else { throw RenderFailure("tuple for \(name) must only contain str") }
                    candidates.append(p)
                }
            default:
                throw RenderFailure("\(name) first arg must be str or a tuple of str")
            }
            var scalars = Array(s.unicodeScalars)
            if a[1] != nil || a[2] != nil {
                guard let idx = try Self.sliceIndices(count: scalars.count, a[1] ?? .none, a[2] ?? .none, .none) else {
                    throw RenderFailure("slice indices must be integers or None")
                }
                scalars = idx.map { scalars[$0] }
            }
            return .bool(
                candidates.contains { c in
                    let p = Array(c.unicodeScalars)
                    return name == "startswith" ? scalars.starts(with: p) : scalars.reversed().starts(with: p.reversed())
                })
        case "split", "rsplit":
            let a = try args.bind(["sep", "maxsplit"], name)
            return .array(try PyString.split(s, a[0], a[1], fromRight: name == "rsplit"))
        case "splitlines":
            let a = try args.bind(["keepends"], name)
            return .array(PyString.splitlines(s, keepends: a[0].map(Py.truthy) ?? false).map { .string($0) })
        case "upper":
            _ = try args.bind([], name)
            return .string(s.uppercased())
        case "lower", "casefold":
            _ = try args.bind([], name)
            return .string(s.lowercased())
        case "swapcase":
            _ = try args.bind([], name)
            var out = ""
            for c in s.unicodeScalars {
                out += c.properties.isUppercase ? String(c).lowercased() : c.properties.isLowercase ? String(c).uppercased() : String(c)
            }
            return .string(out)
        case "title":
            _ = try args.bind([], name)
            return .string(PyString.pyTitle(s))
        case "capitalize":
            _ = try args.bind([], name)
            return .string(PyString.capitalize(s))
        case "replace":
            let a = try args.bind(["old", "new", "count"], name)
            let count = try a[2].map { (v) throws(RenderFailure) in try requireInt(v, "count") } ?? -1
            return .string(try PyString.replace(s, try requireString(a[0], "old"), try requireString(a[1], "new"), count: count))
        case "find", "rfind", "index", "rindex", "count":
            let a = try args.bind(["sub", "start", "end"], name)
            let sub = Array(try requireString(a[0], "substring").unicodeScalars)
            let scalars = Array(s.unicodeScalars)
            guard let window = try Self.sliceIndices(count: scalars.count, a[1] ?? .none, a[2] ?? .none, .none) else {
                throw RenderFailure("slice indices must be integers or None")
            }
            let offset = window.first ?? Swift.min(scalars.count, Swift.max(0, (try? requireInt(a[1], "start")) ?? 0))
            let hay = window.map { scalars[$0] }
            if name == "count" {
                if sub.isEmpty { return .int(hay.count + 1) }
                var n = 0
                var i = 0
                while let at = Py.find(hay, sub, from: i) {
                    n += 1
                    i = at + sub.count
                }
                return .int(n)
            }
            var found: Int?
            if name.hasPrefix("r") {
                var i = hay.count - sub.count
                while i >= 0 {
                    if Array(hay[i..<(i + sub.count)]) == sub {
                        found = i
                        break
                    }
                    i -= 1
                }
            } else {
                found = Py.find(hay, sub, from: 0)
            }
            if let found { return .int(found + offset) }
            if name.hasSuffix("index") { throw RenderFailure("substring not found") }
            return .int(-1)
        case "join":
            let a = try args.bind(["iterable"], name)
            var parts: [String] = []
            var bytes = 0
            for item in try items(a[0] ?? .none) {
                guard case .string(let p) = item else {
                    throw RenderFailure("sequence item \(parts.count): expected str instance, \(Py.typeName(item)) found")
                }
                bytes += p.utf8.count + s.utf8.count
                try TemplateLimits.checkString(bytes: bytes)
                parts.append(p)
            }
            return .string(parts.joined(separator: s))
        case "format":
            return .string(try PyString.format(s, args))
        case "isdigit", "isdecimal", "isnumeric":
            _ = try args.bind([], name)
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil })
        case "isalpha":
            _ = try args.bind([], name)
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
        case "isalnum":
            _ = try args.bind([], name)
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
        case "isspace":
            _ = try args.bind([], name)
            return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(PyString.isSpace))
        case "islower":
            _ = try args.bind([], name)
            return .bool(s.unicodeScalars.contains { $0.properties.isCased } && s == s.lowercased())
        case "isupper":
            _ = try args.bind([], name)
            return .bool(s.unicodeScalars.contains { $0.properties.isCased } && s == s.uppercased())
        case "istitle":
            _ = try args.bind([], name)
            return .bool(s.unicodeScalars.contains { $0.properties.isCased } && s == PyString.pyTitle(s))
        case "zfill":
            let a = try args.bind(["width"], name)
            let width = try requireInt(a[0], "width")
            let n = s.unicodeScalars.count
            guard width > n else { return .string(s) }
            try TemplateLimits.checkString(bytes: s.utf8.count + width - n)
            let pad = String(repeating: "0", count: width - n)
            if let first = s.unicodeScalars.first, first == "-" || first == "+" {
                return .string(String(first) + pad + String(String.UnicodeScalarView(s.unicodeScalars.dropFirst())))
            }
            return .string(pad + s)
        case "center", "ljust", "rjust":
            let a = try args.bind(["width", "fillchar"], name)
            let width = try requireInt(a[0], "width")
            let fill = try a[1].map { (v) throws(RenderFailure) in try requireString(v, "fill character") } ?? " "
            let n = s.unicodeScalars.count
            guard width > n else { return .string(s) }
            try TemplateLimits.checkString(bytes: s.utf8.count + TemplateLimits.product(width - n, fill.utf8.count))
            let total = width - n
            switch name {
            case "ljust": return .string(s + String(repeating: fill, count: total))
            case "rjust": return .string(String(repeating: fill, count: total) + s)
            default:
                let left = total / 2 + (total & width & 1)
                return .string(String(repeating: fill, count: left) + s + String(repeating: fill, count: total - left))
            }
        case "removeprefix", "removesuffix":
            let a = try args.bind(["affix"], name)
            let affix = Array(try requireString(a[0], "affix").unicodeScalars)
            let scalars = Array(s.unicodeScalars)
            if name == "removeprefix", scalars.starts(with: affix) { return .string(Py.string(scalars[affix.count...])) }
            if name == "removesuffix", !affix.isEmpty, scalars.reversed().starts(with: affix.reversed()) {
                return .string(Py.string(scalars[..<(scalars.count - affix.count)]))
            }
            return .string(s)
        default:
            throw RenderFailure("'str' object has no method '\(name)'")
        }
    }
}
