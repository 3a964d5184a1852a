// Conversion from the JSON document model, for templates and variables read from
// tokenizer_config.json or dataset rows.

import QLoRAFormats

extension TemplateValue {
    /// Converts a JSON value. Integral numbers within Int range become `.int` (as Python's
    /// `json.loads` gives int for integer literals), other numbers `.double`; objects keep key order.
    public init(_ json: JSONValue) {
        switch json {
        case .null: self = .none
        case .bool(let b): self = .bool(b)
        case .number(let d):
            if d == d.rounded(), abs(d) < 9.0e15 { self = .int(Int(d)) } else { self = .double(d) }
        case .string(let s): self = .string(s)
        case .array(let items): self = .array(items.map(TemplateValue.init))
        case .object(let o): self = .dictionary(TemplateDictionary(o.pairs.map { ($0.key, TemplateValue($0.value)) }))
        }
    }
}
