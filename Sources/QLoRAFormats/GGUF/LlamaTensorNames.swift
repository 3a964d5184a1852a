/// The tensor names of a LLaMA-family model in Hugging Face checkpoints and in GGUF files (llama.cpp's
/// `convert_hf_to_gguf.py` map, spec safetensors-and-gguf §3.3), and which of them the converter row-permutes
/// (Q and K, §3.4; the permutation itself is below). The one table the model loader, the preparer and the
/// GGUF LoRA export use.
public enum LlamaTensorNames {
    /// Which head count a Q/K row permutation runs over.
    public enum Heads: Sendable, Equatable {
        /// `num_attention_heads` (q_proj and its bias).
        case query
        /// `num_key_value_heads` (k_proj and its bias).
        case keyValue
    }

    /// One tensor: its HF name, its GGUF name, and the permutation GGUF applies to its rows (nil: none).
    public struct Entry: Sendable, Equatable {
        public let hf: String
        public let gguf: String
        public let permutedHeads: Heads?

        init(_ hf: String, _ gguf: String, _ permutedHeads: Heads? = nil) {
            self.hf = hf
            self.gguf = gguf
            self.permutedHeads = permutedHeads
        }
    }

    /// Model-level tensors. `lm_head.weight`/`output.weight` is absent when tied to the embeddings.
    public static let model: [Entry] = [
        Entry("model.embed_tokens.weight", "token_embd.weight"),
        Entry("model.norm.weight", "output_norm.weight"),
        Entry("lm_head.weight", "output.weight"),
    ]

    /// Per-layer tensors, named relative to the layer (`hfLayerPrefix` / `ggufLayerPrefix`). Biases exist only
    /// for models with attention biases (Qwen2).
    public static let layer: [Entry] = [
        Entry("input_layernorm.weight", "attn_norm.weight"),
        Entry("self_attn.q_proj.weight", "attn_q.weight", .query),
        Entry("self_attn.k_proj.weight", "attn_k.weight", .keyValue),
        Entry("self_attn.v_proj.weight", "attn_v.weight"),
        Entry("self_attn.o_proj.weight", "attn_output.weight"),
        Entry("self_attn.q_proj.bias", "attn_q.bias", .query),
        Entry("self_attn.k_proj.bias", "attn_k.bias", .keyValue),
        Entry("self_attn.v_proj.bias", "attn_v.bias"),
        Entry("post_attention_layernorm.weight", "ffn_norm.weight"),
        Entry("mlp.gate_proj.weight", "ffn_gate.weight"),
        Entry("mlp.up_proj.weight", "ffn_up.weight"),
        Entry("mlp.down_proj.weight", "ffn_down.weight"),
    ]

    public static func hfLayerPrefix(_ layer: Int) -> String { "model.layers.\(layer)." }
    public static func ggufLayerPrefix(_ layer: Int) -> String { "blk.\(layer)." }

    /// The layer index of a per-layer tensor name (`model.layers.N.…` or `blk.N.…`), nil for others.
    public static func layerIndex(of name: String) -> Int? {
        for prefix in ["model.layers.", "blk."] where name.hasPrefix(prefix) {
            let rest = name.dropFirst(prefix.count)
            guard let dot = rest.firstIndex(of: ".") else { return nil }
            return Int(rest[..<dot])
        }
        return nil
    }

    /// The first of `names` (in order) that belongs to a layer at or beyond `layers`: a file holding
    /// more layers than its config declares.
    public static func firstExtraLayerTensor(_ names: [String], layers: Int) -> String? {
        names.first { (layerIndex(of: $0) ?? -1) >= layers }
    }

    /// The entry of a per-layer tensor by its HF name relative to the layer (`self_attn.q_proj.weight`).
    public static func layerEntry(hf: String) -> Entry? { layer.first { $0.hf == hf } }

    /// Every tensor of a model with `layers` layers (biases included only with `attentionBias`), with full
    /// names: model-level ones first and last, layers in order.
    public static func entries(layers: Int, attentionBias: Bool = false) -> [Entry] {
        var out = [model[0]]
        for i in 0..<layers {
            for e in layer where attentionBias || !e.hf.hasSuffix(".bias") {
                out.append(Entry(hfLayerPrefix(i) + e.hf, ggufLayerPrefix(i) + e.gguf, e.permutedHeads))
            }
        }
        return out + model[1...]
    }

    /// llama.cpp's module name of an HF projection module path (`self_attn.q_proj` → `attn_q`), nil when unknown.
    public static func ggufModule(ofHFModule module: String) -> String? {
        guard let e = layerEntry(hf: module + ".weight") else { return nil }
        return String(e.gguf.dropLast(".weight".count))
    }
}

// The LLaMA Q/K row permutation (spec/safetensors-and-gguf.md §3.4). llama.cpp's converter reorders the rows
// of q_proj/k_proj (and their biases) so that NORM rope's adjacent pairs (2i, 2i+1) line up with HF
// rotate_half's pairs (i, i + hd/2). Per head h, i in 0..<hd/2, j in {0, 1}:
//   gguf_row[h·hd + 2i + j] = hf_row[h·hd + j·(hd/2) + i].
// Whole rows move, so this works on dequantized floats (rows × columns, row-major) and, through the index
// functions, row by row on quantized data.

public extension GGUFDequantizer {
    /// Converts the rows of a dequantized attn_q/attn_k weight (or bias, with `columns` 1) from llama.cpp's
    /// adjacent-pair order back to HF's rotate-half order. `data` is `rows × columns` row-major with
    /// `rows = heads · head_dim` (`heads` = n_head for Q, n_head_kv for K).
    ///
    /// Shapes that cannot be un-permuted (`data.count ≠ rows·columns`, `heads < 1`, `rows` not a multiple
    /// of `heads`, or an odd head_dim) leave `data` unchanged: callers validate tensor shapes against the
    /// model config, and a hostile file must produce a thrown shape error there, never a trap here.
    static func unpermuteRows(_ data: inout [Float], rows: Int, columns: Int, heads: Int) {
        permute(&data, rows: rows, columns: columns, heads: heads, toHF: true)
    }

    /// The forward permutation (HF rotate-half order → llama.cpp order), as the GGUF converter applies it;
    /// the inverse of `unpermuteRows`. Same shape rules.
    static func permuteRows(_ data: inout [Float], rows: Int, columns: Int, heads: Int) {
        permute(&data, rows: rows, columns: columns, heads: heads, toHF: false)
    }

    /// The HF row that GGUF row `ggufRow` holds (rows = heads·headDim; headDim even).
    static func hfRowIndex(ofGGUFRow ggufRow: Int, headDim: Int) -> Int {
        let half = headDim / 2
        let h = ggufRow / headDim, r = ggufRow % headDim
        return h * headDim + (r & 1) * half + r / 2
    }

    /// The GGUF row that holds HF row `hfRow` (the inverse of `hfRowIndex(ofGGUFRow:headDim:)`).
    static func ggufRowIndex(ofHFRow hfRow: Int, headDim: Int) -> Int {
        let half = headDim / 2
        let h = hfRow / headDim, r = hfRow % headDim
        return h * headDim + 2 * (r % half) + r / half
    }

    private static func permute(_ data: inout [Float], rows: Int, columns: Int, heads: Int, toHF: Bool) {
        guard heads >= 1, rows >= 0, columns >= 0, rows % heads == 0 else { return }
        let (total, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard !overflow, total == data.count, total > 0 else { return }
        let headDim = rows / heads
        guard headDim % 2 == 0 else { return }
        let headElements = headDim * columns
        // One head at a time through a scratch copy of that head's rows.
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: headElements)
        defer { scratch.deallocate() }
        data.withUnsafeMutableBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            for h in 0..<heads {
                let head = base + h * headElements
                scratch.update(from: head, count: headElements)
                for src in 0..<headDim {
                    // toHF: GGUF row `src` goes to HF row hfRowIndex(src); otherwise HF row `src` goes to
                    // GGUF row ggufRowIndex(src).
                    let dst = toHF ? hfRowIndex(ofGGUFRow: src, headDim: headDim)
                                   : ggufRowIndex(ofHFRow: src, headDim: headDim)
                    (head + dst * columns).update(from: scratch + src * columns, count: columns)
                }
            }
        }
    }
}
