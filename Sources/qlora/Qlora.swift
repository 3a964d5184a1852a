import ArgumentParser
import Foundation
import QLoRAPipeline

struct Qlora: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qlora",
        abstract: "QLoRA fine-tuning pipeline: ingest → tokenize → prepare → train → evaluate → package.",
        discussion: """
            A job spec (YAML) describes the data, model and training; `qlora run SPEC` runs its stages as \
            resumable steps with on-disk artifacts under the run directory, skipping stages that are up to date.

            Exit status of `run`: 0 success, 1 a stage failed, 2 bad spec or arguments, 3 a quality gate failed, 4 the run \
            directory is in use, 75 interrupted with progress saved (run again to resume). Other commands: 0, 1 on \
            failure, 2 for bad arguments.
            """,
        version: ToolInfo.version,
        subcommands: [RunCommand.self, PlanCommand.self, StatusCommand.self, ValidateCommand.self, EncodeCommand.self, DecodeCommand.self,
                      ChatTemplateCommand.self, GenerateCommand.self, LogitsCommand.self, QuantizeCommand.self, InspectCommand.self,
                      PrepareCommand.self, EvaluateCommand.self, UnpackCommand.self, VerifyCommand.self, ExportCommand.self,
                      BenchCommand.self, DevicesCommand.self, RenderCommand.self])
}

/// Writes to standard error (control characters escaped: `terminalSafe`).
func printError(_ text: String) {
    FileHandle.standardError.write(Data((terminalSafe(text) + "\n").utf8))
}

/// Loads and validates a spec; prints every problem and exits 2 when there are any.
func loadSpec(_ path: String) throws -> JobSpec {
    do {
        return try JobSpec.load(path: path)
    } catch let error as SpecError {
        printError(error.description)
    } catch let error as SpecErrors {
        printError(error.description)
    }
    throw ExitCode(2)
}

func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }
