import Foundation
import QLoRACore
import QLoRAFormats
import QLoRATokenizer

/// A loaded model and its tokenizer.
public struct LoadedModel: Sendable {
    public var model: LlamaModel
    public var tokenizer: Tokenizer
    /// Seconds spent loading (parse + dequantize/convert to fp32).
    public var loadSeconds: Double
}

/// Loads a LLaMA-family model from an HF directory (config.json + safetensors, single or sharded) or a
/// GGUF file, into fp32 weights in HF layout.
public enum ModelLoader {
    /// `tokenizer` overrides where the tokenizer comes from (a prepared directory made from a GGUF file has
    /// no tokenizer.json of its own).
    public static func load(path: String, tokenizer tokenizerPath: String? = nil, backend: any Backend) throws -> LoadedModel {
        let started = Date()
        let model = try loadModel(path: path, backend: backend)
        let tokenizer = try Tokenizer.load(path: tokenizerPath ?? path)
        return LoadedModel(model: model, tokenizer: tokenizer, loadSeconds: Date().timeIntervalSince(started))
    }

    /// The model alone (no tokenizer needed).
    public static func loadModel(path: String, backend: any Backend) throws -> LlamaModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ModelError(file: path, "no such file or directory")
        }
        let config: LlamaConfig, weights: LlamaWeights
        if isDirectory.boolValue {
            let dir = URL(fileURLWithPath: path)
            let configURL = dir.appendingPathComponent("config.json")
            let bytes = try readModelFile(configURL.path, missing: "missing: an HF model directory needs config.json")
            config = try LlamaConfig.fromHF(Array(bytes), file: configURL.path)
            weights = try loadSafetensors(dir: dir, config: config)
        } else if path.lowercased().hasSuffix(".gguf") {
            let file = try GGUFFile(path: path)
            config = try LlamaConfig.fromGGUF(file.metadata, file: path)
            weights = try loadGGUF(file, config: config)
        } else {
            throw ModelError(file: path, "expected an HF model directory or a .gguf file")
        }
        try weights.validate(config, file: path)
        return LlamaModel(config: config, weights: weights, backend: backend)
    }

    static func loadSafetensors(dir: URL, config c: LlamaConfig) throws -> LlamaWeights {
        let checkpoint = try SafetensorsCheckpoint(path: dir.path)
        try LlamaConfig.checkNoExtraLayers(checkpoint.names, layers: c.layers, declaredBy: "config.json num_hidden_layers", file: dir.path)
        func tensor(_ name: String, optional: Bool = false) throws -> [Float]? {
            guard let (file, info) = checkpoint.tensor(named: name) else {
                if optional { return nil }
                throw ModelError(file: dir.path, "tensor `\(name)` is missing")
            }
            return try file.floats(info)
        }
        func required(_ name: String) throws -> [Float] { try tensor(name)! }
        /// A projection: a bitsandbytes 4-bit entry when the checkpoint has one, else fp32.
        func linear(_ name: String) throws -> LinearWeight {
            do {
                if let q = try BitsAndBytesFormat.read(checkpoint, weightName: name) { return .fourBit(q) }
            } catch let e as BitsAndBytesError {
                throw ModelError(file: e.path, "\(e.tensor): \(e.reason)")
            }
            return .dense(try required(name))
        }
        var layers: [LlamaWeights.Layer] = []
        for i in 0..<c.layers {
            let p = "model.layers.\(i)."
            layers.append(LlamaWeights.Layer(
                attnNorm: try required(p + "input_layernorm.weight"),
                wq: try linear(p + "self_attn.q_proj.weight"), wk: try linear(p + "self_attn.k_proj.weight"),
                wv: try linear(p + "self_attn.v_proj.weight"), wo: try linear(p + "self_attn.o_proj.weight"),
                bq: c.attentionBias ? try required(p + "self_attn.q_proj.bias") : nil,
                bk: c.attentionBias ? try required(p + "self_attn.k_proj.bias") : nil,
                bv: c.attentionBias ? try required(p + "self_attn.v_proj.bias") : nil,
                ffnNorm: try required(p + "post_attention_layernorm.weight"),
                wGate: try linear(p + "mlp.gate_proj.weight"), wUp: try linear(p + "mlp.up_proj.weight"),
                wDown: try linear(p + "mlp.down_proj.weight")))
        }
        let lmHead = c.tieWordEmbeddings ? nil : try tensor("lm_head.weight", optional: true)
        return LlamaWeights(embedding: try required("model.embed_tokens.weight"), layers: layers,
                            finalNorm: try required("model.norm.weight"), lmHead: lmHead)
    }

    /// GGUF tensors (spec safetensors-and-gguf §3.3) dequantized to fp32; Q/K rows un-permuted back to
    /// HF's rotate-half order (§3.4). `output.weight` absent means tied to `token_embd.weight`.
    static func loadGGUF(_ file: GGUFFile, config c: LlamaConfig) throws -> LlamaWeights {
        try LlamaConfig.checkNoExtraLayers(file.tensors.map(\.name), layers: c.layers, declaredBy: "llama.block_count", file: file.path)
        func tensor(_ name: String) throws -> [Float] {
            guard let info = file.tensor(named: name) else { throw ModelError(file: file.path, "tensor `\(name)` is missing") }
            return try file.floats(info)
        }
        /// Model-level tensor by its HF name (`LlamaTensorNames.model`).
        func global(_ hf: String) -> String { LlamaTensorNames.model.first { $0.hf == hf }!.gguf }
        /// Layer `i`'s tensor by its HF name within the layer, Q/K rows back in HF order.
        func layerTensor(_ i: Int, _ hf: String) throws -> [Float] {
            let e = LlamaTensorNames.layerEntry(hf: hf)!
            var values = try tensor(LlamaTensorNames.ggufLayerPrefix(i) + e.gguf)
            if let heads = e.permutedHeads {
                let n = heads == .query ? c.heads : c.kvHeads
                GGUFDequantizer.unpermuteRows(&values, rows: n * c.headDim, columns: c.hiddenSize, heads: n)
            }
            return values
        }
        var layers: [LlamaWeights.Layer] = []
        for i in 0..<c.layers {
            func t(_ hf: String) throws -> [Float] { try layerTensor(i, hf) }
            layers.append(LlamaWeights.Layer(
                attnNorm: try t("input_layernorm.weight"), wq: try t("self_attn.q_proj.weight"), wk: try t("self_attn.k_proj.weight"),
                wv: try t("self_attn.v_proj.weight"), wo: try t("self_attn.o_proj.weight"), ffnNorm: try t("post_attention_layernorm.weight"),
                wGate: try t("mlp.gate_proj.weight"), wUp: try t("mlp.up_proj.weight"), wDown: try t("mlp.down_proj.weight")))
        }
        let output = global("lm_head.weight")
        let lmHead = file.tensor(named: output) == nil ? nil : try tensor(output)
        return LlamaWeights(embedding: try tensor(global("model.embed_tokens.weight")), layers: layers,
                            finalNorm: try tensor(global("model.norm.weight")), lmHead: lmHead)
    }
}

extension LoadedModel {
    /// This model with its dense projections quantized to 4 bits in memory, on the same backend (the tokenizer
    /// unchanged).
    public func quantized(_ options: FourBitOptions) -> LoadedModel {
        var copy = self
        copy.model = LlamaModel(config: model.config, weights: model.weights.quantized(options), backend: model.backend)
        return copy
    }

    /// The ids of `prompt`: the raw text with the tokenizer's special tokens, or, with `chat`, the text rendered as one
    /// user turn by the model's chat template with the generation prompt.
    public func promptIDs(_ prompt: String, chat: Bool) throws -> [Int] {
        guard chat else { return tokenizer.encode(prompt, addSpecialTokens: true) }
        let formatter = try ChatFormatter(tokenizer: tokenizer, choice: "model")
        let text = try formatter.render([Example.Message(role: .user, content: prompt)], addGenerationPrompt: true)
        return tokenizer.encode(text, addSpecialTokens: false)
    }
}
