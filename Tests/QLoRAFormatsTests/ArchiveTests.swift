import CArchive
import Foundation
import QLoRAFormats
import Testing

/// Writing archives (round trip, reproducibility, atomicity) and reading them (listing, one member, digests).
@Suite("Archives")
struct ArchiveTests {
    /// An adapter-like directory: a weights file crossing the 1 MiB read-chunk boundary, JSON, a nested file.
    private func adapterFiles(in sandbox: Sandbox, under dir: String = "adapter") throws -> [String: Data] {
        let files: [String: Data] = [
            "adapter_model.safetensors": pseudoRandomBytes(count: (1 << 20) + 4097, seed: 7),
            "adapter_config.json": Data(#"{"r": 16, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"]}"#.utf8),
            "README.md": Data(String(repeating: "fine-tuned with qlora\n", count: 200).utf8),
            "tokenizer/tokenizer.json": Data(#"{"model": {"type": "BPE"}}"#.utf8),
            "empty.txt": Data(),
        ]
        for (name, data) in files { try sandbox.write("\(dir)/\(name)", data) }
        return files
    }

    @Test(arguments: ArchiveFormat.allCases)
    func roundTripsADirectory(format: ArchiveFormat) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let files = try adapterFiles(in: sandbox)
        var members = try ArchiveMember.files(under: sandbox.url("adapter"))
        members.append(ArchiveMember(name: "manifest.json", data: Data("{}".utf8)))
        let archive = sandbox.url("adapter.\(format.fileExtension)")
        try ArchiveWriter.write(members, to: archive)

        let summary = try ArchiveReader.extract(archive: archive, to: sandbox.url("out"))
        #expect(summary == ExtractionSummary(files: 6, directories: 1, bytes: Int64(files.values.map(\.count).reduce(2, +))))
        for (name, data) in files { #expect(try Data(contentsOf: sandbox.url("out/\(name)")) == data, "\(name)") }
        #expect(try Data(contentsOf: sandbox.url("out/manifest.json")) == Data("{}".utf8))
        let mode = try FileManager.default.attributesOfItem(atPath: sandbox.url("out/README.md").path)[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o111 } == 0, "extracted files are not executable")

        let entries = try ArchiveReader.entries(archive: archive)
        #expect(entries.map(\.name).map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } == [
            "README.md", "adapter_config.json", "adapter_model.safetensors", "empty.txt", "manifest.json",
            "tokenizer", "tokenizer/tokenizer.json"])
        #expect(entries.first { $0.name.hasPrefix("tokenizer") }?.kind == .directory)
        #expect(entries.first { $0.name == "adapter_model.safetensors" }?.size == Int64((1 << 20) + 4097))

        let config = try ArchiveReader.readMember("adapter_config.json", from: archive, maxBytes: 1 << 10)
        #expect(config == files["adapter_config.json"])
        #expect(try ArchiveReader.readMember("./tokenizer/tokenizer.json", from: archive, maxBytes: 1 << 10)
                == files["tokenizer/tokenizer.json"])

        let digests = try ArchiveReader.digests(archive: archive)
        #expect(digests.count == 6)
        for (name, data) in files { #expect(digests[name] == FileDigest.of(data: data), "\(name)") }
    }

    /// Same names and contents, but different mtimes, permissions, source paths and member order: same bytes.
    @Test(arguments: ArchiveFormat.allCases)
    func sameInputsGiveByteIdenticalArchives(format: ArchiveFormat) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        _ = try adapterFiles(in: sandbox, under: "a")
        _ = try adapterFiles(in: sandbox, under: "b")
        let fm = FileManager.default
        for name in ["README.md", "adapter_model.safetensors"] {
            try fm.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_000_000), .posixPermissions: 0o600],
                                 ofItemAtPath: sandbox.url("a/\(name)").path)
            try fm.setAttributes([.modificationDate: Date(timeIntervalSince1970: 1_700_000_000), .posixPermissions: 0o755],
                                 ofItemAtPath: sandbox.url("b/\(name)").path)
        }
        let first = sandbox.url("first.\(format.fileExtension)"), second = sandbox.url("second.\(format.fileExtension)")
        try ArchiveWriter.write(try ArchiveMember.files(under: sandbox.url("a")), to: first)
        try ArchiveWriter.write(try ArchiveMember.files(under: sandbox.url("b")).reversed(), to: second)
        let bytes = try Data(contentsOf: first)
        #expect(bytes == (try Data(contentsOf: second)))
        try ArchiveWriter.write(try ArchiveMember.files(under: sandbox.url("a")), to: first)
        #expect(bytes == (try Data(contentsOf: first)), "rewriting the same archive gives the same bytes")

        var changed = try ArchiveMember.files(under: sandbox.url("a"))
        changed[0].source = .data(Data("different".utf8))
        try ArchiveWriter.write(changed, to: second)
        #expect(bytes != (try Data(contentsOf: second)), "different contents give different bytes")
    }

    /// UTF-8 names survive the round trip in every format, reproducibly, whatever the process locale.
    @Test(arguments: ArchiveFormat.allCases)
    func nonASCIINamesRoundTrip(format: ArchiveFormat) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let members = [ArchiveMember(name: "café/naïve ✓.txt", data: Data("ok".utf8))]
        let first = sandbox.url("a.\(format.fileExtension)"), second = sandbox.url("b.\(format.fileExtension)")
        try ArchiveWriter.write(members, to: first)
        try ArchiveWriter.write(members, to: second)
        #expect(try Data(contentsOf: first) == Data(contentsOf: second))
        #expect(try ArchiveReader.entries(archive: first).map(\.name).contains("café/naïve ✓.txt"))
        try ArchiveReader.extract(archive: first, to: sandbox.url("out"))
        #expect(try Data(contentsOf: sandbox.url("out/café/naïve ✓.txt")) == Data("ok".utf8))
    }

    /// Below `ratioCheckAfterBytes` (1 MiB) the ratio is not checked: a small, very repetitive file is fine.
    @Test func smallRepetitiveFilesPassTheRatioCheck() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("a.tar.gz")
        try ArchiveWriter.write([ArchiveMember(name: "blank.txt", data: Data(repeating: 10, count: 1 << 19))], to: archive)
        #expect(try FileManager.default.attributesOfItem(atPath: archive.path)[.size] as? Int ?? 0 < (1 << 19) / 200)
        #expect(try ArchiveReader.extract(archive: archive, to: sandbox.url("out")).bytes == 1 << 19)
    }

    /// The tar stream holds only plain ustar headers with time 0, owner 0 and no user or group names, and
    /// the gzip header has no timestamp and no file name.
    @Test(arguments: [ArchiveFormat.tarGzip, .tarZstd])
    func tarHeadersCarryNoTimeOwnerOrHost(format: ArchiveFormat) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        _ = try adapterFiles(in: sandbox)
        let archive = sandbox.url("a.\(format.fileExtension)")
        try ArchiveWriter.write(try ArchiveMember.files(under: sandbox.url("adapter")), to: archive)
        let raw = try [UInt8](Data(contentsOf: archive))
        if format == .tarGzip {
            #expect(Array(raw[0..<4]) == [0x1f, 0x8b, 8, 0], "gzip magic, deflate, no flags (no FNAME)")
            #expect(Array(raw[4..<8]) == [0, 0, 0, 0], "gzip MTIME is zero")
        }
        let tar = try RawArchive.tarStream(of: archive)
        func field(_ header: ArraySlice<UInt8>, _ offset: Int, _ length: Int) -> [UInt8] {
            Array(header[header.startIndex + offset ..< header.startIndex + offset + length])
        }
        func octal(_ bytes: [UInt8]) -> Int {
            Int(String(decoding: bytes.prefix { $0 != 0 && $0 != 32 }, as: UTF8.self), radix: 8) ?? -1
        }
        var offset = 0, headers = 0
        while offset + 512 <= tar.count, tar[offset..<offset + 512].contains(where: { $0 != 0 }) {
            let header = tar[offset..<offset + 512]
            let type = header[header.startIndex + 156]
            #expect(type == UInt8(ascii: "0") || type == UInt8(ascii: "5"), "no pax/GNU extension headers")
            #expect(octal(field(header, 136, 12)) == 0, "mtime")
            #expect(octal(field(header, 108, 8)) == 0 && octal(field(header, 116, 8)) == 0, "uid/gid")
            #expect(field(header, 265, 64).allSatisfy { $0 == 0 }, "uname/gname empty")
            #expect(octal(field(header, 100, 8)) == (type == UInt8(ascii: "5") ? 0o755 : 0o644), "mode")
            offset += 512 + (octal(field(header, 124, 12)) + 511) / 512 * 512
            headers += 1
        }
        #expect(headers == 6)
    }

    /// Time 0 is below the DOS epoch in every time zone, so libarchive writes its 1980-01-01 00:00 floor.
    @Test func zipTimesAreTheDOSFloor() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("a.zip")
        try ArchiveWriter.write([ArchiveMember(name: "x.json", data: Data("{}".utf8))], to: archive)
        let raw = try [UInt8](Data(contentsOf: archive))
        #expect(Array(raw[0..<4]) == [0x50, 0x4b, 3, 4])
        #expect(Array(raw[10..<14]) == [0, 0, 0x21, 0], "DOS time 00:00:00, date 1980-01-01")
    }

    @Test func infersFormatFromTheFileName() throws {
        #expect(try ArchiveFormat(fileName: "runs/x/package/adapter.tar.gz") == .tarGzip)
        #expect(try ArchiveFormat(fileName: "ADAPTER.TGZ") == .tarGzip)
        #expect(try ArchiveFormat(fileName: "a.tar.zst") == .tarZstd)
        #expect(try ArchiveFormat(fileName: "a.tzst") == .tarZstd)
        #expect(try ArchiveFormat(fileName: "a.zip") == .zip)
        #expect(ArchiveFormat.default == .tarGzip)
        let error = archiveError { _ = try ArchiveFormat(fileName: "adapter.rar") }
        #expect(error?.description == "adapter.rar: cannot tell the archive format from the name; expected .tar.gz (or .tgz), .tar.zst (or .tzst) or .zip")
    }

    @Test(arguments: ["../x", "/abs", "a//b", "a/", "./a", "a/./b", "", "a\\b"])
    func writerRefusesNonCanonicalNames(name: String) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("a.tar.gz")
        let error = archiveError { try ArchiveWriter.write([ArchiveMember(name: name, data: Data())], to: archive) }
        guard case .invalidMemberName = error?.kind else { Issue.record("\(String(describing: error))"); return }
        #expect(error?.entry == name)
        #expect(sandbox.listing().isEmpty, "nothing written")
    }

    @Test func writerRefusesDuplicatesAndFileDirectoryClashes() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("a.zip")
        let duplicate = archiveError {
            try ArchiveWriter.write([ArchiveMember(name: "x", data: Data()), ArchiveMember(name: "x", data: Data("1".utf8))], to: archive)
        }
        #expect(duplicate?.description == "\(archive.path): entry \"x\" conflicts with member \"x\"")
        let clash = archiveError {
            try ArchiveWriter.write([ArchiveMember(name: "d", data: Data()), ArchiveMember(name: "d/f", data: Data())], to: archive)
        }
        guard case .conflictingMember = clash?.kind else { Issue.record("\(String(describing: clash))"); return }
        #expect(sandbox.listing().isEmpty)
    }

    /// A failure part-way (a missing source after other members were written) leaves the old archive intact
    /// and no temporary file.
    @Test(arguments: ArchiveFormat.allCases)
    func failedWriteLeavesThePreviousArchive(format: ArchiveFormat) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("a.\(format.fileExtension)")
        try ArchiveWriter.write([ArchiveMember(name: "old", data: Data("old".utf8))], to: archive)
        let before = try Data(contentsOf: archive)
        let missing = sandbox.url("missing.bin")
        let error = archiveError {
            try ArchiveWriter.write([ArchiveMember(name: "a", data: pseudoRandomBytes(count: 100_000, seed: 1)),
                                     ArchiveMember(name: "b", file: missing)], to: archive)
        }
        #expect(error?.description == "\(archive.path): entry \"b\" cannot read its source \(missing.path): No such file or directory")
        #expect(try Data(contentsOf: archive) == before)
        #expect(sandbox.listing() == [archive.lastPathComponent])
    }

    @Test func membersUnderADirectoryRefuseSymbolicLinks() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        try sandbox.write("d/a.txt", Data("a".utf8))
        try FileManager.default.createSymbolicLink(atPath: sandbox.url("d/link").path, withDestinationPath: "/etc/passwd")
        #expect(throws: FileError.self) { try ArchiveMember.files(under: sandbox.url("d")) }
    }

    @Test func readMemberCapsMemoryAndNamesWhatIsMissing() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("a.tar.zst")
        try ArchiveWriter.write([ArchiveMember(name: "w/big.bin", data: pseudoRandomBytes(count: 5000, seed: 3))], to: archive)
        let tooLarge = archiveError { _ = try ArchiveReader.readMember("w/big.bin", from: archive, maxBytes: 4999) }
        #expect(tooLarge?.description == "\(archive.path): entry \"w/big.bin\" holds more than 4999 bytes (the cap for reading it into memory)")
        #expect(try ArchiveReader.readMember("w/big.bin", from: archive, maxBytes: 5000).count == 5000)
        let missing = archiveError { _ = try ArchiveReader.readMember("nope.json", from: archive, maxBytes: 10) }
        #expect(missing?.description == "\(archive.path): entry \"nope.json\" is not in the archive")
        let directory = archiveError { _ = try ArchiveReader.readMember("w", from: archive, maxBytes: 10) }
        guard case .notARegularFile(let type) = directory?.kind else { Issue.record("\(String(describing: directory))"); return }
        #expect(type == "directory")
    }

    @Test func extractionTargetMustBeAbsentOrEmptyWithAnExistingParent() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("a.tar.gz")
        try ArchiveWriter.write([ArchiveMember(name: "f", data: Data("1".utf8))], to: archive)
        try sandbox.write("full/keep", Data("mine".utf8))
        let exists = archiveError { try ArchiveReader.extract(archive: archive, to: sandbox.url("full")) }
        #expect(exists?.kind == .targetExists(path: sandbox.url("full").path))
        #expect(try Data(contentsOf: sandbox.url("full/keep")) == Data("mine".utf8))

        try FileManager.default.createDirectory(at: sandbox.url("empty"), withIntermediateDirectories: false)
        try ArchiveReader.extract(archive: archive, to: sandbox.url("empty"))
        #expect(try Data(contentsOf: sandbox.url("empty/f")) == Data("1".utf8))

        let orphan = archiveError { try ArchiveReader.extract(archive: archive, to: sandbox.url("no/such/out")) }
        #expect(orphan?.kind == .targetParentMissing(path: sandbox.url("no/such").path))
        #expect(sandbox.listing() == ["a.tar.gz", "empty", "empty/f", "full", "full/keep"])
    }
}
