import Foundation
import QLoRAFormats
import Testing

/// Goldens written by scripts/reference/make_dequant_goldens.py (gguf-py 0.19.0): for each type,
/// `<TYPE>.blocks` (raw GGUF block bytes) and `<TYPE>.f32` (gguf.quants.dequantize, little-endian float32).
enum DequantGoldens {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/dequant", isDirectory: true)

    static let types: [GGUFTensorType] = [
        .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K,
    ]

    struct Golden {
        let type: GGUFTensorType
        let blocks: [UInt8]
        let expected: [Float]
    }

    static func load(_ type: GGUFTensorType) throws -> Golden {
        let blocks = try Data(contentsOf: directory.appendingPathComponent("\(type).blocks"))
        let floats = try Data(contentsOf: directory.appendingPathComponent("\(type).f32"))
        let expected = floats.withUnsafeBytes { raw in
            (0..<(raw.count / 4)).map {
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))
            }
        }
        return Golden(type: type, blocks: Array(blocks), expected: expected)
    }

    /// Dequantizes `count` elements of `bytes` into a fresh array.
    static func decode(_ type: GGUFTensorType, _ bytes: [UInt8], count: Int) throws -> [Float] {
        var out = [Float](repeating: .nan, count: max(count, 1))
        try bytes.withUnsafeBytes { raw in
            try out.withUnsafeMutableBufferPointer { buffer in
                try GGUFDequantizer.dequantize(type, raw, count: count, into: buffer.baseAddress!)
            }
        }
        return Array(out.prefix(max(count, 0)))
    }

    /// Indices where the bit patterns differ (at most `limit`).
    static func mismatches(_ a: [Float], _ b: [Float], limit: Int = 5) -> [String] {
        var result: [String] = []
        for i in 0..<min(a.count, b.count) where a[i].bitPattern != b[i].bitPattern {
            result.append("[\(i)] got \(a[i]) (0x\(String(a[i].bitPattern, radix: 16))) "
                + "expected \(b[i]) (0x\(String(b[i].bitPattern, radix: 16)))")
            if result.count == limit { break }
        }
        return result
    }
}

@Suite("GGUF dequantization")
struct GGUFDequantTests {
    @Test("matches gguf-py bit for bit", arguments: DequantGoldens.types)
    func goldens(_ type: GGUFTensorType) throws {
        let golden = try DequantGoldens.load(type)
        #expect(golden.blocks.count % type.bytesPerBlock == 0)
        #expect(golden.expected.count == golden.blocks.count / type.bytesPerBlock * type.blockSize)
        #expect(golden.expected.count >= 1024)
        let got = try DequantGoldens.decode(type, golden.blocks, count: golden.expected.count)
        #expect(DequantGoldens.mismatches(got, golden.expected).isEmpty,
                "\(type): \(DequantGoldens.mismatches(got, golden.expected))")
    }

    @Test("large inputs take the parallel path and still match", arguments: [GGUFTensorType.q4_1, .q8_0, .q6_K, .f16])
    func parallelMatchesGoldens(_ type: GGUFTensorType) throws {
        let golden = try DequantGoldens.load(type)
        // Enough copies for several tasks (well over the 64 Ki-element threshold), and an odd count so the
        // last task is short.
        let copies = 3 * (1 << 17) / golden.expected.count + 1
        let blocks = Array([[UInt8]](repeating: golden.blocks, count: copies).joined())
        let expected = Array([[Float]](repeating: golden.expected, count: copies).joined())
        let got = try DequantGoldens.decode(type, blocks, count: expected.count)
        #expect(DequantGoldens.mismatches(got, expected).isEmpty)
    }

    @Test("unaligned input and a prefix of the blocks")
    func unalignedPrefix() throws {
        let golden = try DequantGoldens.load(.q5_K)
        let shifted = [0x55] + golden.blocks
        var out = [Float](repeating: .nan, count: 512 + 1)
        try shifted.withUnsafeBytes { raw in
            try out.withUnsafeMutableBufferPointer { buffer in
                try GGUFDequantizer.dequantize(.q5_K, UnsafeRawBufferPointer(rebasing: raw[1...]), count: 512,
                                               into: buffer.baseAddress!)
            }
        }
        #expect(DequantGoldens.mismatches(Array(out[0..<512]), Array(golden.expected[0..<512])).isEmpty)
        #expect(out[512].isNaN, "wrote past count")
    }

    @Test("F16 matches Float16 for all 65536 bit patterns; NaN payloads are kept")
    func everyHalf() throws {
        let bytes = (0..<65536).flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        let got = try DequantGoldens.decode(.f16, bytes, count: 65536)
        var bad: [String] = []
        for h in 0..<65536 {
            let half = Float16(bitPattern: UInt16(h))
            let expected: UInt32
            if half.isNaN {
                // numpy's widening: sign, all-ones exponent, the 10-bit payload shifted left by 13.
                expected = (UInt32(h & 0x8000) << 16) | 0x7F80_0000 | (UInt32(h & 0x3FF) << 13)
            } else {
                expected = Float(half).bitPattern
            }
            if got[h].bitPattern != expected { bad.append(String(h, radix: 16)) }
        }
        #expect(bad.isEmpty, "mismatching halves: \(bad.prefix(10))")
    }

    @Test("unsupported types throw an error naming the type")
    func unsupportedType() throws {
        for type in [GGUFTensorType.q2_K, .q3_K, .iq4_NL, .q8_1, .i32, .unknown(4)] {
            #expect(!GGUFDequantizer.supports(type))
            let bytes = [UInt8](repeating: 0, count: 1024)
            let count = max(type.blockSize, 1)
            do {
                _ = try DequantGoldens.decode(type, bytes, count: count)
                Issue.record("\(type) did not throw")
            } catch let error as GGUFDequantizeError {
                #expect(error.kind == .unsupportedType(type))
                #expect(error.description.contains(type.description))
            }
        }
        #expect(DequantGoldens.types.allSatisfy(GGUFDequantizer.supports))
    }

    @Test("bad counts and short input throw")
    func badSizes() throws {
        let bytes = [UInt8](repeating: 0, count: 40)
        #expect(throws: GGUFDequantizeError(kind: .countNotBlockMultiple(count: 33, blockSize: 32, type: .q4_1))) {
            _ = try DequantGoldens.decode(.q4_1, bytes, count: 33)
        }
        #expect(throws: GGUFDequantizeError(kind: .inputTooShort(needed: 60, available: 40))) {
            _ = try DequantGoldens.decode(.q4_1, bytes, count: 96)
        }
        #expect(throws: GGUFDequantizeError(kind: .countNotBlockMultiple(count: -32, blockSize: 32, type: .q4_1))) {
            _ = try DequantGoldens.decode(.q4_1, bytes, count: -32)
        }
        // Zero elements is fine and touches nothing.
        #expect(try DequantGoldens.decode(.q6_K, [], count: 0).isEmpty)
    }

    /// Golden blocks wrapped in a GGUF file: `floats`, `floats(rows:)` and `dequantizeRows` agree with the goldens.
    @Test("GGUFFile.floats and dequantizeRows", arguments: [GGUFTensorType.q4_K, .q4_1, .bf16])
    func fileRows(_ type: GGUFTensorType) throws {
        let golden = try DequantGoldens.load(type)
        let ne0 = type.blockSize == 1 ? 64 : 2 * type.blockSize
        let ne1 = golden.expected.count / ne0
        let tensor = GGUFTestTensor(name: "blk.0.attn_q.weight", dims: [UInt64(ne0), UInt64(ne1)],
                                    type: type.rawValue, data: golden.blocks)
        let file = try GGUFFile(bytes: GGUFFixture.file(tensors: [tensor]), path: "golden.gguf")
        let info = try #require(file.tensor(named: "blk.0.attn_q.weight"))

        let all = try file.floats(info)
        #expect(DequantGoldens.mismatches(all, golden.expected).isEmpty)

        let rows = 3..<(ne1 - 1)
        let some = try file.floats(info, rows: rows)
        #expect(some.count == rows.count * ne0)
        #expect(DequantGoldens.mismatches(some, Array(golden.expected[(rows.lowerBound * ne0)..<(rows.upperBound * ne0)])).isEmpty)

        var one = [Float](repeating: .nan, count: ne0)
        try one.withUnsafeMutableBufferPointer {
            try GGUFDequantizer.dequantizeRows(info, from: file, rows: (ne1 - 1)..<ne1, into: $0.baseAddress!)
        }
        #expect(DequantGoldens.mismatches(one, Array(golden.expected.suffix(ne0))).isEmpty)

        #expect(throws: GGUFDequantizeError(path: "golden.gguf", tensor: info.name,
                                            kind: .rowsOutOfRange(lower: ne1 - 1, upper: ne1 + 1, rowCount: ne1))) {
            _ = try file.floats(info, rows: (ne1 - 1)..<(ne1 + 1))
        }
    }

    @Test("an unsupported tensor in a file throws with the tensor's name")
    func unsupportedTensorInFile() throws {
        let q2 = GGUFTestTensor.patterned("blk.0.ffn_up.weight", dims: [256, 2], type: .q2_K)
        let file = try GGUFFile(bytes: GGUFFixture.file(tensors: [q2]), path: "q2.gguf")
        let info = try #require(file.tensor(named: "blk.0.ffn_up.weight"))
        do {
            _ = try file.floats(info)
            Issue.record("no error")
        } catch let error as GGUFDequantizeError {
            #expect(error.kind == .unsupportedType(.q2_K))
            #expect(error.description.hasPrefix("q2.gguf: tensor 'blk.0.ffn_up.weight': cannot dequantize tensor type Q2_K"))
        }
    }
}
