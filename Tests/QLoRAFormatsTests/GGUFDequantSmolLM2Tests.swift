import Foundation
import QLoRAFormats
import Testing

/// Dequantizing the real SmolLM2-135M-Instruct Q4_1 GGUF, against numbers from gguf-py 0.19.0
/// (`scripts/reference/make_dequant_goldens.py --smollm2 models/SmolLM2-135M-Instruct.Q4_1.gguf`).
/// Runs only when the model file is present.
@Suite("GGUF dequantization: SmolLM2-135M-Instruct",
       .enabled(if: SmolLM2File.isPresent,
                "models/SmolLM2-135M-Instruct.Q4_1.gguf is absent: fetch it with scripts/fetch_model.py"))
struct GGUFDequantSmolLM2Tests {
    /// (Σ bits, Σ (i+1)·bits) over the Float32 bit patterns, both wrapping mod 2^64, as the script computes.
    static func checksums(_ x: [Float]) -> (UInt64, UInt64) {
        x.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: UInt32.self) { bits in
                var s1: UInt64 = 0, s2: UInt64 = 0, i: UInt64 = 1
                for b in bits {
                    s1 &+= UInt64(b)
                    s2 &+= UInt64(b) &* i
                    i &+= 1
                }
                return (s1, s2)
            }
        }
    }

    struct Expected {
        let name: String
        let type: GGUFTensorType
        let shape: (rows: Int, columns: Int)
        let values: [(row: Int, column: Int, bits: UInt32)]
        let checksums: (UInt64, UInt64)
    }

    static let expected: [Expected] = [
        Expected(name: "blk.0.attn_q.weight", type: .q4_1, shape: (576, 576),
                 values: [(0, 0, 0xBDC5_4000), (0, 1, 0x3E21_2000), (0, 575, 0x3DFD_0000), (1, 0, 0xBDF0_4000),
                          (288, 192, 0xBD55_0000), (575, 575, 0xBE83_0000), (7, 100, 0x3D2A_0000),
                          (574, 17, 0x3E24_5800)],
                 checksums: (699_172_363_944_448, 5_297_806_885_007_399_424)),
        Expected(name: "token_embd.weight", type: .q8_0, shape: (49_152, 576),
                 values: [(0, 0, 0xBDDA_3400), (0, 1, 0x3D07_1400), (0, 575, 0x3CF3_C000), (1, 0, 0xBCC3_0000),
                          (24_576, 192, 0x3D7F_8800), (49_151, 575, 0xBD2A_D000), (7, 100, 0xBECB_06C0),
                          (49_150, 17, 0x3DAF_E000)],
                 checksums: (58_597_194_097_596_096, 8_619_863_071_844_056_960)),
        Expected(name: "blk.0.attn_k.weight", type: .q4_1, shape: (192, 576),
                 values: [(0, 0, 0xBE1F_0000), (1, 0, 0x3D68_0000), (96, 192, 0x3E32_C000), (191, 575, 0x3EBA_3000)],
                 checksums: (233_222_532_379_648, 12_897_952_378_136_227_840)),
        Expected(name: "output_norm.weight", type: .f32, shape: (1, 576),
                 values: [(0, 0, 0x3FE1_0000), (0, 575, 0x3FFE_0000), (0, 17, 0xBFA1_0000)],
                 checksums: (621_805_699_072, 178_720_733_790_208)),
    ]

    @Test("attn_q (Q4_1), token_embd (Q8_0), attn_k, output_norm match gguf-py")
    func tensorsMatchGGUFPy() throws {
        let file = try GGUFFile(path: SmolLM2File.path)
        for e in Self.expected {
            let info = try #require(file.tensor(named: e.name))
            #expect(info.type == e.type)
            #expect(info.dims == (e.shape.rows == 1 ? [e.shape.columns] : [e.shape.columns, e.shape.rows]))
            let x = try file.floats(info)
            #expect(x.count == e.shape.rows * e.shape.columns)
            for v in e.values {
                #expect(x[v.row * e.shape.columns + v.column].bitPattern == v.bits, "\(e.name)[\(v.row), \(v.column)]")
            }
            let sums = Self.checksums(x)
            #expect(sums.0 == e.checksums.0 && sums.1 == e.checksums.1, "\(e.name) checksums \(sums)")
        }
    }

    @Test("un-permuted attn_q / attn_k match gguf-py's reshape(H, hd/2, 2, in).swapaxes(1, 2)")
    func unpermutedMatchesNumpy() throws {
        let file = try GGUFFile(path: SmolLM2File.path)
        for (name, heads, rows, sums, hf10) in [
            ("blk.0.attn_q.weight", 9, 576, (UInt64(699_172_363_944_448), UInt64(5_299_608_424_901_908_992)),
             UInt32(0xBE23_0000)),
            ("blk.0.attn_k.weight", 3, 192, (UInt64(233_222_532_379_648), UInt64(12_889_547_066_965_061_632)),
             UInt32(0x3E50_4000)),
        ] {
            var x = try file.floats(try #require(file.tensor(named: name)))
            GGUFDequantizer.unpermuteRows(&x, rows: rows, columns: 576, heads: heads)
            let got = Self.checksums(x)
            #expect(got.0 == sums.0 && got.1 == sums.1, "\(name) checksums \(got)")
            #expect(x[576].bitPattern == hf10, "\(name) hf[1, 0]")
        }
    }

    @Test("row ranges of token_embd agree with the whole tensor")
    func rowRanges() throws {
        let file = try GGUFFile(path: SmolLM2File.path)
        let info = try #require(file.tensor(named: "token_embd.weight"))
        let all = try file.floats(info)
        for rows in [0..<1, 100..<164, 49_000..<49_152] {
            let some = try file.floats(info, rows: rows)
            #expect(some == Array(all[(rows.lowerBound * 576)..<(rows.upperBound * 576)]))
        }
    }

    @Test("every one of the 272 tensors decodes (first and last row)")
    func everyTensor() throws {
        let file = try GGUFFile(path: SmolLM2File.path)
        #expect(file.tensors.count == 272)
        var total = 0
        for info in file.tensors {
            let ne0 = info.dims[0], rows = info.elementCount / ne0
            total += info.elementCount
            let first = try file.floats(info, rows: 0..<1), last = try file.floats(info, rows: (rows - 1)..<rows)
            #expect(first.count == ne0 && last.count == ne0)
            #expect(first.allSatisfy { $0.isFinite } && last.allSatisfy { $0.isFinite }, "\(info.name)")
        }
        #expect(total == 134_515_008)
    }
}
