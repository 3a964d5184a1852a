import Foundation
import QLoRAFormats
import Testing

/// `qlora unpack`: extracts an archive written by `ArchiveWriter`, and refuses a zip-slip tar with exit 1,
/// the archive and entry named, and nothing written.
@Suite struct UnpackCommandTests {
    /// A one-entry POSIX ustar archive, built byte by byte so that any name (`../evil`) can be stored.
    private func ustar(name: String, contents: Data) -> Data {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int) { for (i, byte) in text.utf8.enumerated() { header[offset + i] = byte } }
        put(name, at: 0)
        put("0000644", at: 100)
        put("0000000", at: 108)
        put("0000000", at: 116)
        put(String(contents.count, radix: 8).leftPadded(to: 11), at: 124)
        put("00000000000", at: 136)
        put("        ", at: 148)
        put("0", at: 156)
        put("ustar", at: 257)
        put("00", at: 263)
        let checksum = header.reduce(0) { $0 + Int($1) }
        put(String(checksum, radix: 8).leftPadded(to: 6), at: 148)
        header[154] = 0
        let padding = (512 - contents.count % 512) % 512
        return Data(header) + contents + Data(count: padding + 1024)
    }

    @Test func unpackExtractsAnAdapterArchive() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let archive = dir.appendingPathComponent("adapter.tar.zst")
        let config = Data(#"{"r": 8}"#.utf8)
        try ArchiveWriter.write([ArchiveMember(name: "adapter_config.json", data: config),
                                 ArchiveMember(name: "adapter_model.safetensors", data: Data(count: 4096))], to: archive)
        let out = dir.appendingPathComponent("out")
        let result = try CLI.run(["unpack", archive.path, out.path])
        #expect(result.status == 0, "\(result.all)")
        #expect(result.stdout.contains("unpacked 2 files (4.1 kB) into \(out.path)"))
        #expect(try Data(contentsOf: out.appendingPathComponent("adapter_config.json")) == config)
        let again = try CLI.run(["unpack", archive.path, out.path])
        #expect(again.status == 1)
        #expect(again.stderr.contains("error: \(archive.path): cannot extract into \(out.path): it exists and is not an empty directory"))
    }

    @Test func unpackRefusesZipSlipWithExitOne() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let work = dir.appendingPathComponent("work")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: false)
        let archive = dir.appendingPathComponent("evil.tar")
        try ustar(name: "../evil", contents: Data("pwned".utf8)).write(to: archive)
        let result = try CLI.run(["unpack", archive.path, work.appendingPathComponent("out").path])
        #expect(result.status == 1, "\(result.all)")
        #expect(result.stderr.contains("error: \(archive.path): entry \"../evil\" escapes the target directory"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: work.path).isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["evil.tar", "work"])
        #expect(try CLI.run(["unpack", archive.path]).status == 2, "a missing argument is a usage error")
    }
}

private extension String {
    func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
