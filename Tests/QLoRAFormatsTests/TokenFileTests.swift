import Foundation
import Testing
import QLoRAFormats

@Suite struct TokenFileTests {
    @Test func roundTripsSequencesLabelsAndDocuments() throws {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tf-\(UUID().uuidString).tokens")
        defer { try? FileManager.default.removeItem(at: url) }
        let sequences = [
            TokenFile.Sequence(ids: [1, 2, 3, 4, 5], labels: [false, false, true, true, true], documentStarts: [0, 3]),
            TokenFile.Sequence(ids: [49151], labels: [true], documentStarts: [0]),
            TokenFile.Sequence(ids: [7, 8], labels: [false, true], documentStarts: [0]),
        ]
        try TokenFile.write(sequences, packed: true, vocabularySize: 49152, to: url)
        let reader = try TokenFile.Reader(path: url.path)
        #expect(reader.sequenceCount == 3)
        #expect(reader.tokenCount == 8)
        #expect(reader.documentCount == 4)
        #expect(reader.packed)
        #expect(reader.vocabularySize == 49152)
        #expect((0..<3).map(reader.sequence) == sequences)
        let header = try Data(contentsOf: url).prefix(8)
        #expect(String(decoding: header, as: UTF8.self) == "QLTOKENS")
    }

    @Test func rejectsCorruptFiles() throws {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tf-\(UUID().uuidString).tokens")
        defer { try? FileManager.default.removeItem(at: url) }
        try TokenFile.write([TokenFile.Sequence(ids: [1, 2], labels: [true, true])], packed: false, vocabularySize: 10, to: url)
        var data = try Data(contentsOf: url)
        data[24] = 0xFF   // token count far beyond the file
        try data.write(to: url)
        #expect(throws: FileError.self) { try TokenFile.Reader(path: url.path) }
        // Counts and offsets past Int.max (found by the token-file fuzz target: the conversion trapped).
        for field in [16, 24, 32, 40, 56] {
            var bad = data
            bad[24] = 2
            bad[field + 7] = 0x80
            try bad.write(to: url)
            #expect(throws: FileError.self, "header field at \(field)") { try TokenFile.Reader(path: url.path) }
        }
        try Data("not a token file at all, but long enough to have a header........................................................................".utf8).write(to: url)
        #expect(throws: FileError.self) { try TokenFile.Reader(path: url.path) }
    }

    /// Altered offsets or ids used to pass the header check and trap later (a reversed range in `sequence(_:)`, an
    /// embedding row past the vocabulary in training): now each is an error naming what is wrong, at open.
    @Test func rejectsAlteredOffsetsAndIds() throws {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tf-\(UUID().uuidString).tokens")
        defer { try? FileManager.default.removeItem(at: url) }
        let sequences = [TokenFile.Sequence(ids: [1, 2, 3], labels: [true, true, true]), TokenFile.Sequence(ids: [4, 5], labels: [true, false])]
        try TokenFile.write(sequences, packed: false, vocabularySize: 10, to: url)
        let original = try Data(contentsOf: url)
        func u64(_ d: Data, _ o: Int) -> Int { (0..<8).reduce(0) { $0 | Int(d[o + $1]) << (8 * $1) } }
        let ids = u64(original, 40), seqs = u64(original, 56), docs = u64(original, 64)
        let cases: [(String, (inout Data) -> Void)] = [
            ("sequence 2 starts before sequence 1", { $0[seqs + 8] = 4; $0[seqs + 16] = 3 }),
            ("past the 5 tokens", { $0[seqs + 8] = 9 }),
            ("not 0", { $0[docs] = 1 }),
            ("not below the vocabulary size 10", { $0[ids + 4] = 10 }),
        ]
        for (expected, alter) in cases {
            var data = original
            alter(&data)
            try data.write(to: url)
            do {
                _ = try TokenFile.Reader(path: url.path)
                Issue.record("accepted a file whose \(expected)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
    }
    /// A file refused at open used to be unmapped twice: once before the throw and again by `deinit`, which Swift
    /// runs for a class whose stored properties were all set. The second munmap removed whatever another thread had
    /// mapped at that address meanwhile, and its next read faulted (CI crashed this way in `Reader.init`). One thread
    /// opens corrupt files while another opens and reads a valid one; before the fix this crashed within a few
    /// thousand opens.
    @Test func refusedFilesDoNotUnmapAnotherReadersMemory() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("tf-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.tokens"), bad = dir.appendingPathComponent("bad.tokens")
        let sequences = (0..<64).map { i in TokenFile.Sequence(ids: (0..<200).map { UInt32(($0 + i) % 10) }, labels: Array(repeating: true, count: 200)) }
        try TokenFile.write(sequences, packed: false, vocabularySize: 10, to: good)
        var corrupt = try Data(contentsOf: good)
        corrupt[corrupt.count - 1] = 0xFF   // the last document offset no longer ends at the token count
        try corrupt.write(to: bad)
        #expect(throws: FileError.self) { try TokenFile.Reader(path: bad.path) }
        let rounds = 20_000
        let lock = NSLock()
        nonisolated(unsafe) var mismatches = 0
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for _ in 0..<rounds {
                if worker == 0 {
                    _ = try? TokenFile.Reader(path: bad.path)
                } else if let reader = try? TokenFile.Reader(path: good.path), reader.sequence(63) != sequences[63] {
                    lock.withLock { mismatches += 1 }
                }
            }
        }
        #expect(mismatches == 0)
    }
}
