import Foundation
import Testing
import QLoRAFormats

@Suite struct SafetensorsStreamWriterTests {
    private func tmp() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("st-stream-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func writesFixedThenTrailingEntriesThatReadBack() throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.safetensors")
        let writer = try SafetensorsStreamWriter(
            url: url, fixed: [("b", .f32, [2, 3]), ("a", .u8, [5])], trailing: [("state", 100)], metadata: ["format": "pt"])
        // Entries may be written in any order.
        try writer.write("a", [1, 2, 3, 4, 5])
        try writer.write("b", floats: [1, 2, 3, 4, 5, 6])
        #expect(!FileManager.default.fileExists(atPath: url.path), "nothing under the final name before finish")
        try writer.finish(trailing: ["state": Array("{\"x\": 1}".utf8)])
        let file = try SafetensorsFile(path: url.path)
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.floats(named: "b") == [1, 2, 3, 4, 5, 6])
        #expect(file.bytes(file.tensor(named: "a")!) == [1, 2, 3, 4, 5])
        #expect(String(decoding: file.data(file.tensor(named: "state")!), as: UTF8.self) == "{\"x\": 1}")
        #expect(file.tensor(named: "state")!.shape == [8])
        #expect((try FileManager.default.contentsOfDirectory(atPath: dir.path)) == ["m.safetensors"])
    }

    @Test func anUnfinishedOrInvalidWriteLeavesNothingBehind() throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("m.safetensors")
        do {
            let writer = try SafetensorsStreamWriter(url: url, fixed: [("w", .f32, [4])])
            #expect(throws: SafetensorsError.self) { try writer.write("w", floats: [1, 2, 3]) }
            #expect(throws: SafetensorsError.self) { try writer.write("nope", floats: [1]) }
            #expect(throws: SafetensorsError.self) { try writer.finish(trailing: [:]) }
        }
        #expect((try FileManager.default.contentsOfDirectory(atPath: dir.path)).isEmpty)
        let writer = try SafetensorsStreamWriter(url: url, fixed: [], trailing: [("j", 4)])
        #expect(throws: SafetensorsError.self) { try writer.finish(trailing: ["j": [1, 2, 3, 4, 5]]) }
    }
}
