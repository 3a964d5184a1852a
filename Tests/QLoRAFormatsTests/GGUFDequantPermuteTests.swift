import QLoRAFormats
import Testing

/// The Q/K row permutation of spec/safetensors-and-gguf.md §3.4.
@Suite("GGUF Q/K row un-permutation")
struct GGUFDequantPermuteTests {
    /// rows × columns with value row·100 + column.
    static func labelled(rows: Int, columns: Int) -> [Float] {
        (0..<(rows * columns)).map { Float(($0 / columns) * 100 + $0 % columns) }
    }

    @Test("hand-computed example: 2 heads, head_dim 6, 2 columns")
    func handExample() {
        // Per head, GGUF rows (0 1 2 3 4 5) hold HF rows (0 3 1 4 2 5): hf[j·3 + i] = gguf[2i + j], so the
        // HF order is the even GGUF rows of the head followed by the odd ones.
        var data = Self.labelled(rows: 12, columns: 2)
        GGUFDequantizer.unpermuteRows(&data, rows: 12, columns: 2, heads: 2)
        let expectedRows = [0, 2, 4, 1, 3, 5, 6, 8, 10, 7, 9, 11]
        let expected = expectedRows.flatMap { r in [Float(r * 100), Float(r * 100 + 1)] }
        #expect(data == expected)

        GGUFDequantizer.permuteRows(&data, rows: 12, columns: 2, heads: 2)
        #expect(data == Self.labelled(rows: 12, columns: 2))
    }

    @Test("head_dim 4, one head, as a bias vector (1 column)")
    func bias() {
        var bias: [Float] = [10, 11, 12, 13]
        GGUFDequantizer.unpermuteRows(&bias, rows: 4, columns: 1, heads: 1)
        #expect(bias == [10, 12, 11, 13])
    }

    @Test("permute is the converter's forward formula; permute ∘ unpermute = identity",
          arguments: [(1, 2, 1), (2, 6, 2), (9, 64, 576), (3, 64, 576), (4, 8, 3)])
    func roundTrip(_ heads: Int, _ headDim: Int, _ columns: Int) {
        let rows = heads * headDim
        var rng = GGUFTestRandom(seed: UInt64(heads * 1000 + headDim * 10 + columns))
        let hf = (0..<(rows * columns)).map { _ in Float.random(in: -1...1, using: &rng) }

        // gguf_row[h·hd + 2i + j] = hf_row[h·hd + j·(hd/2) + i]
        var forward = [Float](repeating: 0, count: hf.count)
        for h in 0..<heads {
            for i in 0..<(headDim / 2) {
                for j in 0..<2 {
                    let g = h * headDim + 2 * i + j, s = h * headDim + j * (headDim / 2) + i
                    for c in 0..<columns { forward[g * columns + c] = hf[s * columns + c] }
                }
            }
        }
        var gguf = hf
        GGUFDequantizer.permuteRows(&gguf, rows: rows, columns: columns, heads: heads)
        #expect(gguf == forward)

        var back = gguf
        GGUFDequantizer.unpermuteRows(&back, rows: rows, columns: columns, heads: heads)
        #expect(back == hf)

        var again = hf
        GGUFDequantizer.unpermuteRows(&again, rows: rows, columns: columns, heads: heads)
        GGUFDequantizer.permuteRows(&again, rows: rows, columns: columns, heads: heads)
        #expect(again == hf)
    }

    @Test("row index functions are inverse bijections")
    func indices() {
        for headDim in [2, 6, 64] {
            let rows = 3 * headDim
            let toHF = (0..<rows).map { GGUFDequantizer.hfRowIndex(ofGGUFRow: $0, headDim: headDim) }
            #expect(Set(toHF) == Set(0..<rows))
            #expect((0..<rows).allSatisfy {
                GGUFDequantizer.ggufRowIndex(ofHFRow: toHF[$0], headDim: headDim) == $0
            })
        }
        #expect(GGUFDequantizer.hfRowIndex(ofGGUFRow: 1, headDim: 64) == 32)
        #expect(GGUFDequantizer.hfRowIndex(ofGGUFRow: 64 + 3, headDim: 64) == 64 + 33)
    }

    @Test("shapes that cannot be un-permuted leave the data unchanged (no trap)")
    func badShapes() {
        let original = Self.labelled(rows: 6, columns: 2)
        for (rows, columns, heads) in [(6, 3, 1), (6, 2, 0), (6, 2, 4), (6, 2, 2), (-6, -2, 1), (Int.max, 2, 1)] {
            var data = original
            GGUFDequantizer.unpermuteRows(&data, rows: rows, columns: columns, heads: heads)
            #expect(data == original, "rows \(rows) columns \(columns) heads \(heads)")
        }
        var empty: [Float] = []
        GGUFDequantizer.unpermuteRows(&empty, rows: 0, columns: 5, heads: 1)
        #expect(empty.isEmpty)
    }
}
