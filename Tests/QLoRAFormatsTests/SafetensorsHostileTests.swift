import Foundation
import QLoRAFormats
import Testing

/// Malformed and hostile safetensors files (spec §1.5, §5): each must throw a SafetensorsError naming the
/// file and, where one is involved, the tensor — never trap.
@Suite("Safetensors hostile files")
struct SafetensorsHostileTests {
    /// The error `bytes` are rejected with; records an issue when they are accepted.
    private func rejection(_ bytes: [UInt8], path: String = "hostile.safetensors",
                           sourceLocation: SourceLocation = #_sourceLocation) -> SafetensorsError? {
        let error = SafetensorsFixture.error(bytes, path: path)
        if error == nil { Issue.record("a hostile file was accepted", sourceLocation: sourceLocation) }
        return error
    }

    /// Asserts rejection with a kind matching `matches`, naming `tensor` (nil: no tensor named).
    private func expectRejected(_ bytes: [UInt8], tensor: String?, sourceLocation: SourceLocation = #_sourceLocation,
                                _ matches: (SafetensorsError.Kind) -> Bool) {
        guard let error = rejection(bytes, sourceLocation: sourceLocation) else { return }
        #expect(matches(error.kind), "unexpected kind: \(error)", sourceLocation: sourceLocation)
        #expect(error.tensor == tensor, "\(error)", sourceLocation: sourceLocation)
        #expect(error.path == "hostile.safetensors", sourceLocation: sourceLocation)
        #expect(error.description.hasPrefix("hostile.safetensors: "), sourceLocation: sourceLocation)
        if let tensor {
            #expect(error.description.contains("tensor '\(tensor)'"), sourceLocation: sourceLocation)
            #expect(error.offset != nil, "tensor errors carry the header offset", sourceLocation: sourceLocation)
        }
    }

    @Test func smallFixtureIsValid() throws {
        let file = try SafetensorsFile(bytes: try SafetensorsFixture.small())
        #expect(file.names == ["w", "h", "m"])
    }

    @Test func fileShorterThanEightBytesIsRejected() {
        for n in 0..<8 {
            expectRejected([UInt8](repeating: 0, count: n), tensor: nil) {
                if case .fileTooSmall(let size) = $0 { size == n } else { false }
            }
        }
    }

    @Test func headerLengthOverTheLimitIsRejected() {
        for n in [UInt64(100_000_001), 1 << 32, UInt64.max, UInt64.max - 7] {
            expectRejected(SafetensorsFixture.file(header: Array("{}".utf8), length: n), tensor: nil) {
                if case .headerTooLarge(let length, _) = $0 { length == n } else { false }
            }
        }
    }

    @Test func headerLengthPastEndOfFileIsRejected() {
        expectRejected(SafetensorsFixture.file(header: Array("{}      ".utf8), length: 9), tensor: nil) {
            if case .headerPastEnd(9, 16) = $0 { true } else { false }
        }
        expectRejected(SafetensorsFixture.file(header: [], length: 100_000_000), tensor: nil) {
            if case .headerPastEnd = $0 { true } else { false }
        }
    }

    @Test func nonUTF8HeaderIsRejected() {
        let header: [UInt8] = Array(#"{"t\#u{0}"#.utf8.dropLast()) + [0xFF] + Array(#"":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#.utf8)
        expectRejected(SafetensorsFixture.file(header: header), tensor: nil) {
            if case .headerNotUTF8(at: 3) = $0 { true } else { false }
        }
        // An overlong encoding and a lone surrogate are not UTF-8 either.
        for bad: [UInt8] in [[0xC0, 0xAF], [0xED, 0xA0, 0x80]] {
            expectRejected(SafetensorsFixture.file(header: Array("{\"".utf8) + bad + Array("\":1}".utf8)), tensor: nil) {
                if case .headerNotUTF8 = $0 { true } else { false }
            }
        }
    }

    @Test(arguments: ["[]", "\"x\"", " {}", "1", "null", "", "\u{FEFF}{}"])
    func headerThatIsNotAnObjectIsRejected(header: String) {
        expectRejected(SafetensorsFixture.file(header), tensor: nil) {
            if case .headerBadStart = $0 { true } else { false }
        }
    }

    @Test(arguments: ["{", "{\"a\":}", "{} x", "{\"a\":1,}", "{'a':1}", "{\"a\":1}\u{0}"])
    func headerThatIsNotJSONIsRejected(header: String) {
        expectRejected(SafetensorsFixture.file(header), tensor: nil) {
            if case .headerNotJSON = $0 { true } else { false }
        }
    }

    @Test func duplicateTensorNamesAreRejected() {
        let entry = #"{"dtype":"U8","shape":[1],"data_offsets":[0,1]}"#
        expectRejected(SafetensorsFixture.file("{\"dup\":\(entry),\"dup\":\(entry)}", data: [1]), tensor: "dup") {
            if case .headerNotJSON(let message) = $0 { message.contains("duplicate") } else { false }
        }
        // A duplicate inside an entry (the field "dtype" twice) is rejected too.
        expectRejected(SafetensorsFixture.file(#"{"t":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#, data: [1]),
                       tensor: "t") {
            if case .headerNotJSON = $0 { true } else { false }
        }
    }

    @Test func unknownDTypeIsRejected() {
        for dtype in ["F128", "f32", "", "FLOAT", "Q4_0"] {
            expectRejected(SafetensorsFixture.oneTensor("\"dtype\":\"\(dtype)\",\"shape\":[1],\"data_offsets\":[0,4]", dataSize: 4),
                           tensor: "t") {
                if case .unknownDType(let s) = $0 { s == dtype } else { false }
            }
        }
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":32,"shape":[1],"data_offsets":[0,4]"#, dataSize: 4), tensor: "t") {
            if case .badEntry = $0 { true } else { false }
        }
    }

    @Test(arguments: ["2.0", "2.5", "2e0", "2E0", "0.2e1", "1e400"])
    func floatDimensionsAreRejected(dim: String) {
        let bytes = SafetensorsFixture.oneTensor("\"dtype\":\"U8\",\"shape\":[\(dim)],\"data_offsets\":[0,2]", dataSize: 2)
        guard let error = rejection(bytes) else { return }
        if dim == "1e400" {
            // Beyond Double: the JSON parser itself refuses the number.
            #expect({ if case .headerNotJSON = error.kind { true } else { false } }())
            return
        }
        #expect(error.tensor == "t")
        #expect({ if case .notAnInteger(field: "shape", text: dim) = error.kind { true } else { false } }(), "\(error)")
        #expect(error.offset == 8 + 28)             // the number's position: {"t":{"dtype":"U8","shape":[ is 28 bytes
    }

    @Test func floatOffsetsAreRejected() {
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"U8","shape":[2],"data_offsets":[0.0,2]"#, dataSize: 2), tensor: "t") {
            if case .notAnInteger(field: "data_offsets", text: "0.0") = $0 { true } else { false }
        }
    }

    @Test(arguments: ["-1", "-0", "-9007199254740993"])
    func negativeDimensionsAreRejected(dim: String) {
        expectRejected(SafetensorsFixture.oneTensor("\"dtype\":\"U8\",\"shape\":[\(dim)],\"data_offsets\":[0,0]", dataSize: 0),
                       tensor: "t") {
            if case .notAnInteger(field: "shape", text: dim) = $0 { true } else { false }
        }
    }

    @Test func dimensionsBeyondTwoToThe53AreRejected() {
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"U8","shape":[0,9007199254740993],"data_offsets":[0,0]"#, dataSize: 0),
                       tensor: "t") {
            if case .badShape = $0 { true } else { false }
        }
    }

    @Test(arguments: [#"[0,1,2]"#, #"[0]"#, #"[]"#, #"[0,"1"]"#, #"{"0":1}"#, #"[null,1]"#, #"[[0],1]"#])
    func malformedOffsetsAreRejected(offsets: String) {
        expectRejected(SafetensorsFixture.oneTensor("\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":\(offsets)", dataSize: 1),
                       tensor: "t") {
            if case .badOffsets = $0 { true } else { false }
        }
    }

    @Test func offsetsWithEndBeforeBeginAreRejected() {
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"U8","shape":[0],"data_offsets":[4,0]"#, dataSize: 4), tensor: "t") {
            if case .badOffsets = $0 { true } else { false }
        }
    }

    @Test(arguments: [#"{"a":1}"#, #""pt""#, "null", #"["pt"]"#, #"{"a":{"b":"c"}}"#, #"{"a":null}"#])
    func metadataThatIsNotStringToStringIsRejected(metadata: String) {
        expectRejected(SafetensorsFixture.file("{\"__metadata__\":\(metadata)}"), tensor: nil) {
            if case .badMetadata = $0 { true } else { false }
        }
    }

    @Test(arguments: [
        #""dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":1"#,
        #""dtype":"U8","shape":[1]"#,
        #""shape":[1],"data_offsets":[0,1]"#,
    ])
    func entriesWithoutExactlyTheThreeFieldsAreRejected(entry: String) {
        expectRejected(SafetensorsFixture.oneTensor(entry, dataSize: 1), tensor: "t") {
            if case .badEntry = $0 { true } else { false }
        }
    }

    @Test func entriesThatAreNotObjectsOrShapesThatAreNotArraysAreRejected() {
        expectRejected(SafetensorsFixture.file(#"{"t":[1,2]}"#), tensor: "t") {
            if case .badEntry = $0 { true } else { false }
        }
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"U8","shape":1,"data_offsets":[0,1]"#, dataSize: 1), tensor: "t") {
            if case .badShape = $0 { true } else { false }
        }
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"U8","shape":["1"],"data_offsets":[0,1]"#, dataSize: 1), tensor: "t") {
            if case .badShape = $0 { true } else { false }
        }
    }

    @Test func overlappingOffsetsAreRejected() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        expectRejected(SafetensorsFixture.file(header, data: [UInt8](repeating: 0, count: 12)), tensor: "b") {
            if case .invalidOffset(begin: 4, end: 12, expectedBegin: 8, _) = $0 { true } else { false }
        }
        // The same range twice is an overlap as well.
        let twice = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        expectRejected(SafetensorsFixture.file(twice, data: [UInt8](repeating: 0, count: 8)), tensor: "b") {
            if case .invalidOffset = $0 { true } else { false }
        }
    }

    @Test func gapBetweenTensorsIsRejected() {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}"#
        expectRejected(SafetensorsFixture.file(header, data: [UInt8](repeating: 0, count: 20)), tensor: "b") {
            if case .invalidOffset(begin: 12, end: 20, expectedBegin: 8, _) = $0 { true } else { false }
        }
        // A first tensor that does not start at 0 leaves a gap at the front.
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"U8","shape":[1],"data_offsets":[1,2]"#, dataSize: 2), tensor: "t") {
            if case .invalidOffset(begin: 1, end: 2, expectedBegin: 0, _) = $0 { true } else { false }
        }
    }

    @Test func trailingBytesAfterTheLastTensorAreRejected() {
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"F32","shape":[2],"data_offsets":[0,8]"#, dataSize: 12), tensor: "t") {
            if case .incompleteBuffer(tensorsEnd: 8, dataSize: 12) = $0 { true } else { false }
        }
        expectRejected(SafetensorsFixture.file("{}", data: [0]), tensor: nil) {
            if case .incompleteBuffer(tensorsEnd: 0, dataSize: 1) = $0 { true } else { false }
        }
    }

    @Test func offsetsPastTheEndOfFileAreRejected() {
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"F32","shape":[2],"data_offsets":[0,8]"#, dataSize: 4), tensor: "t") {
            if case .incompleteBuffer(tensorsEnd: 8, dataSize: 4) = $0 { true } else { false }
        }
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"U8","shape":[0,9007199254740991],"data_offsets":[9007199254740991,9007199254740991]"#,
                                                    dataSize: 4), tensor: "t") {
            if case .invalidOffset = $0 { true } else { false }
        }
    }

    @Test func byteCountDisagreeingWithShapeAndDTypeIsRejected() {
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"F32","shape":[3],"data_offsets":[0,8]"#, dataSize: 8), tensor: "t") {
            if case .byteCountMismatch(begin: 0, end: 8, expected: 12, dtype: .f32, shape: [3]) = $0 { true } else { false }
        }
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"BF16","shape":[],"data_offsets":[0,4]"#, dataSize: 4), tensor: "t") {
            if case .byteCountMismatch = $0 { true } else { false }
        }
    }

    @Test func subByteTensorsThatAreNotWholeBytesAreRejected() {
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"F4","shape":[3],"data_offsets":[0,2]"#, dataSize: 2), tensor: "t") {
            if case .misalignedSlice(elements: 3, dtype: .f4) = $0 { true } else { false }
        }
        expectRejected(SafetensorsFixture.oneTensor(#""dtype":"F6_E2M3","shape":[2],"data_offsets":[0,2]"#, dataSize: 2), tensor: "t") {
            if case .misalignedSlice = $0 { true } else { false }
        }
    }

    @Test(arguments: ["[1099511627776,1099511627776]", "[4294967296,4294967296,0]", "[2147483648,2147483648]"])
    func elementCountOverflowIsRejected(shape: String) {
        expectRejected(SafetensorsFixture.oneTensor("\"dtype\":\"F64\",\"shape\":\(shape),\"data_offsets\":[0,0]", dataSize: 0),
                       tensor: "t") {
            if case .sizeOverflow = $0 { true } else { false }
        }
    }

    @Test func everyTruncatedPrefixOfAValidFileIsRejected() throws {
        let bytes = try SafetensorsFixture.small()
        var accepted: [Int] = []
        for n in 0..<bytes.count where SafetensorsFixture.error(Array(bytes[..<n])) == nil { accepted.append(n) }
        #expect(accepted.isEmpty, "prefixes accepted: \(accepted)")
        #expect(SafetensorsFixture.error(bytes) == nil)
    }

    @Test func randomByteCorruptionNeverTraps() throws {
        let bytes = try SafetensorsFixture.small()
        var rng = SafetensorsTestRandom(seed: 42)
        var rejected = 0
        for _ in 0..<3000 {
            var mutated = bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<mutated.count, using: &rng)
                mutated[i] = UInt8.random(in: 0...255, using: &rng)
            }
            if let error = SafetensorsFixture.error(mutated) {
                rejected += 1
                #expect(!error.description.isEmpty)
            } else {
                // Accepted: then it must still be fully consistent.
                let file = try SafetensorsFile(bytes: mutated)
                var end = 0
                for info in file.tensors { end = max(end, info.dataOffsets.upperBound) }
                #expect(file.dataOffset + end == mutated.count)
            }
        }
        #expect(rejected > 1000)
    }

    @Test func structuralCharactersInsertedIntoTheHeaderNeverTrap() throws {
        let bytes = try SafetensorsFixture.small()
        let n = Int(bytes[0]) | Int(bytes[1]) << 8
        var rng = SafetensorsTestRandom(seed: 3)
        let specials = Array("{}[]:,\"\\-.e0123456789 ".utf8)
        for _ in 0..<2000 {
            var mutated = bytes
            let i = Int.random(in: 8..<(8 + n), using: &rng)
            mutated[i] = specials.randomElement(using: &rng)!
            _ = SafetensorsFixture.error(mutated)
        }
    }

    @Test func missingFileAndDirectoryAreReportedWithThePath() throws {
        let error = #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: "/nonexistent/x.safetensors") }
        #expect(error?.path == "/nonexistent/x.safetensors")
        #expect({ if case .cannotOpen? = error?.kind { true } else { false } }())
        try SafetensorsFixture.withTemporaryDirectory { dir in
            let error = #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: dir.path) }
            #expect({ if case .cannotOpen? = error?.kind { true } else { false } }())
            let empty = dir.appendingPathComponent("empty.safetensors")
            try SafetensorsFixture.write([UInt8](), to: empty)
            let tooSmall = #expect(throws: SafetensorsError.self) { try SafetensorsFile(path: empty.path) }
            #expect({ if case .fileTooSmall(0)? = tooSmall?.kind { true } else { false } }())
        }
    }
}
