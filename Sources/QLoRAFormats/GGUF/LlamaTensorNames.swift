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
