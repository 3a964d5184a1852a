import Foundation
import QLoRAFormats

/// The package's `README.md`: what the adapter is, how it was trained, what it scored, and how to use it
/// with Python `peft` and with `qlora generate`. Built only from the manifest, so it never disagrees with it.
enum ModelCard {
    static func render(_ m: AdapterManifest, archiveName: String) -> String {
        let a = m.adapter, base = m.baseModel, arch = base.architecture
        var s = "# \(m.name): a LoRA adapter for \(base.source)\n\n"
        s += "A PEFT LoRA adapter (`adapter_config.json` + `adapter_model.safetensors`) trained with "
        s += "[qlora](https://example.invalid/qlora) \(m.tool.version) over a 4-bit "
        s += "\(base.quantization["quant_type"]?.uppercased() ?? "NF4") base"
        if base.quantization["double_quant"] == "true" { s += " with double quantization" }
        s += " (QLoRA, arXiv 2305.14314).\n\n"

        s += "## Base model\n\n"
        s += "| | |\n|---|---|\n"
        s += "| source | `\(base.source)` |\n"
        for f in base.files { s += "| `\(URL(fileURLWithPath: f.path).lastPathComponent)` sha256 | `\(f.sha256)` (\(f.size) bytes) |\n" }
        s += "| architecture | \(arch.modelType), \(arch.layers) layers, hidden \(arch.hiddenSize), "
        s += "intermediate \(arch.intermediateSize), \(arch.heads) heads / \(arch.kvHeads) KV heads, vocab \(arch.vocabSize) |\n"
        s += "| quantization | " + base.quantization.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + " |\n\n"

        s += "## Adapter\n\n"
        s += "LoRA rank \(a.rank), alpha \(fmt(a.alpha)) (scaling \(fmt(a.useRSLoRA ? a.alpha / Double(a.rank).squareRoot() : a.alpha / Double(a.rank)))"
        s += a.useRSLoRA ? ", rsLoRA" : ""
        s += "), dropout \(fmt(a.dropout)), on \(a.targetModules.joined(separator: ", ")) of every layer: "
        s += "\(a.trainableParameters) trainable parameters.\n\n"

        s += "## Data\n\n"
        s += "| file | format | rows | accepted | sha256 |\n|---|---|---|---|---|\n"
        for d in m.datasets { s += "| `\(d.path)` | \(d.format) | \(d.rows) | \(d.accepted) | `\(d.sha256.prefix(16))…` |\n" }
        if !m.data.isEmpty {
            s += "\n" + m.data.sorted { $0.key < $1.key }.map { "\($0.key.replacingOccurrences(of: "_", with: " ")): \($0.value)" }.joined(separator: "; ") + "\n"
        }
        s += "\nTokenizer `\(m.tokenizer.source)`"
        if let eos = m.tokenizer.eosToken { s += ", EOS `\(eos)`" + (m.tokenizer.eosTokenID.map { " (id \($0))" } ?? "") }
        s += m.tokenizer.chatTemplate == nil ? ", no chat template.\n" : "; the chat template used for training is in `manifest.json` (`tokenizer.chat_template`) and `chat_template.jinja`. Prompts must be rendered with it.\n"

        s += "\n## Metrics\n\n"
        if m.metrics.isEmpty { s += "None recorded.\n" } else {
            s += "| metric | value |\n|---|---|\n"
            for (k, v) in m.metrics.sorted(by: { $0.key < $1.key }) { s += "| \(k) | \(fmt(v)) |\n" }
        }
        if m.files.contains(where: { $0.path == "report.md" }) { s += "\nThe evaluation report is in `report.md` (plot: `loss.svg`).\n" }

        s += "\n## Use\n\n"
        s += "Check and unpack:\n\n```sh\nqlora verify \(archiveName)\nqlora unpack \(archiveName) \(m.name)-adapter\n```\n\n"
        s += "With `qlora` (the archive is accepted directly):\n\n```sh\n"
        s += "qlora generate --model \(base.source) --adapter \(archiveName) --chat --prompt \"…\"\n```\n\n"
        s += "With Python `peft` (the base must be the same weights, converted to a transformers model):\n\n```python\n"
        s += "from transformers import AutoModelForCausalLM\nfrom peft import PeftModel\n\n"
        s += "base = AutoModelForCausalLM.from_pretrained(\"<the base model in transformers format>\")\n"
        s += "model = PeftModel.from_pretrained(base, \"\(m.name)-adapter\")\n```\n\n"
        s += "## Training spec\n\n```yaml\n\(m.jobSpec.hasSuffix("\n") ? m.jobSpec : m.jobSpec + "\n")```\n"
        return s
    }

    static func fmt(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return String(format: "%.6g", v)
    }
}
