import QLoRAFormats
import Testing

/// Malformed and hostile GGUF files: each must throw a GGUFError naming the key or tensor, never trap.
@Suite("GGUF hostile files")
struct GGUFHostileTests {
    /// Bytes of a header (magic, version, counts) followed by `body`.
    private func header(version: UInt32 = 3, tensors: UInt64 = 0, kvs: UInt64, _ body: (inout GGUFBytes) -> Void) -> [UInt8] {
        var w = GGUFBytes()
        w.bytes += Array("GGUF".utf8)
        w.u32(version)
        w.u64(tensors)
        w.u64(kvs)
        body(&w)
        return w.bytes
    }

    private func expectError(_ bytes: [UInt8], limits: GGUFLimits = GGUFLimits(),
                             sourceLocation: SourceLocation = #_sourceLocation) -> GGUFError? {
        let error = GGUFFixture.error(bytes, limits: limits)
        if error == nil { Issue.record("a hostile file was accepted", sourceLocation: sourceLocation) }
        return error
    }

    @Test func smallFixtureIsValid() throws {
        let file = try GGUFFile(bytes: GGUFFixture.small())
        #expect(file.tensors.count == 4)
        #expect(file.metadata.count == 6)
        let last = try #require(file.tensors.last)
        #expect(file.dataOffset + last.offset + last.byteCount == file.fileSize)
    }

    @Test(arguments: [UInt32(2), 3])
    func everyTruncatedPrefixThrows(version: UInt32) {
        let bytes = GGUFFixture.small(version: version)
        for n in 0..<bytes.count {
            if GGUFFixture.error(Array(bytes[..<n])) == nil {
                Issue.record("prefix of \(n) of \(bytes.count) bytes was accepted")
            }
        }
    }

    @Test func randomByteCorruptionNeverTraps() {
        let bytes = GGUFFixture.small()
        var rng = GGUFTestRandom(seed: 42)
        var rejected = 0
        for _ in 0..<3000 {
            var mutated = bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<mutated.count, using: &rng)
                mutated[i] = [0x00, 0xFF, 0x7F, 0x80, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            }
            if GGUFFixture.error(mutated) != nil { rejected += 1 }
        }
        #expect(rejected > 0)
    }

    @Test func wrongMagicIsReported() throws {
        var bytes = GGUFFixture.small()
        bytes[0] = 0x67
        let error = try #require(expectError(bytes))
        #expect(error.kind == .badMagic([0x67, 0x47, 0x55, 0x46]))
        #expect(error.offset == 0)
        #expect(error.path == "hostile.gguf")
        #expect(error.description.hasPrefix("hostile.gguf: byte 0: not a GGUF file"))
    }

    @Test(arguments: [UInt32(0x0300_0000), 1, 4, 0xFFFF_FFFF])
    func unsupportedVersionsAreRejected(version: UInt32) throws {
        let error = try #require(expectError(GGUFFixture.small(version: version)))
        if version & 0xFFFF == 0 {
            #expect(error.kind == .byteSwapped(version: version))
        } else {
            #expect(error.kind == .unsupportedVersion(version))
        }
        #expect(error.offset == 4)
    }

    @Test(arguments: [UInt64.max, 1 << 63, 1 << 40, 1000])
    func hugeMetadataCountIsRejectedBeforeAllocating(count: UInt64) throws {
        let bytes = GGUFFixture.file(metadata: [("general.name", .string("x"))], kvCount: count)
        let error = try #require(expectError(bytes))
        guard case .implausibleCount(let what, let got, _) = error.kind else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(what == "metadata count" && got == count)
        #expect(error.offset == 16)
    }

    @Test(arguments: [UInt64.max, 1 << 62, 100])
    func hugeTensorCountIsRejectedBeforeAllocating(count: UInt64) throws {
        let bytes = GGUFFixture.file(tensors: [.patterned("a", dims: [4], type: .f32)], tensorCount: count)
        let error = try #require(expectError(bytes))
        guard case .implausibleCount("tensor count", count, _) = error.kind else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(error.offset == 8)
    }

    @Test(arguments: [GGUFValueType.string, .uint8, .array, .float64])
    func hugeArrayLengthNamesTheKey(elementType: GGUFValueType) throws {
        let bytes = header(kvs: 2) { w in
            w.kv("general.name", .string("ok"))
            w.string("tokenizer.ggml.tokens")
            w.u32(GGUFValueType.array.rawValue)
            w.u32(elementType.rawValue)
            w.u64(1 << 40)
            w.bytes += [UInt8](repeating: 0, count: 64)
        }
        let error = try #require(expectError(bytes))
        #expect(error.key == "tokenizer.ggml.tokens")
        guard case .implausibleCount("array length", 1 << 40, _) = error.kind else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(error.description.contains("key 'tokenizer.ggml.tokens'"))
    }

    @Test func totalArrayElementsAreCapped() throws {
        var limits = GGUFLimits()
        limits.maxTotalArrayElements = 10
        let bytes = GGUFFixture.file(metadata: [
            ("a.first", .array(.uint8, Array(repeating: .uint8(1), count: 6))),
            ("a.second", .array(.uint8, Array(repeating: .uint8(2), count: 5))),
        ])
        let error = try #require(expectError(bytes, limits: limits))
        #expect(error.key == "a.second")
        #expect(error.kind == .allocationLimit(elements: 11, limit: 10))
        #expect(throws: Never.self) { try GGUFFile(bytes: bytes) }
    }

    @Test(arguments: [UInt64.max, 1 << 62, 4])
    func stringLengthBeyondTheFileNamesTheKey(length: UInt64) throws {
        let bytes = header(kvs: 1) { w in
            w.string("general.name")
            w.u32(GGUFValueType.string.rawValue)
            w.u64(length)
            w.bytes += [0x41, 0x42]
        }
        let error = try #require(expectError(bytes))
        #expect(error.key == "general.name")
        guard case .truncated(_, 2) = error.kind else {
            Issue.record("unexpected \(error)")
            return
        }
        #expect(error.offset == 24 + 8 + 12 + 4)
    }

    @Test func stringOverTheCapIsRejected() throws {
        var limits = GGUFLimits()
        limits.maxStringLength = 8
        let bytes = GGUFFixture.file(metadata: [("general.name", .string("a string of 23 bytes..."))])
        let error = try #require(expectError(bytes, limits: limits))
        #expect(error.key == "general.name")
        #expect(error.kind == .stringTooLong(length: 23, limit: 8))
    }

    @Test func hugeKeyLengthIsRejected() throws {
        let bytes = header(kvs: 1) { w in
            w.u64(UInt64.max)
            w.bytes += Array("general.name".utf8)
        }
        let error = try #require(expectError(bytes))
        #expect(error.offset == 24)
        if case .truncated = error.kind {} else { Issue.record("unexpected \(error)") }
    }

    @Test func emptyAndOverlongKeysAreRejected() throws {
        let empty = try #require(expectError(header(kvs: 1) { w in w.kv("", .uint32(1)) }))
        #expect(empty.kind == .emptyKey)
        var limits = GGUFLimits()
        limits.maxKeyLength = 4
        let long = try #require(expectError(GGUFFixture.file(metadata: [("general.name", .uint8(1))]), limits: limits))
        #expect(long.kind == .stringTooLong(length: 12, limit: 4))
    }

    @Test func invalidUTF8InAStringValueNamesTheKey() throws {
        let bytes = header(kvs: 2) { w in
            w.kv("general.architecture", .string("llama"))
            w.string("tokenizer.ggml.tokens")
            w.u32(GGUFValueType.array.rawValue)
            w.u32(GGUFValueType.string.rawValue)
            w.u64(2)
            w.string("ok")
            w.string([0x61, 0xC0, 0x80])   // overlong NUL
        }
        let error = try #require(expectError(bytes))
        #expect(error.key == "tokenizer.ggml.tokens")
        #expect(error.kind == .invalidUTF8(at: 1))
        #expect(error.offset == bytes.count - 2)
    }

    @Test func invalidUTF8InAKeyIsReportedWithALenientSpelling() throws {
        let bytes = header(kvs: 1) { w in
            w.string([0x67, 0x65, 0x6E, 0xFF])
            w.u32(GGUFValueType.uint8.rawValue)
            w.u8(1)
        }
        let error = try #require(expectError(bytes))
        #expect(error.kind == .invalidUTF8(at: 3))
        #expect(error.key == "gen\u{FFFD}")
    }

    @Test func duplicateKeysAreRejected() throws {
        let bytes = GGUFFixture.file(metadata: [
            ("general.name", .string("a")), ("general.architecture", .string("llama")), ("general.name", .string("b")),
        ])
        let error = try #require(expectError(bytes))
        #expect(error.kind == .duplicateKey)
        #expect(error.key == "general.name")
        #expect(error.offset == 24 + (8 + 12 + 4 + 8 + 1) + (8 + 20 + 4 + 8 + 5))
    }

    @Test(arguments: [UInt32(13), 0xFFFF_FFFF])
    func unknownValueTypesAreRejected(type: UInt32) throws {
        let scalar = try #require(expectError(header(kvs: 1) { w in
            w.string("general.weird")
            w.u32(type)
            w.u64(0)
        }))
        #expect(scalar.kind == .unknownValueType(type))
        #expect(scalar.key == "general.weird")
        #expect(scalar.offset == 24 + 8 + 13)
        let element = try #require(expectError(header(kvs: 1) { w in
            w.string("general.weird_array")
            w.u32(GGUFValueType.array.rawValue)
            w.u32(type)
            w.u64(0)
        }))
        #expect(element.kind == .unknownValueType(type))
        #expect(element.key == "general.weird_array")
    }

    @Test func nestedArraysDeeperThanTheLimitAreRejected() throws {
        var deep = GGUFValue.array(.uint8, [.uint8(1)])
        for _ in 0..<3 { deep = .array(.array, [deep]) }   // four levels
        let bytes = GGUFFixture.file(metadata: [("test.deep", deep)])
        let error = try #require(expectError(bytes))
        #expect(error.key == "test.deep")
        #expect(error.kind == .arrayNestingTooDeep(limit: 3))

        var flatOnly = GGUFLimits()
        flatOnly.maxArrayDepth = 1
        let nested = GGUFFixture.file(metadata: [("test.nested", .array(.array, [.array(.int8, [])]))])
        #expect(expectError(nested, limits: flatOnly)?.kind == .arrayNestingTooDeep(limit: 1))
        #expect(throws: Never.self) { try GGUFFile(bytes: nested) }
    }

    @Test func boolBytesOtherThanZeroOrOneAreRejected() throws {
        var bytes = GGUFFixture.file(metadata: [("test.flag", .bool(true))])
        bytes[bytes.count - 1] = 2
        let error = try #require(expectError(bytes))
        #expect(error.kind == .invalidBool(2))
        #expect(error.key == "test.flag")
        var array = GGUFFixture.file(metadata: [("test.flags", .array(.bool, [.bool(false), .bool(true)]))])
        array[array.count - 1] = 0xFF
        #expect(expectError(array)?.kind == .invalidBool(0xFF))
    }

    static let badAlignments: [(GGUFValue, String)] = [
        (.uint32(0), "0 is not a nonzero power of two"),
        (.uint32(48), "48 is not a nonzero power of two"),
        (.uint64(32), "type UINT64, expected UINT32"),
        (.string("32"), "type STRING, expected UINT32"),
    ]

    @Test(arguments: badAlignments)
    func badAlignmentIsRejected(value: GGUFValue, reason: String) throws {
        let bytes = GGUFFixture.file(metadata: [("general.alignment", value)], tensors: [.patterned("a", dims: [4], type: .f32)])
        let error = try #require(expectError(bytes))
        #expect(error.key == "general.alignment")
        #expect(error.kind == .badAlignment(reason))
    }

    @Test func duplicateTensorNamesAreRejected() throws {
        let bytes = GGUFFixture.file(tensors: [
            .patterned("blk.0.attn_q.weight", dims: [4], type: .f32),
            .patterned("blk.0.attn_q.weight", dims: [4], type: .f32),
        ])
        let error = try #require(expectError(bytes))
        #expect(error.kind == .duplicateTensorName)
        #expect(error.tensor == "blk.0.attn_q.weight")
        #expect(error.offset == 24 + (8 + 19 + 4 + 8 + 4 + 8))
    }

    @Test func badTensorNamesAreRejected() throws {
        let empty = try #require(expectError(GGUFFixture.file(tensors: [.patterned("", dims: [4], type: .f32)])))
        #expect(empty.kind == .invalidTensorName("empty"))
        let longName = String(repeating: "x", count: 64)
        let long = try #require(expectError(GGUFFixture.file(tensors: [.patterned(longName, dims: [4], type: .f32)])))
        #expect(long.tensor == longName)
        #expect(long.kind == .invalidTensorName("64 bytes long, at most 63 allowed"))
        let hugeName = String(repeating: "y", count: 5000)
        let huge = try #require(expectError(GGUFFixture.file(tensors: [.patterned(hugeName, dims: [4], type: .f32)])))
        #expect(huge.tensor == String(repeating: "y", count: 64) + "…")
        var w = GGUFBytes()
        w.string([0x62, 0x6C, 0x6B, 0xED, 0xA0, 0x80])   // an encoded surrogate
        let bad = try #require(expectError(header(tensors: 1, kvs: 0) { h in
            h.bytes += w.bytes
            h.u32(1); h.u64(4); h.u32(0); h.u64(0)
            h.pad(to: 32)
            h.bytes += [UInt8](repeating: 0, count: 16)
        }))
        #expect(bad.kind == .invalidUTF8(at: 3))
        #expect(bad.tensor?.hasPrefix("blk") == true)
    }

    @Test(arguments: [[UInt64](), [1, 1, 1, 1, 1]])
    func dimensionCountsOutsideOneToFourAreRejected(dims: [UInt64]) throws {
        let tensor = GGUFTestTensor(name: "weird.weight", dims: dims, type: 0, data: [0, 0, 0, 0])
        let error = try #require(expectError(GGUFFixture.file(tensors: [tensor])))
        #expect(error.kind == .badDimensionCount(UInt32(dims.count)))
        #expect(error.tensor == "weird.weight")
    }

    static let absurdDims: [([UInt64], GGUFError.Kind)] = [
        ([0, 4], .badDimension(index: 0, value: 0)),
        ([4, UInt64.max], .badDimension(index: 1, value: UInt64.max)),
        ([4, 1 << 63], .badDimension(index: 1, value: 1 << 63)),
        ([1 << 32, 1 << 32], .sizeOverflow),
        ([1 << 20, 1 << 20, 1 << 20, 1 << 20], .sizeOverflow),
    ]

    @Test(arguments: absurdDims)
    func absurdDimensionsAreRejected(dims: [UInt64], kind: GGUFError.Kind) throws {
        let tensor = GGUFTestTensor(name: "absurd.weight", dims: dims, type: 0, data: [0, 0, 0, 0])
        let error = try #require(expectError(GGUFFixture.file(tensors: [tensor])))
        #expect(error.kind == kind)
        #expect(error.tensor == "absurd.weight")
    }

    @Test func byteCountOverflowIsRejected() throws {
        // 2^61 F64 elements fit in Int64, their 2^64 bytes do not.
        let tensor = GGUFTestTensor(name: "big.f64", dims: [1 << 61], type: GGUFTensorType.f64.rawValue, data: [])
        let error = try #require(expectError(GGUFFixture.file(tensors: [tensor])))
        #expect(error.kind == .sizeOverflow)
        #expect(error.tensor == "big.f64")
    }

    @Test func rowsThatAreNotWholeBlocksAreRejected() throws {
        let tensor = GGUFTestTensor(name: "blk.0.ffn_up.weight", dims: [33, 2], type: GGUFTensorType.q8_0.rawValue,
                                    data: [UInt8](repeating: 0, count: 68))
        let error = try #require(expectError(GGUFFixture.file(tensors: [tensor])))
        #expect(error.kind == .rowNotBlockMultiple(ne0: 33, blockSize: 32, type: "Q8_0"))
        #expect(error.tensor == "blk.0.ffn_up.weight")
    }

    @Test func overlappingTensorsAreRejected() throws {
        var second = GGUFTestTensor.patterned("blk.0.attn_k.weight", dims: [16], type: .f32)
        second.offset = 32   // the first tensor's 64 bytes occupy [0, 64)
        let bytes = GGUFFixture.file(tensors: [.patterned("blk.0.attn_q.weight", dims: [16], type: .f32), second],
                                     padLastTensor: true)
        let error = try #require(expectError(bytes))
        #expect(error.kind == .overlappingTensors(other: "blk.0.attn_q.weight"))
        #expect(error.tensor == "blk.0.attn_k.weight")
        #expect(error.description.contains("tensor 'blk.0.attn_k.weight': data overlaps tensor 'blk.0.attn_q.weight'"))

        var same = GGUFTestTensor.patterned("b", dims: [4], type: .f32)
        same.offset = 0
        let identical = GGUFFixture.file(tensors: [.patterned("a", dims: [4], type: .f32), same])
        #expect(expectError(identical)?.kind == .overlappingTensors(other: "a"))
    }

    @Test(arguments: [UInt64(1 << 40), 1 << 63, UInt64.max & ~31, 64])
    func outOfRangeOffsetsAreRejected(offset: UInt64) throws {
        var tensor = GGUFTestTensor.patterned("output_norm.weight", dims: [8], type: .f32)
        tensor.offset = offset
        let bytes = GGUFFixture.file(tensors: [.patterned("token_embd.weight", dims: [8], type: .f32), tensor])
        let error = try #require(expectError(bytes))
        #expect(error.tensor == "output_norm.weight")
        if case .dataOutOfRange = error.kind {} else { Issue.record("unexpected \(error)") }
    }

    @Test func dataEndingPastTheFileIsRejected() throws {
        var bytes = GGUFFixture.file(tensors: [.patterned("a", dims: [8], type: .f32), .patterned("b", dims: [8], type: .f32)])
        bytes.removeLast()
        let error = try #require(expectError(bytes))
        #expect(error.tensor == "b")
        #expect(error.kind == .dataOutOfRange(start: UInt64(bytes.count + 1 - 32), end: UInt64(bytes.count + 1),
                                               fileSize: bytes.count))
    }

    @Test func misalignedOffsetsAreRejected() throws {
        var tensor = GGUFTestTensor.patterned("b", dims: [4], type: .f32)
        tensor.offset = 48
        let bytes = GGUFFixture.file(tensors: [.patterned("a", dims: [4], type: .f32), tensor], padLastTensor: true)
        let error = try #require(expectError(bytes))
        #expect(error.kind == .misalignedOffset(offset: 48, alignment: 32))
        #expect(error.tensor == "b")
    }
}
