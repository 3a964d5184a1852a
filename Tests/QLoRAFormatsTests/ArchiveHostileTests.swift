import Foundation
import QLoRAFormats
import Testing

/// Hostile archives, generated here with libarchive directly: every one must be refused with an error
/// naming the archive and the entry, leave no target directory and write nothing anywhere else.
@Suite("Archive hostile files")
struct ArchiveHostileTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var label: String
        var container: RawArchive.Container
        var entries: @Sendable () -> [RawArchive.Entry]
        /// The refused entry and the message after `entry "NAME" `.
        var entry: String
        var message: String
        var testDescription: String { "\(label) (\(container))" }
    }

    /// A harmless file first, so extraction has already written something when it meets the bad entry.
    static let cases: [Case] = [RawArchive.Container.tarGzip, .zip].flatMap { container in [
        Case(label: "zip-slip", container: container, entries: { [.file("ok.txt", "fine"), .file("../x", "evil")] },
             entry: "../x", message: "escapes the target directory"),
        Case(label: "deep zip-slip", container: container, entries: { [.file("ok.txt", "fine"), .file("a/../../../x", "evil")] },
             entry: "a/../../../x", message: "escapes the target directory"),
        Case(label: "absolute path", container: container, entries: { [.file("ok.txt", "fine"), .file("/tmp/x", "evil")] },
             entry: "/tmp/x", message: "is an absolute path; only relative names are extracted"),
    ] } + [
        Case(label: "backslash", container: .tarGzip, entries: { [.file("..\\x", "evil")] },
             entry: "..\\x", message: "has an unsafe name: it holds a backslash, a path separator on Windows"),
        // libarchive's zip reader turns backslashes into slashes, so the same name escapes.
        Case(label: "backslash", container: .zip, entries: { [.file("..\\x", "evil")] },
             entry: "../x", message: "escapes the target directory"),
        Case(label: "escaping symlink then a file through it", container: .tarGzip,
             entries: { [.file("ok.txt", "fine"), .symlink("link", to: "../../etc"), .file("link/file", "evil")] },
             entry: "link", message: "is a symbolic link to \"../../etc\"; links are refused"),
        Case(label: "symlink inside the target", container: .tarZstd,
             entries: { [.file("ok.txt", "fine"), .symlink("alias", to: "ok.txt")] },
             entry: "alias", message: "is a symbolic link to \"ok.txt\"; links are refused"),
        Case(label: "hard link", container: .tarGzip,
             entries: { [.file("ok.txt", "fine"), .hardlink("copy", to: "/etc/passwd")] },
             entry: "copy", message: "is a hard link to \"/etc/passwd\"; links are refused"),
        Case(label: "character device", container: .tar,
             entries: { [.file("ok.txt", "fine"), .special("null", type: RawArchive.characterDevice)] },
             entry: "null", message: "is a character device; only regular files and directories are extracted"),
        Case(label: "FIFO", container: .tarGzip,
             entries: { [.special("pipe", type: RawArchive.fifo)] },
             entry: "pipe", message: "is a FIFO; only regular files and directories are extracted"),
        Case(label: "duplicate file", container: .tarGzip,
             entries: { [.file("a", "first"), .file("./a", "second")] },
             entry: "./a", message: "appears twice (or as both a file and a directory)"),
        Case(label: "file then directory of the same name", container: .tarGzip,
             entries: { [.file("a", "first"), .file("a/b", "second")] },
             entry: "a/b", message: "appears twice (or as both a file and a directory)"),
        Case(label: "a file named like the root", container: .tarGzip,
             entries: { [.file(".", "x")] },
             entry: ".", message: "has an unsafe name: it names the target directory itself"),
    ]

    @Test(arguments: cases)
    func refusesAndLeavesNothingBehind(_ c: Case) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("hostile.\(c.container)")
        try RawArchive.write(c.entries(), to: archive, as: c.container)
        try FileManager.default.createDirectory(at: sandbox.url("work"), withIntermediateDirectories: false)
        let error = archiveError { try ArchiveReader.extract(archive: archive, to: sandbox.url("work/out")) }
        #expect(error?.description == "\(archive.path): entry \"\(c.entry)\" \(c.message)")
        #expect(sandbox.listing() == [archive.lastPathComponent, "work"], "no target, no temporary directory, nothing outside")
        // verify's digests apply the same rules.
        let digestError = archiveError { _ = try ArchiveReader.digests(archive: archive) }
        #expect(digestError?.description == error?.description)
    }

    /// 64 MiB of zeros against small size limits: refused once the count passes the limit, whatever the
    /// header says, and with only the limit's worth of bytes ever produced.
    @Test(arguments: [RawArchive.Container.tarGzip, .tarZstd, .zip])
    func refusesABombPastTheTotalAndEntryLimits(container: RawArchive.Container) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("bomb.\(container)")
        try RawArchive.write([.file("ok.txt", "fine"), .zeros("zeros.bin", count: 64 << 20)], to: archive, as: container)
        let archiveSize = try FileManager.default.attributesOfItem(atPath: archive.path)[.size] as? Int
        #expect(archiveSize.map { $0 <= 1 << 20 } == true, "a small archive: \(String(describing: archiveSize)) bytes")
        let total = ArchiveLimits(maxTotalBytes: 1 << 20, maxCompressionRatio: 1_000_000)
        let totalError = archiveError { try ArchiveReader.extract(archive: archive, to: sandbox.url("out"), limits: total) }
        #expect(totalError?.description == "\(archive.path): entry \"zeros.bin\" takes the extracted total past the limit of 1048576 bytes")
        let perEntry = ArchiveLimits(maxEntryBytes: 1 << 20, maxCompressionRatio: 1_000_000)
        let entryError = archiveError { try ArchiveReader.extract(archive: archive, to: sandbox.url("out"), limits: perEntry) }
        #expect(entryError?.description == "\(archive.path): entry \"zeros.bin\" holds more than 1048576 bytes (the per-entry limit)")
        #expect(sandbox.listing() == [archive.lastPathComponent])

        // readMember and digests count the same way.
        let memberError = archiveError { _ = try ArchiveReader.readMember("zeros.bin", from: archive, maxBytes: 1 << 30, limits: total) }
        #expect(memberError?.kind == .totalTooLarge(limit: 1 << 20))
        let digestError = archiveError { _ = try ArchiveReader.digests(archive: archive, limits: perEntry) }
        #expect(digestError?.kind == .entryTooLarge(limit: 1 << 20))
    }

    /// Under the default size limits, the default 200:1 ratio stops a highly compressed stream.
    @Test(arguments: [RawArchive.Container.tarGzip, .tarZstd, .zip])
    func refusesABombPastTheCompressionRatio(container: RawArchive.Container) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("bomb.\(container)")
        try RawArchive.write([.zeros("zeros.bin", count: 32 << 20)], to: archive, as: container)
        let error = archiveError { try ArchiveReader.extract(archive: archive, to: sandbox.url("out")) }
        guard case .compressionRatioTooHigh(let extracted, let archiveBytes, let limit) = error?.kind else {
            Issue.record("\(String(describing: error))")
            return
        }
        #expect(limit == 200 && extracted > 200 * archiveBytes && extracted < 32 << 20)
        #expect(error?.entry == "zeros.bin")
        #expect(error?.description.contains("decompresses past the ratio limit of 200:1") == true)
        #expect(sandbox.listing() == [archive.lastPathComponent])
        // The same data is fine when the ratio limit allows it.
        let generous = ArchiveLimits(maxCompressionRatio: 1_000_000)
        #expect(try ArchiveReader.extract(archive: archive, to: sandbox.url("out"), limits: generous).bytes == 32 << 20)
    }

    @Test func refusesTooManyEntries() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let archive = sandbox.url("many.tar.gz")
        try RawArchive.write((0..<5).map { .file("f\($0)", "") }, to: archive, as: .tarGzip)
        let limits = ArchiveLimits(maxEntries: 4)
        let error = archiveError { try ArchiveReader.extract(archive: archive, to: sandbox.url("out"), limits: limits) }
        #expect(error?.description == "\(archive.path): holds more than 4 entries (the limit)")
        #expect(throws: ArchiveError.self) { try ArchiveReader.entries(archive: archive, limits: limits) }
        #expect(sandbox.listing() == [archive.lastPathComponent])
    }

    /// Truncated and bit-flipped archives: a clear error, never a crash, and no target left behind. Only zip
    /// has a data checksum that libarchive checks (CRC-32 per entry; it skips gzip's trailer CRC, and writes
    /// no zstd checksum), so a flipped byte inside a tar's data goes unnoticed here, which is why
    /// `qlora verify` checks the manifest's SHA-256 of every member.
    @Test(arguments: [RawArchive.Container.tarGzip, .tarZstd, .zip, .tar])
    func damagedArchivesFailCleanly(container: RawArchive.Container) throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let good = sandbox.url("good.\(container)")
        let payload = pseudoRandomBytes(count: 300_000, seed: 11)
        try RawArchive.write([.file("a.json", "{}"), RawArchive.Entry(name: "weights.bin", data: payload)], to: good, as: container)
        let bytes = try Data(contentsOf: good)
        var damaged: [String: Data] = [
            "truncated": bytes.prefix(bytes.count / 2),
            "header only": bytes.prefix(100),
        ]
        if container == .zip {
            var flipped = bytes
            flipped[bytes.count / 2] ^= 0xff
            damaged["flipped"] = flipped
        }
        for (label, data) in damaged {
            let archive = sandbox.url("\(label).\(container)")
            try data.write(to: archive)
            let error = archiveError { try ArchiveReader.extract(archive: archive, to: sandbox.url("out")) }
            guard case .corrupt = error?.kind else { Issue.record("\(label): \(String(describing: error))"); continue }
            #expect(error?.entry == nil || error?.entry == "weights.bin" || error?.entry == "a.json", "\(label)")
            #expect(error?.description.hasPrefix("\(archive.path): ") == true)
            #expect(!FileManager.default.fileExists(atPath: sandbox.url("out").path), "\(label)")
            #expect(throws: ArchiveError.self, "\(label)") { _ = try ArchiveReader.digests(archive: archive) }
        }
        #expect(sandbox.listing().allSatisfy { !$0.hasPrefix(".") && !$0.hasPrefix("out") })
    }

    /// Empty, missing and non-archive files.
    @Test func nonArchivesAndMissingFilesFailCleanly() throws {
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        let text = try sandbox.write("notes.tar.gz", Data("just some text, not an archive\n".utf8))
        let error = archiveError { try ArchiveReader.extract(archive: text, to: sandbox.url("out")) }
        #expect(error?.description == "\(text.path): cannot be read: truncated or corrupt archive (Unrecognized archive format)")
        let empty = try sandbox.write("empty.zip", Data())
        let emptyError = archiveError { _ = try ArchiveReader.entries(archive: empty) }
        guard case .corrupt = emptyError?.kind else { Issue.record("\(String(describing: emptyError))"); return }
        let missing = sandbox.url("missing.tar.gz")
        let missingError = archiveError { try ArchiveReader.extract(archive: missing, to: sandbox.url("out")) }
        #expect(missingError?.description == "\(missing.path): failed: open \(missing.path): No such file or directory")
        #expect(sandbox.listing() == ["empty.zip", "notes.tar.gz"])
    }
}
