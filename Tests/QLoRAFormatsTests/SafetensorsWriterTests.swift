import Foundation
import QLoRAFormats
import Testing

/// The writer lays files out byte-for-byte as the reference `serialize` does (spec §1.4).
@Suite("Safetensors writer")
struct SafetensorsWriterTests {
    private func le64(_ n: UInt64) -> [UInt8] { SafetensorsFixture.bytes([n]) }

    @Test func multiDTypeFileMatchesTheReferenceLayoutByteForByte() throws {
        let a = SafetensorsFixture.bytes([Float(1)])
        let z = SafetensorsFixture.bytes([Float(2), Float(3)])
        let b = SafetensorsFixture.bytes([UInt16(0x3C00), UInt16(0x4000)])
        let c: [UInt8] = [7, 8, 9]
        // Given in an order that is neither dtype nor name order.
        let data = try SafetensorsWriter.serialize([
            (name: "c", dtype: .u8, shape: [3], data: c),
            (name: "z", dtype: .f32, shape: [2], data: z),
            (name: "b", dtype: .f16, shape: [2], data: b),
            (name: "a", dtype: .f32, shape: [1], data: a),
        ], metadata: ["format": "mlx"])
        // Expected, built by hand from the spec: __metadata__ first; F32 (a, z) before F16 (b) before U8 (c);
        // offsets back to back; the 249-byte JSON padded with 7 spaces to 256.
        let json = #"{"__metadata__":{"format":"mlx"},"#
            + #""a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
            + #""z":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"#
            + #""b":{"dtype":"F16","shape":[2],"data_offsets":[12,16]},"#
            + #""c":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}}"#
        #expect(json.utf8.count == 249)
        let expected = le64(256) + Array(json.utf8) + Array(repeating: UInt8(ascii: " "), count: 7) + a + z + b + c
        #expect([UInt8](data) == expected)
    }

    /// The byte vectors of the reference crate's own tests (`test_empty`, `test_serialization_forced_alignement`).
    @Test func referenceCrateTestVectorsAreReproduced() throws {
        #expect([UInt8](try SafetensorsWriter.serialize([])) == [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])
        #expect([UInt8](try SafetensorsWriter.serialize([], metadata: ["framework": "pt"])) == [
            40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
            95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
            116, 34, 125, 125, 32, 32, 32, 32, 32,
        ])
        let values = SafetensorsFixture.bytes([Float(0), 1, 2, 3, 4, 5])
        #expect([UInt8](try SafetensorsWriter.serialize([(name: "attn0", dtype: .f32, shape: [1, 1, 2, 3], data: values)])) == [
            72, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 48, 34, 58, 123, 34, 100, 116,
            121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58,
            91, 49, 44, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102,
            115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 32, 32, 32, 32, 32,
            32, 32, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0,
            160, 64,
        ])
    }

    /// Bytes produced by the reference serializer itself (safetensors 0.8.0's Rust `serialize`, through its
    /// Python binding, metadata {"format": "pt"}) for ten tensors covering the alignment classes, a scalar, an
    /// empty tensor, F4 packing and a non-ASCII name.
    @Test func outputMatchesBytesFromTheReferenceSerializer() throws {
        let tensors: [SafetensorsWriter.Tensor] = [
            (name: "layer.weight", dtype: .bf16, shape: [2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8]),
            (name: "layer.bias", dtype: .f32, shape: [2], data: SafetensorsFixture.bytes([Float(1), -2])),
            (name: "ids", dtype: .i64, shape: [1], data: SafetensorsFixture.bytes([Int64(-5)])),
            (name: "mask", dtype: .bool, shape: [3], data: [1, 0, 1]),
            (name: "scale", dtype: .f8E4M3, shape: [2], data: [0x38, 0xB8]),
            (name: "packed", dtype: .f4, shape: [4], data: [0x12, 0x34]),
            (name: "c", dtype: .c64, shape: [1], data: SafetensorsFixture.bytes([Float(1), 2])),
            (name: "d", dtype: .f64, shape: [], data: SafetensorsFixture.bytes([Double(0.5).bitPattern])),
            (name: "\u{E9}", dtype: .u8, shape: [0], data: []),
            (name: "u", dtype: .u16, shape: [1], data: SafetensorsFixture.bytes([UInt16(7)])),
        ]
        let referenceHex = [
            "70020000000000007b225f5f6d657461646174615f5f223a7b22666f726d6174223a227074227d2c22696473223a7b22",
            "6474797065223a22493634222c227368617065223a5b315d2c22646174615f6f666673657473223a5b302c385d7d2c22",
            "64223a7b226474797065223a22463634222c227368617065223a5b5d2c22646174615f6f666673657473223a5b382c31",
            "365d7d2c2263223a7b226474797065223a22433634222c227368617065223a5b315d2c22646174615f6f666673657473",
            "223a5b31362c32345d7d2c226c617965722e62696173223a7b226474797065223a22463332222c227368617065223a5b",
            "325d2c22646174615f6f666673657473223a5b32342c33325d7d2c226c617965722e776569676874223a7b2264747970",
            "65223a2242463136222c227368617065223a5b322c325d2c22646174615f6f666673657473223a5b33322c34305d7d2c",
            "2275223a7b226474797065223a22553136222c227368617065223a5b315d2c22646174615f6f666673657473223a5b34",
            "302c34325d7d2c227363616c65223a7b226474797065223a2246385f45344d33222c227368617065223a5b325d2c2264",
            "6174615f6f666673657473223a5b34322c34345d7d2c22c3a9223a7b226474797065223a225538222c22736861706522",
            "3a5b305d2c22646174615f6f666673657473223a5b34342c34345d7d2c227061636b6564223a7b226474797065223a22",
            "4634222c227368617065223a5b345d2c22646174615f6f666673657473223a5b34342c34365d7d2c226d61736b223a7b",
            "226474797065223a22424f4f4c222c227368617065223a5b335d2c22646174615f6f666673657473223a5b34362c3439",
            "5d7d7d2020202020fbffffffffffffff000000000000e03f0000803f000000400000803f000000c00102030405060708",
            "070038b81234010001",
        ].joined()
        let expected = stride(from: 0, to: referenceHex.utf8.count, by: 2).map { i -> UInt8 in
            let start = referenceHex.index(referenceHex.startIndex, offsetBy: i)
            return UInt8(referenceHex[start..<referenceHex.index(start, offsetBy: 2)], radix: 16)!
        }
        #expect(expected.count == 681)
        #expect([UInt8](try SafetensorsWriter.serialize(tensors, metadata: ["format": "pt"])) == expected)
        let file = try SafetensorsFile(bytes: expected)
        #expect(file.names == ["ids", "d", "c", "layer.bias", "layer.weight", "u", "scale", "\u{E9}", "packed", "mask"])
    }

    @Test func tensorsAreOrderedByDescendingAlignmentThenByName() throws {
        var tensors: [SafetensorsWriter.Tensor] = []
        for (i, dtype) in SafetensorsDType.allCases.enumerated() {
            let shape = dtype.bitWidth == 8 || dtype.bitWidth >= 16 ? [1] : [4]
            let bytes = shape[0] * dtype.bitWidth / 8
            // Names descend as the reference order ascends, so name order alone would reverse everything.
            tensors.append((name: "n\(99 - i)", dtype: dtype, shape: shape, data: [UInt8](repeating: UInt8(i), count: bytes)))
            tensors.append((name: "m\(99 - i)", dtype: dtype, shape: shape, data: [UInt8](repeating: UInt8(i), count: bytes)))
        }
        let file = try SafetensorsFile(bytes: [UInt8](SafetensorsWriter.serialize(tensors.reversed())))
        let expected = SafetensorsDType.allCases.enumerated().reversed().flatMap { i, _ in ["m\(99 - i)", "n\(99 - i)"] }
        #expect(file.names == expected)
        var position = 0
        for info in file.tensors {
            #expect(info.dataOffsets.lowerBound == position)
            position = info.dataOffsets.upperBound
        }
    }

    @Test func namesSortByUTF8BytesAndMetadataKeysAreSorted() throws {
        let data = try SafetensorsWriter.serialize([
            (name: "é", dtype: .u8, shape: [1], data: [1]),
            (name: "z", dtype: .u8, shape: [1], data: [2]),
            (name: "Z", dtype: .u8, shape: [1], data: [3]),
        ], metadata: ["b": "2", "a": "1\n\"q\""])
        let file = try SafetensorsFile(bytes: [UInt8](data))
        #expect(file.names == ["Z", "z", "é"])
        #expect(file.metadata == ["a": "1\n\"q\"", "b": "2"])
        let header = String(decoding: [UInt8](data)[8..<(8 + file.headerLength)], as: UTF8.self)
        #expect(header.hasPrefix(#"{"__metadata__":{"a":"1\n\"q\"","b":"2"},"Z":"#))
    }

    @Test func invalidTensorSetsAreRefusedWithTheTensorName() {
        let cases: [(SafetensorsWriter.Tensor, String)] = [
            ((name: "short", dtype: .f32, shape: [2], data: [0, 0, 0, 0]), "short"),
            ((name: "neg", dtype: .u8, shape: [-1], data: []), "neg"),
            ((name: "f4odd", dtype: .f4, shape: [3], data: [0, 0]), "f4odd"),
            ((name: "huge", dtype: .u8, shape: [1 << 40, 1 << 40], data: []), "huge"),
            ((name: "__metadata__", dtype: .u8, shape: [0], data: []), "__metadata__"),
        ]
        for (tensor, name) in cases {
            let error = #expect(throws: SafetensorsError.self) { try SafetensorsWriter.serialize([tensor]) }
            #expect(error?.tensor == name)
        }
        let duplicate = #expect(throws: SafetensorsError.self) {
            try SafetensorsWriter.serialize([(name: "d", dtype: .u8, shape: [1], data: [1]),
                                             (name: "d", dtype: .i8, shape: [1], data: [1])])
        }
        #expect(duplicate?.tensor == "d")
    }

    @Test func writeIsAtomicAndReplacesAnExistingFile() throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("model.safetensors")
            try SafetensorsFixture.write([1, 2, 3], to: url)
            try SafetensorsWriter.write(floats: [(name: "w", shape: [2, 2], values: [1, 2, 3, 4])], to: url)
            let file = try SafetensorsFile(path: url.path)
            #expect(try file.floats(named: "w") == [1, 2, 3, 4])
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            #expect(leftovers == ["model.safetensors"])
            // A refused write leaves the old file in place.
            #expect(throws: SafetensorsError.self) {
                try SafetensorsWriter.write([(name: "bad", dtype: .f32, shape: [3], data: [])], to: url)
            }
            #expect(try SafetensorsFile(path: url.path).names == ["w"])
        }
    }
}
