import Foundation
import Testing
import QLoRACore
import QLoRACPU
import QLoRAFormats

/// Byte-for-byte agreement with bitsandbytes 0.50.2 (CPU) on the fixtures written by
/// scripts/reference/make_nf4_goldens.py (see Fixtures/nf4/README.md).
@Suite struct BitsAndBytesGoldenTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/nf4")
    static let cases: [String] = ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? [])
        .filter { $0.hasSuffix(".safetensors") }.sorted()

    struct Golden {
        let file: SafetensorsFile
        let type: FourBitType
        let blocksize: Int
        let doubleQuant: Bool
        let dtype: FloatStorage
        let shape: [Int]

        init(_ name: String) throws {
            file = try SafetensorsFile(path: BitsAndBytesGoldenTests.folder.appendingPathComponent(name).path)
            let m = file.metadata
            type = FourBitType(rawValue: m["quant_type"]!)!
            blocksize = Int(m["blocksize"]!)!
            doubleQuant = m["double_quant"] == "true"
            dtype = FloatStorage(rawValue: m["dtype"]!)!
            shape = try JSONParser.parse(m["shape"]!).arrayValue!.map { Int($0.numberValue!) }
        }

        func bytes(_ name: String) -> [UInt8] { file.bytes(file.tensor(named: name)!) }
        func floats(_ name: String) throws -> [Float] { try file.floats(named: name)! }
    }

    @Test func fixturesArePresent() {
        #expect(Self.cases.count >= 30)
    }

    @Test(arguments: cases)
    func quantizeMatchesBitsAndBytes(name: String) throws {
        let g = try Golden(name)
        let input = try g.floats("input")
        let plain = FourBitOptions(type: g.type, blocksize: g.blocksize, doubleQuant: false)
        for reference in [false, true] {
            let q = reference
                ? FourBitQuantizer.quantizeReference(input, shape: g.shape, dtype: g.dtype, options: plain)
                : FourBitQuantizer.quantize(input, shape: g.shape, dtype: g.dtype, options: plain)
            #expect(q.packed == g.bytes("packed"), "\(name): packed codes")
            guard case .plain(let absmax) = q.scales else { return }
            if !g.doubleQuant {
                #expect(absmax.map(\.bitPattern) == (try g.floats("absmax")).map(\.bitPattern), "\(name): absmax")
                continue
            }
            // Double quantization. bitsandbytes' offset is torch's float32 cascade sum / n; ours is the
            // float64 mean: allow 2 ulp there, then replay the nested step with its offset, bit for bit.
            let offset = try g.floats("offset")[0]
            let ours = FourBitQuantizer.mean(absmax)
            #expect(abs(ours - offset) <= 2 * offset.ulp, "\(name): offset \(ours) vs \(offset)")
            let nested = FourBitQuantizer.nest(absmax, rounding: .bitsandbytesCPU, offset: offset)
            #expect(nested.codes == g.bytes("absmax_q"), "\(name): 8-bit absmax codes")
            #expect(nested.absmax.map(\.bitPattern) == (try g.floats("nested_absmax")).map(\.bitPattern), "\(name): nested absmax")
            #expect(nested.map.map(\.bitPattern) == (try g.floats("nested_code")).map(\.bitPattern), "\(name): dynamic map")
            var full = q
            full.scales = .nested(nested)
            #expect(BitsAndBytesFormat.quantStateJSON(full) == g.file.metadata["quant_state_json"], "\(name): quant state JSON")
        }
        if !g.doubleQuant {
            let q = FourBitQuantizer.quantize(input, shape: g.shape, dtype: g.dtype, options: plain)
            #expect(BitsAndBytesFormat.quantStateJSON(q) == g.file.metadata["quant_state_json"], "\(name): quant state JSON")
        }
    }

    @Test(arguments: cases)
    func dequantizeMatchesBitsAndBytes(name: String) throws {
        let g = try Golden(name)
        let scales: FourBitScales = g.doubleQuant
            ? .nested(NestedScales(codes: g.bytes("absmax_q"), absmax: try g.floats("nested_absmax"),
                                   offset: try g.floats("offset")[0], map: try g.floats("nested_code")))
            : .plain(try g.floats("absmax"))
        let t = FourBitTensor(type: g.type, shape: g.shape, blocksize: g.blocksize, packed: g.bytes("packed"),
                              scales: scales, dtype: g.dtype)
        let want = try g.floats("dequant")
        let ref = FourBitQuantizer.dequantizeReference(t)
        let simd = FourBitKernels.dequantize(t, threads: 2)
        #expect(ref.map(\.bitPattern) == simd.map(\.bitPattern), "\(name): SIMD vs reference")
        // Round to the recorded dtype (nearest even), then compare bits; zeros compare without their sign
        // (bitsandbytes' FP4 code 8 is +0 in Python and -0 in its C++ kernel).
        let rounded: [Float] = ref.map { v in
            switch g.dtype {
            case .float32: return v
            case .bfloat16: return SafetensorsConversion.float(fromBF16: SafetensorsConversion.bf16(from: v))
            case .float16: return SafetensorsConversion.float(fromHalf: SafetensorsConversion.half(from: v))
            }
        }
        let mismatches = zip(rounded, want).filter { a, b in a.bitPattern != b.bitPattern && !(a == 0 && b == 0) }.count
        #expect(mismatches == 0, "\(name): \(mismatches) dequantized values differ")
    }
}
