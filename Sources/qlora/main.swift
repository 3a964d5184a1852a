import ArgumentParser
import Foundation
import Logging
import QLoRAPipeline

// Exit codes: 0 success, 1 a stage failed (or the run directory is busy), 2 bad spec or arguments.
LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
do {
    var command = try Qlora.parseAsRoot()
    try command.run()
} catch {
    if Qlora.exitCode(for: error) == .validationFailure {
        FileHandle.standardError.write(Data((terminalSafe(Qlora.fullMessage(for: error)) + "\n").utf8))
        exit(2)
    }
    Qlora.exit(withError: error)
}
