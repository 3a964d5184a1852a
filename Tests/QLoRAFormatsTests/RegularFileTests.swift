import Foundation
import QLoRAFormats
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Inputs must be regular files: a FIFO (opening it blocks until a writer appears) or a device such as
/// /dev/zero (it never ends) is refused at open with "not a regular file", without blocking.
@Suite struct RegularFileTests {
    /// A FIFO in a fresh directory (removed by the caller).
    static func fifo() throws -> (dir: URL, path: String) {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("fifo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let path = dir.appendingPathComponent("data.jsonl").path
        #expect(mkfifo(path, 0o600) == 0)
        return (dir, path)
    }

    @Test(arguments: ["fifo", "/dev/zero"])
    func readersRefuseNonRegularFiles(which: String) throws {
        let (dir, fifoPath) = try Self.fifo()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = which == "fifo" ? fifoPath : which
        let what = which == "fifo" ? "a FIFO" : "a character device"
        #expect(RegularFile.irregularKind(atPath: path) == what)
        let opened = #expect(throws: RegularFile.Failure.self) { _ = try RegularFile.openReadOnly(path) }
        #expect(opened == .notRegular(what))
        let rows = #expect(throws: ReaderError.self) { _ = try openByteSource(path: path) }
        #expect(rows?.description == "\(path): cannot open: not a regular file (\(what))")
        let gz = #expect(throws: ReaderError.self) { _ = try GzipByteSource(path: path) }
        #expect(gz?.description.contains("not a regular file") == true)
        let gguf = #expect(throws: GGUFError.self) { _ = try GGUFFile(path: path) }
        #expect(gguf.map { "\($0)" }?.contains("not a regular file") == true, "\(gguf.map { "\($0)" } ?? "")")
        let st = #expect(throws: SafetensorsError.self) { _ = try SafetensorsFile(path: path) }
        #expect(st.map { "\($0)" }?.contains("not a regular file") == true, "\(st.map { "\($0)" } ?? "")")
    }

    @Test func regularFilesAndSymlinksToThemStillOpen() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("regular-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("a.txt")
        try Data("hello".utf8).write(to: file)
        try FileManager.default.createSymbolicLink(atPath: dir.appendingPathComponent("link").path, withDestinationPath: file.path)
        #expect(RegularFile.irregularKind(atPath: file.path) == nil)
        #expect(RegularFile.irregularKind(atPath: dir.path) == "a directory")
        #expect(RegularFile.irregularKind(atPath: dir.path, allowDirectory: true) == nil)
        #expect(try RegularFile.read(dir.appendingPathComponent("link").path) == Array("hello".utf8))
    }
}
