import ArgumentParser
import Foundation
import QLoRAFormats
import QLoRAPipeline

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

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check an adapter package (archive or unpacked directory) against its manifest.",
        discussion: """
            Unpacks the archive safely into a scratch directory (the same limits as `qlora unpack`), then checks: \
            the manifest's own digest; that every member is listed and every listed file is present with its size \
            and SHA-256; that adapter_config.json is a PEFT LoRA config matching the manifest; and that \
            adapter_model.safetensors holds exactly the tensors (names, shapes, float dtypes) PEFT expects for the \
            base architecture recorded in the manifest. Every problem is printed, naming its file.

            Exit status: 0 the package verifies, 1 any mismatch or an unreadable archive, 2 bad arguments.
            """)

    @Argument(help: "The adapter archive (.tar.gz, .tar.zst, .zip) or an unpacked adapter directory.")
    var package: String

    func run() throws {
        do {
            let opened = try AdapterPackage.open(path: package)
            defer { opened.close() }
            let report = try AdapterVerifier.verify(directory: opened.directory, source: package)
            let m = report.manifest
            print("\(package): OK: \(m.name), LoRA r=\(m.adapter.rank) alpha=\(ModelCardNumber.format(m.adapter.alpha)) on "
                + "\(m.adapter.targetModules.joined(separator: ",")) for \(m.baseModel.source) (\(m.baseModel.architecture.layers) layers)")
            for check in report.checks { print("  ✓ \(check)") }
        } catch let error as AdapterVerifier.Failure {
            printError("\(error)")
            throw ExitCode(1)
        } catch let error as ArchiveError {
            printError("\(package): verification failed\n  - \(error)")
            throw ExitCode(1)
        } catch let error as FileError {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}

enum ModelCardNumber {
    static func format(_ v: Double) -> String { v == v.rounded() ? String(Int64(v)) : String(v) }
}
