// `tojson` as transformers defines it for chat templates:
//   json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
// Python's json module formatting: ", " and ": " separators without indent, "," and ": " with
// indent; floats as repr(); NaN/Infinity literals; non-ASCII kept unless ensure_ascii.

enum TemplateJSON {
    static func dumps(
        _ value: TemplateValue, ensureASCII: TemplateValue? = nil, indent: TemplateValue? = nil,
        separators: TemplateValue? = nil, sortKeys: TemplateValue? = nil
    ) throws(RenderFailure) -> String {
        var indentString: String?
        switch indent {
        case nil, .none?: indentString = nil
        case .string(let s)?: indentString = s
        case let v?:
            guard case .int(let n)? = Py.number(v) else {
                throw RenderFailure("tojson indent must be an integer or a string, not \(Py.typeName(v))")
            }
            try TemplateLimits.checkString(bytes: n)
            indentString = String(repeating: " ", count: max(0, n))
        }
        var itemSeparator = indentString == nil ? ", " : ","
        var keySeparator = ": "
        switch separators {
        case nil, .none?: break
        case .array(let pair)? where pair.count == 2:
            guard case .string(let a) = pair[0], case .string(let b) = pair[1] else {
                throw RenderFailure("tojson separators must be a pair of strings")
            }
            itemSeparator = a
            keySeparator = b
        default:
            throw RenderFailure("tojson separators must be a pair of strings")
        }
        var writer = Writer(
            ensureASCII: ensureASCII.map(Py.truthy) ?? false, indent: indentString, itemSeparator: itemSeparator,
            keySeparator: keySeparator, sortKeys: sortKeys.map(Py.truthy) ?? false)
        try writer.write(value, level: 0)
        return writer.out
    }

    private struct Writer {
        let ensureASCII: Bool
        let indent: String?
        let itemSeparator: String
        let keySeparator: String
        let sortKeys: Bool
        var out = ""

        mutating func newline(_ level: Int) throws(RenderFailure) {
            guard let indent else { return }
            try TemplateLimits.checkString(bytes: out.utf8.count + 1 + TemplateLimits.product(level, indent.utf8.count))
            out += "\n"
            for _ in 0..<level { out += indent }
        }

        mutating func write(_ value: TemplateValue, level: Int) throws(RenderFailure) {
            switch value {
            case .none: out += "null"
            case .bool(let b): out += b ? "true" : "false"
            case .int(let i): out += String(i)
            case .double(let d):
                if d.isNaN {
                    out += "NaN"
                } else if d.isInfinite {
                    out += d < 0 ? "-Infinity" : "Infinity"
                } else {
                    out += Py.formatDouble(d)
                }
            case .string(let s):
                try TemplateLimits.checkString(bytes: out.utf8.count + s.utf8.count)
                writeString(s)
                try TemplateLimits.checkString(out)
            case .array(let items):
                if items.isEmpty {
                    out += "[]"
                    return
                }
                out += "["
                try newline(level + 1)
                for (i, item) in items.enumerated() {
                    if i > 0 {
                        try TemplateLimits.checkString(bytes: out.utf8.count + itemSeparator.utf8.count)
                        out += itemSeparator
                        try newline(level + 1)
                    }
                    try write(item, level: level + 1)
                }
                try newline(level)
                out += "]"
            case .dictionary(let d):
                if d.isEmpty {
                    out += "{}"
                    return
                }
                out += "{"
                try newline(level + 1)
                var pairs = d.pairs
                if sortKeys {
                    pairs.sort { Py.compare(.string($0.key), .string($1.key)) ?? 0 < 0 }
                }
                for (i, pair) in pairs.enumerated() {
                    if i > 0 {
                        try TemplateLimits.checkString(bytes: out.utf8.count + itemSeparator.utf8.count)
                        out += itemSeparator
                        try newline(level + 1)
                    }
                    try TemplateLimits.checkString(bytes: out.utf8.count + pair.key.utf8.count + keySeparator.utf8.count)
                    writeString(pair.key)
                    out += keySeparator
                    try write(pair.value, level: level + 1)
                }
                try newline(level)
                out += "}"
            case .undefined, .object:
                throw RenderFailure("Object of type \(Py.typeName(value)) is not JSON serializable")
            }
        }

        mutating func writeString(_ s: String) {
            out += "\""
            for c in s.unicodeScalars {
                switch c {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                case "\u{08}": out += "\\b"
                case "\u{0C}": out += "\\f"
                default:
                    if c.value < 0x20 || (ensureASCII && c.value > 0x7E) {
                        if c.value > 0xFFFF {
                            let v = c.value - 0x10000
                            hex(0xD800 + (v >> 10))
                            hex(0xDC00 + (v & 0x3FF))
                        } else {
                            hex(c.value)
                        }
                    } else {
                        out.unicodeScalars.append(c)
                    }
                }
            }
            out += "\""
        }

        mutating func hex(_ v: UInt32) {
            let h = String(v, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
        }
    }
}
