import ArgumentParser
import Foundation
import QLoRAFormats

struct UnpackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unpack",
        abstract: "Safely extract an adapter archive (.tar.gz, .tar.zst or .zip) into a new directory.",
        discussion: """
            All or nothing: the archive is extracted into a temporary directory beside DIR and renamed to DIR \
            only when every entry is written. Refused, leaving nothing behind: absolute names, `..`, links, \
            devices, duplicate names, and more than 8 GiB per entry, 16 GiB in total, 10,000 entries or a \
            compression ratio over 200:1 (counted on the decompressed data, not taken from headers).

            Exit status: 0 success, 1 the archive was refused or could not be read, 2 bad arguments.
            """)

    @Argument(help: "The archive to extract.")
    var archive: String

    @Argument(help: "The directory to create: it must not exist (or be empty) and its parent must exist.")
    var directory: String

    func run() throws {
        do {
            let summary = try ArchiveReader.extract(archive: URL(fileURLWithPath: archive), to: URL(fileURLWithPath: directory))
            print("unpacked \(summary.files) file\(summary.files == 1 ? "" : "s") (\(formatBytes(summary.bytes))) into \(directory)")
        } catch let error as ArchiveError {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}
