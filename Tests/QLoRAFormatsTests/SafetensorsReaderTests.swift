import Foundation
import QLoRAFormats
import Testing

/// Reading valid safetensors files: every dtype round-trips through the writer, conversions to Float32 are
/// exact where they should be, and the mapping-backed views see the written bytes.
@Suite("Safetensors reader")
struct SafetensorsReaderTests {
    /// A shape for `dtype` whose bit count is a whole number of bytes.
    private func shape(for dtype: SafetensorsDType) -> [Int] {
        switch dtype.bitWidth {
        case 4: [2, 3]      // 24 bits
        case 6: [4]         // 24 bits
        default: [2, 3]
        }
    }

    @Test func everyDTypeRoundTripsThroughWriterAndReader() throws {
        var rng = SafetensorsTestRandom(seed: 7)
        var written: [SafetensorsWriter.Tensor] = []
        for dtype in SafetensorsDType.allCases {
            let shape = shape(for: dtype)
            let bytes = shape.reduce(1, *) * dtype.bitWidth / 8
            written.append((name: "t.\(dtype.rawValue)", dtype: dtype, shape: shape,
                            data: (0..<bytes).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        }
        try SafetensorsFixture.withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("all.safetensors")
            try SafetensorsWriter.write(written, metadata: ["format": "pt", "note": "every dtype"], to: url)
            let file = try SafetensorsFile(path: url.path)
            #expect(file.tensors.count == SafetensorsDType.allCases.count)
            #expect(file.metadata == ["format": "pt", "note": "every dtype"])
            #expect(file.dataOffset % 8 == 0)
            for t in written {
                let info = try #require(file.tensor(named: t.name))
                #expect(info.dtype == t.dtype)
                #expect(info.shape == t.shape)
                #expect(info.byteCount == t.data.count)
                #expect(info.elementCount == t.shape.reduce(1, *))
                #expect(Array(file.data(info)) == t.data, "\(t.name)")
                // The reference layout puts each tensor at a multiple of its element size.
                #expect((file.dataOffset + info.dataOffsets.lowerBound) % max(1, t.dtype.bitWidth / 8) == 0)
            }
        }
    }

    @Test func dtypeBitWidthsMatchTheSpecTable() {
        let expected: [(String, Int)] = [
            ("BOOL", 8), ("F4", 4), ("F6_E2M3", 6), ("F6_E3M2", 6), ("U8", 8), ("I8", 8), ("F8_E5M2", 8),
            ("F8_E4M3", 8), ("F8_E8M0", 8), ("F8_E4M3FNUZ", 8), ("F8_E5M2FNUZ", 8), ("I16", 16), ("U16", 16),
            ("F16", 16), ("BF16", 16), ("I32", 32), ("U32", 32), ("F32", 32), ("C64", 64), ("F64", 64),
            ("I64", 64), ("U64", 64),
        ]
        #expect(SafetensorsDType.allCases.map(\.rawValue) == expected.map(\.0))
        #expect(SafetensorsDType.allCases.map(\.bitWidth) == expected.map(\.1))
        #expect(SafetensorsDType.allCases.map(\.referenceOrder) == Array(0..<22))
    }

    @Test func scalarsAndZeroSizedTensorsAreValid() throws {
        let bytes = SafetensorsFixture.file(
            #"{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"e":{"dtype":"F16","shape":[0,7],"data_offsets":[4,4]},"f":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}}"#,
            data: SafetensorsFixture.bytes([Float(2.5)]))
        let file = try SafetensorsFile(bytes: bytes)
        #expect(file.names == ["s", "e", "f"])
        let s = try #require(file.tensor(named: "s"))
        #expect(s.shape == [] && s.elementCount == 1)
        #expect(try file.floats(s) == [2.5])
        let e = try #require(file.tensor(named: "e"))
        #expect(e.elementCount == 0 && e.byteCount == 0)
        #expect(try file.floats(e) == [])
        #expect(file.metadata.isEmpty)
    }

    @Test func emptyHeaderWithNoTensorsIsValid() throws {
        let file = try SafetensorsFile(bytes: SafetensorsFixture.file("{}      "))
        #expect(file.tensors.isEmpty)
        #expect(file.headerLength == 8)
    }

    @Test func tensorsKeepHeaderOrderAndMayBeUnalignedAndOutOfOffsetOrder() throws {
        // A foreign writer: name order, offsets not in header order, odd header length (unaligned data).
        let bytes = SafetensorsFixture.file(
            #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#,
            data: [9] + SafetensorsFixture.bytes([Float(-3.25)]))
        let file = try SafetensorsFile(bytes: bytes)
        #expect(file.names == ["b", "a"])
        #expect(try file.floats(named: "b") == [-3.25])
        #expect(try file.floats(named: "a") == [9])
        #expect(try file.floats(named: "absent") == nil)
    }

    @Test func floatsConvertEachSupportedDType() throws {
        let f16: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00, 0x8000]
        let bf16: [UInt16] = [0x3F80, 0xC040, 0x7F80, 0x0001]
        let tensors: [SafetensorsWriter.Tensor] = [
            (name: "f32", dtype: .f32, shape: [3], data: SafetensorsFixture.bytes([Float(1.5), -0.0, .infinity])),
            (name: "f16", dtype: .f16, shape: [6], data: SafetensorsFixture.bytes(f16)),
            (name: "bf16", dtype: .bf16, shape: [4], data: SafetensorsFixture.bytes(bf16)),
            (name: "f64", dtype: .f64, shape: [2], data: SafetensorsFixture.bytes([Double(0.1).bitPattern, Double(-1e300).bitPattern])),
            (name: "bool", dtype: .bool, shape: [3], data: [0, 1, 7]),
            (name: "u8", dtype: .u8, shape: [2], data: [0, 255]),
            (name: "i8", dtype: .i8, shape: [2], data: [0x80, 0x7F]),
            (name: "u16", dtype: .u16, shape: [1], data: SafetensorsFixture.bytes([UInt16(65535)])),
            (name: "i16", dtype: .i16, shape: [1], data: SafetensorsFixture.bytes([Int16(-300)])),
            (name: "u32", dtype: .u32, shape: [1], data: SafetensorsFixture.bytes([UInt32(16_777_217)])),
            (name: "i32", dtype: .i32, shape: [1], data: SafetensorsFixture.bytes([Int32(-7)])),
            (name: "u64", dtype: .u64, shape: [1], data: SafetensorsFixture.bytes([UInt64(1) << 40])),
            (name: "i64", dtype: .i64, shape: [1], data: SafetensorsFixture.bytes([Int64(-5)])),
            (name: "e4m3", dtype: .f8E4M3, shape: [1], data: [0x38]),
            (name: "c64", dtype: .c64, shape: [1], data: [UInt8](repeating: 0, count: 8)),
        ]
        let file = try SafetensorsFile(bytes: [UInt8](SafetensorsWriter.serialize(tensors)))
        func floats(_ name: String) throws -> [Float] { try #require(try file.floats(named: name)) }
        let f32 = try floats("f32")
        #expect(f32[0] == 1.5 && f32[1] == 0 && f32[1].sign == .minus && f32[2] == .infinity)
        #expect(try floats("f16") == [1, -2, 65504, 0x1p-24, .infinity, -0.0])
        #expect(try floats("f16")[5].sign == .minus)
        #expect(try floats("bf16") == [1, -3, .infinity, Float(bitPattern: 0x0001_0000)])
        #expect(try floats("f64") == [Float(0.1), -.infinity])
        #expect(try floats("bool") == [0, 1, 1])
        #expect(try floats("u8") == [0, 255])
        #expect(try floats("i8") == [-128, 127])
        #expect(try floats("u16") == [65535])
        #expect(try floats("i16") == [-300])
        #expect(try floats("u32") == [16_777_216])       // rounded to nearest even
        #expect(try floats("i32") == [-7])
        #expect(try floats("u64") == [0x1p40])
        #expect(try floats("i64") == [-5])
        for name in ["e4m3", "c64"] {
            let error = #expect(throws: SafetensorsError.self) { try file.floats(named: name) }
            #expect(error?.tensor == name)
            if case .unsupportedConversion? = error?.kind {} else { Issue.record("unexpected \(String(describing: error))") }
        }
    }

    @Test func halfConversionMatchesFloat16ForEveryBitPattern() {
        #if !(os(macOS) && arch(x86_64))
        var mismatches: [UInt16] = []
        for bits in 0...UInt16.max {
            let ours = SafetensorsConversion.float(fromHalf: bits)
            let reference = Float(Float16(bitPattern: bits))
            if reference.isNaN {
                let back = SafetensorsConversion.half(from: ours)
                if !ours.isNaN || back & 0x7C00 != 0x7C00 || back & 0x3FF == 0 { mismatches.append(bits) }
            } else if ours.bitPattern != reference.bitPattern || SafetensorsConversion.half(from: ours) != bits {
                mismatches.append(bits)
            }
        }
        #expect(mismatches.isEmpty, "first mismatching half bits: \(mismatches.prefix(8))")
        #endif
    }

    @Test func halfEncodingRoundsToNearestEvenLikeFloat16() {
        #if !(os(macOS) && arch(x86_64))
        var rng = SafetensorsTestRandom(seed: 11)
        var mismatches: [Float] = []
        for _ in 0..<200_000 {
            // Exponents 100...145 cover zero-rounding, subnormals, normals and overflow to infinity.
            let bits = UInt32.random(in: 0...UInt32.max, using: &rng)
            let exponent = UInt32.random(in: 100...145, using: &rng)
            let value = Float(bitPattern: (bits & 0x807F_FFFF) | (exponent << 23))
            if SafetensorsConversion.half(from: value) != Float16(value).bitPattern { mismatches.append(value) }
        }
        #expect(mismatches.isEmpty, "first mismatches: \(mismatches.prefix(8))")
        #endif
        // Exact ties: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10 → even (1); 1 + 3·2^-11 → 1 + 2^-9.
        #expect(SafetensorsConversion.half(from: 1 + 0x1p-11) == 0x3C00)
        #expect(SafetensorsConversion.half(from: 1 + 3 * 0x1p-11) == 0x3C02)
        #expect(SafetensorsConversion.half(from: 65520) == 0x7C00)       // rounds up to infinity
        #expect(SafetensorsConversion.half(from: 65519.99) == 0x7BFF)
        #expect(SafetensorsConversion.half(from: 0x1p-25) == 0x0000)     // tie to even zero
        #expect(SafetensorsConversion.half(from: 0x1.000002p-25) == 0x0001)
        #expect(SafetensorsConversion.half(from: -0x1p-24) == 0x8001)
        #expect(SafetensorsConversion.half(from: .nan) & 0x7E00 == 0x7E00)
    }

    @Test func bf16EncodingRoundsToNearestEvenAndQuietsNaN() {
        func bf16(_ bits: UInt32) -> UInt16 { SafetensorsConversion.bf16(from: Float(bitPattern: bits)) }
        #expect(bf16(0x3F80_0000) == 0x3F80)
        #expect(bf16(0x3F80_8000) == 0x3F80)          // tie → even
        #expect(bf16(0x3F81_8000) == 0x3F82)          // tie → even (up)
        #expect(bf16(0x3F80_8001) == 0x3F81)
        #expect(bf16(0x3F80_7FFF) == 0x3F80)
        #expect(bf16(0x7F7F_FFFF) == 0x7F80)          // max float rounds to infinity
        #expect(bf16(0xFF80_0000) == 0xFF80)          // −infinity stays
        #expect(bf16(0x7F80_0001) == 0x7FC0)          // signalling NaN → quiet NaN
        #expect(bf16(0xFFC0_0000) == 0xFFC0)
        #expect(SafetensorsConversion.float(fromBF16: 0x4049) == Float(bitPattern: 0x4049_0000))
        // Every bf16 value survives the round trip.
        let broken = (0...UInt16.max).filter { bits in
            let value = SafetensorsConversion.float(fromBF16: bits)
            return !value.isNaN && SafetensorsConversion.bf16(from: value) != bits
        }
        #expect(broken.isEmpty)
    }

    @Test func floatWritersEncodeBF16F16F32AndF64() throws {
        let values: [Float] = [1, -2.5, 0.1, 3.0e38, .infinity]
        let data = try SafetensorsWriter.serialize(floats: [
            (name: "x", shape: [5], values: values), (name: "y", shape: [1, 1], values: [7]),
        ], as: .bf16)
        let file = try SafetensorsFile(bytes: [UInt8](data))
        #expect(try file.floats(named: "x") == values.map { SafetensorsConversion.float(fromBF16: SafetensorsConversion.bf16(from: $0)) })
        #expect(file.tensor(named: "y")?.dtype == .bf16)
        for dtype in [SafetensorsDType.f16, .f32, .f64] {
            let file = try SafetensorsFile(bytes: [UInt8](SafetensorsWriter.serialize(
                floats: [(name: "x", shape: [2], values: [0.5, -1024])], as: dtype)))
            #expect(try file.floats(named: "x") == [0.5, -1024], "\(dtype)")
            #expect(file.tensor(named: "x")?.dtype == dtype)
        }
        #expect(SafetensorsWriter.encode([1], as: .i32) == nil)
        #expect(throws: SafetensorsError.self) {
            try SafetensorsWriter.serialize(floats: [(name: "x", shape: [1], values: [1])], as: .u8)
        }
    }

    @Test func withDataKeepsTheFileAliveAndSeesTheBytes() throws {
        let bytes = try SafetensorsFixture.small()
        let file = try SafetensorsFile(bytes: bytes)
        let info = try #require(file.tensor(named: "m"))
        let sum = file.withData(info) { $0.reduce(0) { $0 + Int($1) } }
        #expect(sum == 15)
        #expect(file.fileSize == bytes.count)
        #expect(file.dataOffset + info.dataOffsets.upperBound == bytes.count)
    }
}
