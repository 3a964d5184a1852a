import Foundation
import QLoRAFormats
import Testing

@Suite("GGUF writer")
struct GGUFWriterTests {
    /// Every flat value type (ggml reads no nested arrays, so the writer refuses them).
    static var flatValues: [GGUFMetadata.Entry] {
        GGUFReaderTests.everyValue.filter { $0.1.arrayElementType != .array }.map { GGUFMetadata.Entry(key: $0.0, value: $0.1) }
    }

    static let tensors: [GGUFWriter.Tensor] = [
        GGUFWriter.Tensor(name: "token_embd.weight", dims: [32, 3], type: .q8_0,
                          data: (0..<(3 * 34)).map { UInt8(truncatingIfNeeded: $0 &* 7) }),
        GGUFWriter.Tensor(name: "output_norm.weight", dims: [5], type: .f32, data: (0..<20).map { UInt8($0) }),
        GGUFWriter.Tensor(name: "blk.0.attn_q.weight", dims: [32, 2], type: .q4_1, data: (0..<40).map { UInt8($0 ^ 0x5A) }),
    ]

    @Test func roundTripsThroughTheReader() throws {
        let bytes = try GGUFWriter.serialize(metadata: Self.flatValues, tensors: Self.tensors)
        let file = try GGUFFile(bytes: bytes)
        #expect(file.version == 3)
        #expect(file.metadata.entries == Self.flatValues)
        #expect(file.tensors.map(\.name) == Self.tensors.map(\.name))
        for t in Self.tensors {
            let info = try #require(file.tensor(named: t.name))
            #expect(info.dims == t.dims)
            #expect(info.type == t.type)
            #expect(info.offset % 32 == 0)
            #expect(Array(try file.tensorData(info)) == t.data)
        }
    }

    /// Byte for byte what the test-support builder (the gguf-py/ggml layout: every tensor padded) produces.
    @Test func matchesTheGGMLLayoutByteForByte() throws {
        let ours = try GGUFWriter.serialize(metadata: Self.flatValues, tensors: Self.tensors)
        let reference = GGUFFixture.file(metadata: Self.flatValues.map { ($0.key, $0.value) },
                                         tensors: Self.tensors.map { GGUFTestTensor(name: $0.name, dims: $0.dims.map(UInt64.init),
                                                                                     type: $0.type.rawValue, data: $0.data) },
                                         padLastTensor: true)
        #expect(ours == reference)
    }

    @Test func honoursGeneralAlignment() throws {
        let meta = [GGUFMetadata.Entry(key: "general.alignment", value: .uint32(64))]
        let file = try GGUFFile(bytes: try GGUFWriter.serialize(metadata: meta, tensors: Self.tensors))
        #expect(file.alignment == 64)
        #expect(file.dataOffset % 64 == 0)
        #expect(file.tensors.allSatisfy { $0.offset % 64 == 0 })
        #expect(Array(try file.tensorData(file.tensors[2])) == Self.tensors[2].data)
    }

    @Test func floatTensorsReverseTheHFShapeAndEncodeEachType() throws {
        let values: [Float] = [1, -2.5, 0.1, 3, 65504, -0.0]
        let tensors = try [GGUFTensorType.f32, .f16, .bf16].map {
            try GGUFWriter.Tensor(name: "w.\($0)", hfShape: [2, 3], values: values, type: $0)
        }
        let file = try GGUFFile(bytes: try GGUFWriter.serialize(metadata: [], tensors: tensors))
        for t in file.tensors {
            #expect(t.dims == [3, 2])
            let back = try file.floats(t)
            for (a, b) in zip(back, values) { #expect(abs(a - b) <= abs(b) * (t.type == .bf16 ? 1.0 / 256 : 1.0 / 2048)) }
        }
        #expect(try file.floats(file.tensors[0]) == values)
    }

    @Test func writesAtomically() throws {
        try GGUFFixture.withTemporaryDirectory { dir in
            let url = URL(fileURLWithPath: dir).appendingPathComponent("a.gguf")
            try GGUFWriter.write(metadata: Self.flatValues, tensors: Self.tensors, to: url)
            #expect(try GGUFFile(path: url.path).tensors.count == 3)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["a.gguf"])
        }
    }

    @Test func refusesWhatGGMLWouldReject() {
        func refuses(_ fragment: String, meta: [GGUFMetadata.Entry] = [], tensors: [GGUFWriter.Tensor] = []) {
            #expect {
                _ = try GGUFWriter.serialize(metadata: meta, tensors: tensors)
            } throws: { ($0 as? GGUFWriteError)?.reason.contains(fragment) == true }
        }
        let ok = Self.tensors[1]
        refuses("duplicate metadata key", meta: [.init(key: "a", value: .uint8(1)), .init(key: "a", value: .uint8(2))])
        refuses("keys must be", meta: [.init(key: "", value: .uint8(1))])
        refuses("general.alignment", meta: [.init(key: "general.alignment", value: .uint64(32))])
        refuses("general.alignment", meta: [.init(key: "general.alignment", value: .uint32(24))])
        refuses("nested", meta: [.init(key: "n", value: .array(.array, []))])
        refuses("holds a INT32", meta: [.init(key: "m", value: .array(.uint32, [.int32(1)]))])
        refuses("duplicate tensor name", tensors: [ok, ok])
        refuses("1...63 bytes", tensors: [GGUFWriter.Tensor(name: String(repeating: "x", count: 64), dims: [5], type: .f32, data: ok.data)])
        refuses("1 to 4 dims", tensors: [GGUFWriter.Tensor(name: "t", dims: [5, 1, 1, 1, 1], type: .f32, data: ok.data)])
        refuses("needs 16", tensors: [GGUFWriter.Tensor(name: "t", dims: [4], type: .f32, data: ok.data)])
        refuses("block size 32", tensors: [GGUFWriter.Tensor(name: "t", dims: [16], type: .q8_0, data: [])])
        #expect(throws: GGUFWriteError.self) { try GGUFWriter.Tensor(name: "q", hfShape: [2], values: [1, 2], type: .q8_0) }
        #expect(throws: GGUFWriteError.self) { try GGUFWriter.Tensor(name: "q", hfShape: [3], values: [1, 2], type: .f32) }
    }
}
