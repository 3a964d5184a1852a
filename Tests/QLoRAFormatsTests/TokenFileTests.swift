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
        try Data("not a token file at all, but long enough to have a header........................................................................".utf8).write(to: url)
        #expect(throws: FileError.self) { try TokenFile.Reader(path: url.path) }
    }
}
