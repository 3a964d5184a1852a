import ArgumentParser
import Foundation
import QLoRAPipeline

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check job specs without running them.",
        discussion: """
            Reports every problem as file:line:column: key.path: message (unknown keys with a suggestion, \
            out-of-range values, stages this build does not have yet) and exits 2 if any spec has one. \
            Input files that do not exist yet are warnings here (`run` refuses them).
            """)

    @Argument(help: "Job spec files.")
    var specs: [String]

    func run() throws {
        var failed = false
        for path in specs {
            do {
                let spec = try JobSpec.load(path: path)
                for missing in spec.missingInputs() {
                    printError(missing.description.replacingOccurrences(of: ": error: ", with: ": warning: "))
                }
                printSafe("\(path): ok (stages: \(StageID.enabled(by: spec).map(\.rawValue).joined(separator: ", ")))")
            } catch let error as SpecError {
                printError(error.description)
                failed = true
            } catch let error as SpecErrors {
                printError(error.description)
                failed = true
            }
        }
        if failed { throw ExitCode(2) }
    }
}
