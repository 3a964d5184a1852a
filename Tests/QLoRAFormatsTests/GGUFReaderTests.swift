import Foundation
import QLoRAFormats
import Testing

@Suite("GGUF reader")
struct GGUFReaderTests {
    /// One value of every type, arrays of every element type (empty, nested and non-ASCII included).
    static let everyValue: [(String, GGUFValue)] = [
        ("t.uint8", .uint8(250)),
        ("t.int8", .int8(-7)),
        ("t.uint16", .uint16(65_000)),
        ("t.int16", .int16(-32_000)),
        ("t.uint32", .uint32(4_000_000_000)),
        ("t.int32", .int32(-2_000_000_000)),
        ("t.float32", .float32(0.1)),
        ("t.bool_true", .bool(true)),
        ("t.bool_false", .bool(false)),
        ("t.string", .string("héllo ▁wörld <|im_start|> 🙂")),
        ("t.empty_string", .string("")),
        ("t.uint64", .uint64(UInt64.max)),
        ("t.int64", .int64(Int64.min)),
        ("t.float64", .float64(-1e300)),
        ("a.uint8", .array(.uint8, [.uint8(0), .uint8(255)])),
        ("a.int8", .array(.int8, [.int8(-128), .int8(127)])),
        ("a.uint16", .array(.uint16, [.uint16(1), .uint16(65_535)])),
        ("a.int16", .array(.int16, [.int16(-1), .int16(2)])),
        ("a.uint32", .array(.uint32, [.uint32(7), .uint32(8), .uint32(9)])),
        ("a.int32", .array(.int32, [.int32(-3), .int32(1), .int32(6)])),
        ("a.float32", .array(.float32, [.float32(-0.5), .float32(.infinity), .float32(3.25)])),
        ("a.bool", .array(.bool, [.bool(false), .bool(true)])),
        ("a.string", .array(.string, [.string("Ġt"), .string(""), .string("日本")])),
        ("a.uint64", .array(.uint64, [.uint64(1 << 63)])),
        ("a.int64", .array(.int64, [.int64(-(1 << 62))])),
        ("a.float64", .array(.float64, [.float64(2.5), .float64(-0.0)])),
        ("a.empty", .array(.float32, [])),
        ("a.nested", .array(.array, [.array(.int32, [.int32(1)]), .array(.string, [.string("x")])])),
    ]

    @Test(arguments: [UInt32(2), 3])
    func roundTripsEveryValueTypeInOrder(version: UInt32) throws {
        let file = try GGUFFile(bytes: GGUFFixture.file(version: version, metadata: Self.everyValue))
        #expect(file.version == version)
        #expect(file.metadata.count == Self.everyValue.count)
        #expect(file.metadata.keys == Self.everyValue.map(\.0))
        for (key, value) in Self.everyValue {
            #expect(file.metadata[key] == value, "\(key)")
        }
        #expect(file.metadata["missing.key"] == nil)
        #expect(file.tensors.isEmpty)
        #expect(file.alignment == 32)
    }

    @Test func readsTensorInfosAndDataInGGMLOrder() throws {
        let tensors: [GGUFTestTensor] = [
            .patterned("token_embd.weight", dims: [64, 3], type: .q8_0),
            .patterned("blk.0.attn_norm.weight", dims: [7], type: .f32, seed: 2),
            .patterned("blk.0.attn_q.weight", dims: [32, 2, 1, 2], type: .q4_1, seed: 3),
            .patterned("blk.0.ffn_up.weight", dims: [256, 1], type: .q6_K, seed: 4),
            .patterned("x.bf16", dims: [3, 5], type: .bf16, seed: 5),
        ]
        let file = try GGUFFile(bytes: GGUFFixture.file(metadata: [("general.architecture", .string("llama"))],
                                                        tensors: tensors))
        #expect(file.tensors.map(\.name) == tensors.map(\.name))
        #expect(file.dataOffset % 32 == 0)
        for (info, expected) in zip(file.tensors, tensors) {
            #expect(info.dims == expected.dims.map { Int($0) })
            #expect(info.type.rawValue == expected.type)
            #expect(info.type.isKnown)
            #expect(info.byteCount == expected.data.count)
            #expect(info.offset % file.alignment == 0)
            #expect(Array(try file.tensorData(info)) == expected.data, "\(info.name)")
        }
        let embd = try #require(file.tensor(named: "token_embd.weight"))
        #expect(embd.type == .q8_0)
        #expect(embd.elementCount == 192)
        #expect(embd.byteCount == 6 * 34)
        #expect(file.tensor(named: "nope") == nil)
        #expect(try file.tensorData(named: "nope") == nil)
        #expect(try file.tensorData(named: "x.bf16")?.count == 30)
        let sum = try file.withTensorData(embd) { $0.reduce(0) { $0 + Int($1) } }
        #expect(sum == tensors[0].data.reduce(0) { $0 + Int($1) })
    }

    @Test func honoursCustomAlignment() throws {
        let tensors: [GGUFTestTensor] = [
            .patterned("a", dims: [3], type: .f32),
            .patterned("b", dims: [5], type: .f16, seed: 8),
        ]
        let bytes = GGUFFixture.file(metadata: [("general.alignment", .uint32(64))], tensors: tensors, alignment: 64)
        let file = try GGUFFile(bytes: bytes)
        #expect(file.alignment == 64)
        #expect(file.dataOffset % 64 == 0)
        #expect(file.tensors.map(\.offset) == [0, 64])
        #expect(Array(try file.tensorData(file.tensors[1])) == tensors[1].data)
    }

    @Test func listsUnknownTensorTypesButRefusesTheirData() throws {
        var odd = GGUFTestTensor.patterned("odd", dims: [4], type: .f32)
        odd.type = 99
        odd.data = []
        let file = try GGUFFile(bytes: GGUFFixture.file(tensors: [.patterned("a", dims: [8], type: .f32), odd]))
        let info = try #require(file.tensor(named: "odd"))
        #expect(info.type == .unknown(99))
        #expect(!info.type.isKnown)
        #expect(info.type.rawValue == 99)
        #expect(info.byteCount == 0)
        #expect(info.dims == [4])
        let error = try #require(throws: GGUFError.self) { try file.tensorData(info) }
        #expect(error.kind == .unknownTensorType(99))
        #expect(error.tensor == "odd")
    }

    @Test func tensorTypeIdsMatchGGML() {
        let expected: [(GGUFTensorType, UInt32, Int, Int)] = [
            (.f32, 0, 1, 4), (.f16, 1, 1, 2), (.q4_0, 2, 32, 18), (.q4_1, 3, 32, 20), (.q5_0, 6, 32, 22),
            (.q5_1, 7, 32, 24), (.q8_0, 8, 32, 34), (.q8_1, 9, 32, 36), (.q2_K, 10, 256, 84),
            (.q3_K, 11, 256, 110), (.q4_K, 12, 256, 144), (.q5_K, 13, 256, 176), (.q6_K, 14, 256, 210),
            (.q8_K, 15, 256, 292), (.i8, 24, 1, 1), (.i16, 25, 1, 2), (.i32, 26, 1, 4), (.i64, 27, 1, 8),
            (.f64, 28, 1, 8), (.bf16, 30, 1, 2),
        ]
        for (type, id, block, bytes) in expected {
            #expect(type.rawValue == id)
            #expect(GGUFTensorType(rawValue: id) == type)
            #expect(type.blockSize == block && type.bytesPerBlock == bytes, "\(type)")
        }
        for removed: UInt32 in [4, 5, 31, 32, 33, 36, 37, 38, 43, 1000] {
            #expect(!GGUFTensorType(rawValue: removed).isKnown)
        }
        #expect(GGUFTensorType.known.allSatisfy { GGUFTensorType(rawValue: $0.rawValue) == $0 })
        #expect(GGUFTensorType.q4_K.description == "Q4_K")
    }

    @Test func valueAccessorsConvertWhereMeaningful() {
        #expect(GGUFValue.uint32(576).int == 576)
        #expect(GGUFValue.int8(-3).int == -3)
        #expect(GGUFValue.uint64(UInt64.max).int == nil)
        #expect(GGUFValue.int64(-5).int == -5)
        #expect(GGUFValue.bool(true).int == nil)
        #expect(GGUFValue.float32(1).int == nil)
        #expect(GGUFValue.float32(1e-5).double == Double(Float(1e-5)))
        #expect(GGUFValue.uint32(100_000).double == 100_000)
        #expect(GGUFValue.string("x").double == nil)
        #expect(GGUFValue.string("gpt2").string == "gpt2")
        #expect(GGUFValue.int32(1).string == nil)
        #expect(GGUFValue.bool(false).bool == false)
        let strings = GGUFValue.array(.string, [.string("a"), .string("b c")])
        #expect(strings.stringArray == ["a", "b c"])
        #expect(strings.intArray == nil)
        #expect(strings.arrayElementType == .string)
        #expect(GGUFValue.array(.int32, [.int32(1), .int32(6)]).intArray == [1, 6])
        #expect(GGUFValue.array(.uint64, [.uint64(UInt64.max)]).intArray == nil)
        #expect(GGUFValue.array(.float32, [.float32(-1.5)]).floatArray == [-1.5])
        #expect(GGUFValue.array(.float64, [.float64(0.25)]).floatArray == [0.25])
        #expect(GGUFValue.array(.int32, []).floatArray == nil)
        #expect(GGUFValue.array(.string, []).stringArray == [])
        #expect(GGUFValue.uint8(1).array == nil)
        #expect(GGUFValue.array(.bool, [.bool(true)]).type == .array)
    }

    @Test func mapsFilesFromDiskLikeInMemoryBytes() throws {
        let bytes = GGUFFixture.small()
        try GGUFFixture.withTemporaryDirectory { dir in
            let path = dir + "/small.gguf"
            try GGUFFixture.writeFile(path, bytes)
            let mapped = try GGUFFile(path: path)
            let memory = try GGUFFile(bytes: bytes)
            #expect(mapped.path == path)
            #expect(mapped.fileSize == bytes.count)
            #expect(mapped.metadata == memory.metadata)
            #expect(mapped.tensors == memory.tensors)
            #expect(mapped.dataOffset == memory.dataOffset)
            for info in mapped.tensors {
                #expect(Array(try mapped.tensorData(info)) == Array(try memory.tensorData(info)))
            }
        }
    }

    @Test func openFailuresNameThePath() throws {
        let missing = "/nonexistent-dir/model.gguf"
        let error = try #require(throws: GGUFError.self) { try GGUFFile(path: missing) }
        #expect(error.kind == .cannotOpen(reason: "No such file or directory"))
        #expect(error.description == "/nonexistent-dir/model.gguf: cannot open: No such file or directory")
        try GGUFFixture.withTemporaryDirectory { dir in
            let dirError = try #require(throws: GGUFError.self) { try GGUFFile(path: dir) }
            #expect(dirError.kind == .cannotOpen(reason: "not a regular file (a directory)"))
            let empty = dir + "/empty.gguf"
            try GGUFFixture.writeFile(empty, [])
            let emptyError = try #require(throws: GGUFError.self) { try GGUFFile(path: empty) }
            #expect(emptyError.kind == .truncated(needed: 4, available: 0))
            #expect(emptyError.path == empty)
        }
    }

    @Test func tensorDataRejectsInfosOutsideTheFile() throws {
        let file = try GGUFFile(bytes: GGUFFixture.small())
        let real = file.tensors[0]
        let forged = GGUFTensorInfo(name: "forged", dims: real.dims, type: real.type, offset: file.fileSize,
                                    byteCount: real.byteCount, elementCount: real.elementCount, infoOffset: 0)
        let error = try #require(throws: GGUFError.self) { try file.tensorData(forged) }
        #expect(error.tensor == "forged")
        if case .dataOutOfRange = error.kind {} else { Issue.record("unexpected \(error)") }
        let huge = GGUFTensorInfo(name: "huge", dims: [1], type: .f32, offset: Int.max - 2, byteCount: 4,
                                  elementCount: 1, infoOffset: 0)
        #expect(throws: GGUFError.self) { try file.tensorData(huge) }
    }
}
