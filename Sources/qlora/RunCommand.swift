import ArgumentParser
import Foundation
import Logging
import QLoRABackends
import QLoRACore
import QLoRAPipeline

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a job spec's stages, skipping those that are up to date.",
        discussion: """
            Each stage writes into a temporary directory renamed into place when complete, and records a \
            manifest (fingerprint of its configuration, inputs and upstream stages; sha256 of its outputs). \
            A stage reruns when its fingerprint changed, an upstream stage reran, or an output no longer \
            matches its hash. Only one `run` may use a run directory at a time.

            Examples:
              qlora run pipelines/tiny.yaml
              qlora run pipelines/quickstart.yaml --from ingest
              qlora run pipelines/quickstart.yaml --only ingest --force --ci
            """)

    @Argument(help: "The job spec (YAML).")
    var spec: String

    @Option(name: .customLong("run-dir"), help: "Run directory (default: the spec's run_dir, else runs/<name>).")
    var runDir: String?

    @Option(help: "Rerun this stage and everything downstream of it.")
    var from: StageID?

    @Option(help: "Bring only this stage up to date; its upstream stages must already be.")
    var only: StageID?

    @Flag(help: "Rerun stages even when up to date (all of them, or the --only one).")
    var force = false

    @Flag(help: "CI mode: plain progress lines, and summary.json + summary.md in the run directory (also when output is not a terminal).")
    var ci = false

    @Option(help: "Backend for the train and evaluate stages: auto, cpu, reference or cuda (overrides the spec's `backend`).")
    var backend: BackendChoice?

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if from != nil && only != nil { throw ValidationError("--from and --only cannot be combined") }
    }

    func run() throws {
        let spec = try loadSpec(self.spec)
        let interactive = !ci && isTerminal(STDERR_FILENO) && ProcessInfo.processInfo.environment["CI"] == nil
        let renderer = ProgressRenderer(interactive: interactive)
        let options = Pipeline.Options(runDirectory: runDir, from: from, only: only, force: force,
                                       command: CommandLine.arguments.joined(separator: " "), backend: backend, threads: threads,
                                       cancellation: runCancellation)
        installStopHandlers()
        defer { restoreStopHandlers() }
        let started = Date()
        printSafe("qlora run \(spec.name) → \(spec.runDirectory(override: runDir).path)")
        let result: Pipeline.Result
        do {
            result = try Pipeline.run(spec: spec, options: options, logger: Logger(label: "qlora")) { event in
                renderer.handle(event)
            }
        } catch let error as SpecErrors {
            printError(error.description)
            throw ExitCode(2)
        } catch let error as PipelineArgumentError {
            printError("error: \(error)")
            throw ExitCode(2)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let total = Date().timeIntervalSince(started)
        if !interactive {
            let md = try RunSummary.write(result, spec: spec, totalSeconds: total)
            printSafe("summary: \(md.path)")
        }
        if let failure = result.failure {
            printError("error: \(failure)")
            throw ExitCode(1)
        }
        let ran = result.stages.filter { $0.state == .ran }.count
        print(ran == 0 ? "everything up to date (\(formatDuration(total)))" : "done: \(ran) stage(s) ran in \(formatDuration(total))")
    }
}

extension StageID: ExpressibleByArgument {}

/// The run's stop requests. The CLI owns the process's signals: SIGINT/SIGTERM become a request while a stage
/// polls for one (training saves a checkpoint and stops); otherwise the signal's default action ends the process,
/// as if no handler were installed (an interrupt is never deferred to a stage that would not notice it).
private let runCancellation = Cancellation()

private func installStopHandlers() {
    for sig in [SIGINT, SIGTERM] {
        signal(sig) { sig in
            if runCancellation.acceptsRequests {
                runCancellation.request()
            } else {
                signal(sig, SIG_DFL)
                raise(sig)
            }
        }
    }
}

private func restoreStopHandlers() {
    signal(SIGINT, SIG_DFL)
    signal(SIGTERM, SIG_DFL)
}
