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
            Input files that do not exist yet are warnings here (`run` refuses them); with --strict they are \
            errors, and every input is checked to be of its declared kind (a GGUF file or an HF model \
            directory, a tokenizer.json or GGUF, non-empty data and task files): a CI preflight.
            """)

    @Argument(help: "Job spec files.")
    var specs: [String]

    @Flag(help: "Missing or mistyped inputs are errors (exit 2), not warnings.")
    var strict = false

    func run() throws {
        var failed = false
        for path in specs {
            do {
                let spec = try JobSpec.load(path: path)
                if strict {
                    let problems = spec.strictProblems()
                    for p in problems { printError(p.description) }
                    if !problems.isEmpty {
                        failed = true
                        continue
                    }
                } else {
                    for missing in spec.missingInputs() {
                        printError(missing.description.replacingOccurrences(of: ": error: ", with: ": warning: "))
                    }
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
