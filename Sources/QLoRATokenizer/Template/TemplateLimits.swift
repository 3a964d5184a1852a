// Limits that keep an untrusted chat template (from a model's tokenizer_config.json or GGUF) from
// overflowing the stack, hanging or allocating without bound. jinja2's sandbox has the same kind of
// guard for `range` (MAX_RANGE, in TemplateBuiltins.swift); these cover the rest. Real templates stay
// far below every limit (the largest real template nests about ten levels and renders kilobytes).

/// The bounds every template is compiled and rendered within; exceeding one is a `TemplateError`
/// naming the template and the limit.
public enum TemplateLimits {
    /// Nesting of blocks (`if`, `for`, `macro`, ...) and of expressions (parentheses, lists, dicts,
    /// calls, subscripts, unary operators, conditional expressions), counted together.
    public static let maxNestingDepth = 256
    /// Loop iterations plus macro calls in one rendering (a long conversation takes thousands).
    public static let maxSteps = 1_000_000
    /// Nested macro calls (a macro calling itself, directly or not).
    public static let maxMacroDepth = 64
    /// The rendered text, and any string a template builds, in UTF-8 bytes (16 MiB).
    public static let maxStringBytes = 16 << 20
    /// Elements of any list a template builds.
    public static let maxListItems = 1 << 20
}

extension TemplateLimits {
    static func stringTooLong() -> RenderFailure {
        RenderFailure(
            "the template built a string longer than \(maxStringBytes) bytes (the limit on rendered text); refusing to render it")
    }

    static func checkString(bytes: Int) throws(RenderFailure) {
        if bytes > maxStringBytes { throw stringTooLong() }
    }

    static func checkString(_ s: String) throws(RenderFailure) {
        try checkString(bytes: s.utf8.count)
    }

    static func checkList(count: Int) throws(RenderFailure) {
        if count > maxListItems {
            throw RenderFailure("the template built a list of more than \(maxListItems) items; refusing to render it")
        }
    }

    /// Strings and lists a template produced, checked after each operation that can grow them.
    static func check(_ v: TemplateValue) throws(RenderFailure) {
        switch v {
        case .string(let s): try checkString(s)
        case .array(let a): try checkList(count: a.count)
        default: break
        }
    }

    /// `a * b`, saturating at `Int.max` (sizes are compared with the limits, never allocated).
    static func product(_ a: Int, _ b: Int) -> Int {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        return o || r < 0 ? Int.max : r
    }

    /// Throws when `value` printed whole (str, repr, join, JSON) would exceed `maxStringBytes`:
    /// its strings' bytes plus `perItem` bytes per element, `perLevel` more per nesting level.
    /// A list may hold the same long string many times, so the estimate counts every occurrence;
    /// it stops at the limit, so it costs at most that many steps.
    static func checkFlattened(_ value: TemplateValue, perItem: Int = 4, perLevel: Int = 0) throws(RenderFailure) {
        var total = 0
        func visit(_ v: TemplateValue, _ level: Int) -> Bool {
            total = total &+ perItem &+ product(perLevel, level)
            if total > maxStringBytes || total < 0 { return false }
            switch v {
            case .string(let s):
                total = total &+ s.utf8.count
            case .array(let a):
                for item in a where !visit(item, level + 1) { return false }
            case .dictionary(let d):
                for (key, item) in d.pairs {
                    total = total &+ key.utf8.count
                    if !visit(item, level + 1) { return false }
                }
            default:
                break
            }
            return total <= maxStringBytes && total >= 0
        }
        if !visit(value, 0) { throw stringTooLong() }
    }

    /// Nesting depth of `value`'s lists and dictionaries, counting up to `maxNestingDepth + 1` (a
    /// template that wraps a value in a list in a loop would otherwise build a value whose printing,
    /// comparison or release overflows the stack). `visits` counts the elements looked at.
    static func nestingDepth(_ value: TemplateValue, visits: inout Int) -> Int {
        func depth(_ v: TemplateValue, _ level: Int) -> Int {
            visits += 1
            if level > maxNestingDepth { return level }
            var deepest = level
            switch v {
            case .array(let a):
                for item in a {
                    deepest = max(deepest, depth(item, level + 1))
                    if deepest > maxNestingDepth { break }
                }
            case .dictionary(let d):
                for (_, item) in d.pairs {
                    deepest = max(deepest, depth(item, level + 1))
                    if deepest > maxNestingDepth { break }
                }
            default:
                break
            }
            return deepest
        }
        return depth(value, 0)
    }
}
