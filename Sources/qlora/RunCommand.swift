import ArgumentParser
import Foundation
import Logging
import QLoRABackends
import QLoRACore
import QLoRADistributed
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
              qlora run pipelines/quickstart.yaml --to prepare      # the CPU part of a job a GPU job then trains
            """)

    @Argument(help: "The job spec (YAML).")
    var spec: String

    @Option(name: .customLong("run-dir"), help: "Run directory (default: the spec's run_dir, else runs/<name>).")
    var runDir: String?

    @Option(help: "Rerun this stage and everything downstream of it.")
    var from: StageID?

    @Option(help: "Bring only this stage up to date; its upstream stages must already be.")
    var only: StageID?

    @Option(help: "Stop after this stage: run the stages up to it in pipeline order, none after.")
    var to: StageID?

    @Flag(help: "Rerun stages even when up to date (all of them, or the --only one).")
    var force = false

    @Flag(help: "CI mode: plain progress lines, and summary.json + summary.md in the run directory (also when output is not a terminal).")
    var ci = false

    @Option(help: "Backend for the train and evaluate stages: auto, cpu, reference or cuda (overrides the spec's `backend`).")
    var backend: BackendChoice?

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(name: .customLong("set"), help: ArgumentHelp("Override a spec setting (repeatable): --set training.learning_rate=1e-4.",
                                                         valueName: "key.path=value"))
    var overrides: [String] = []

    @Flag(help: "Run even when `qlora plan` predicts the training step does not fit in memory.")
    var ignorePlan = false

    func validate() throws {
        if from != nil && only != nil { throw ValidationError("--from and --only cannot be combined") }
        if to != nil && only != nil { throw ValidationError("--to and --only cannot be combined (--only already stops at its stage)") }
    }

    func run() throws {
        let spec: JobSpec
        do {
            spec = try JobSpec.load(path: self.spec, overrides: overrides)
        } catch {
            printError("\(error)")
            finishEarly(.badSpec, message: "\(error)")
        }
        let interactive = !ci && isTerminal(STDERR_FILENO) && ProcessInfo.processInfo.environment["CI"] == nil
        let renderer = ProgressRenderer(interactive: interactive)
        var options = Pipeline.Options(runDirectory: runDir, from: from, only: only, force: force,
                                       command: CommandLine.arguments.joined(separator: " "), backend: backend, threads: threads,
                                       cancellation: runCancellation, to: to)
        if let code = startRanks(spec: spec, options: &options) { Foundation.exit(code) }
        // Plan first: a training stage that would run and cannot fit is refused before anything starts. The memory
        // verdict costs nothing; the stage decisions (hashing the inputs) only when training does not fit.
        if !ignorePlan, spec.model != nil, spec.training != nil,
           let quick = try? makePlan(spec: spec, runDir: runDir, backend: backend, memory: nil, modelShape: nil, stageDecisions: false),
           !quick.fits,
           let plan = try? makePlan(spec: spec, runDir: runDir, backend: backend, memory: nil, modelShape: nil, to: to, only: only,
                                    from: from, force: force),
           plan.stages.contains(where: { $0.stage == "train" && $0.willRun }) {
            let message = "the training step is predicted not to fit: \(plan.verdict) (`qlora plan \(self.spec)` shows the estimate; "
                + "--ignore-plan runs anyway)"
            printError("error: \(message)")
            finishEarly(.badSpec, message: message)
        }
        installStopHandlers()
        defer { restoreStopHandlers() }
        let started = Date()
        printSafe("qlora run \(spec.name) → \(spec.runDirectory(override: runDir).path)")
        let result: Pipeline.Result
        do {
            result = try Pipeline.run(spec: spec, options: options, logger: Logger(label: "qlora")) { event in
                renderer.handle(event)
            }
        } catch let error as RunLockedError {
            printError("error: \(error)")
            annotate(error.description)
            endRun(RunOutcome.locked.exitCode)   // the directory is the other run's: no summary written into it
        } catch let error as SpecErrors {
            printError(error.description)
            finishEarly(.badSpec, message: error.description)
        } catch let error as PipelineArgumentError {
            printError("error: \(error)")
            finishEarly(.badSpec, message: "\(error)")
        } catch {
            // Before any stage ran (the backend, the run directory): not worth retrying as is.
            printError("error: \(error)")
            finishEarly(.stageFailed, message: "\(error)")
        }
        let total = Date().timeIntervalSince(started)
        let md = try RunSummary.write(result, spec: spec, totalSeconds: total)
        printSafe("summary: \(md.path)")
        GitHubActions.appendStepSummary(from: md)
        let outcome = result.outcome
        if let failure = result.failure {
            printError(outcome == .interrupted ? "interrupted: \(failure)" : "error: \(failure)")
            annotate(failure)
            endRun(outcome.exitCode)
        }
        for gate in result.gates { printSafe("gate \(gate.passed ? "passed" : "FAILED"): \(gate.message)") }
        if outcome == .gateFailed {
            let failed = result.gates.filter { !$0.passed }
            let message = "\(failed.count) quality gate(s) failed: " + failed.map(\.message).joined(separator: "; ")
            printError("error: \(message)")
            annotate(message)
            endRun(outcome.exitCode)
        }
        let ran = result.stages.filter { $0.state == .ran }.count
        print(ran == 0 ? "everything up to date (\(formatDuration(total)))" : "done: \(ran) stage(s) ran in \(formatDuration(total))")
        endRun(0)
    }

    /// A data-parallel launch (mpirun, srun: docs/DISTRIBUTED.md): starts MPI and, on ranks other than 0, takes part
    /// in training until rank 0 ends the run; returns their exit status (nil: go on as rank 0 or the only process).
    private func startRanks(spec: JobSpec, options: inout Pipeline.Options) -> Int32? {
        let env = ProcessInfo.processInfo.environment
        let launch: LaunchEnvironment
        do { launch = try LaunchEnvironment.detect(env) } catch {
            printError("error: \(error)")
            finishEarly(.badSpec, message: "\(error)")
        }
        guard launch.isDistributed else { return nil }
        guard launch.launcher.providesMPI else {
            let message = "launched as rank \(launch.rank) of \(launch.size) by \(launch.launcher.rawValue), but data-parallel training on "
                + "CPU runs over MPI: start the ranks with mpirun or srun (docs/DISTRIBUTED.md); the NCCL path that would use "
                + "these variables is not built yet"
            printError("error: \(message)")
            finishEarly(.badSpec, message: message)
        }
        installStopHandlers()
        let mpi: MPICollective
        do {
            mpi = try MPICollective(cancellation: runCancellation, timeout: env["QLORA_COLLECTIVE_TIMEOUT"].flatMap(Double.init) ?? 1800,
                                    stopGrace: env["QLORA_STOP_GRACE"].flatMap(Double.init) ?? 20)
        } catch {
            printError("error: \(error)")
            finishEarly(.badSpec, message: "\(error)")
        }
        guard mpi.rank == launch.rank, mpi.size == launch.size else {
            printError("error: MPI says rank \(mpi.rank) of \(mpi.size), the launcher's variables rank \(launch.rank) of \(launch.size)")
            mpi.finish(clean: false, code: 2)
            return RunOutcome.badSpec.exitCode
        }
        options.collective = mpi
        // One rank per core by default: the node's cores shared among its ranks.
        options.threads = options.threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount / launch.localSize)
        if mpi.rank != 0 {
            let end = Ranks.follow(spec: spec, options: options, logger: Logger(label: "qlora rank \(mpi.rank)"))
            // Finalize only in step with rank 0 (it announced the end); after a broken collective, just leave.
            if end.announced { mpi.finish(clean: true, code: end.code) }
            return end.code
        }
        distributedEnd = { code in
            // MPI_Finalize waits for every rank: only when they all heard the end (else exit; the launcher cleans up).
            if Ranks.finish(code, collective: mpi) { mpi.finish(clean: true, code: code) }
        }
        printSafe("rank 0 of \(mpi.size) (\(launch.launcher.rawValue), \(mpi.library)); \(options.threads!) thread(s) per rank")
        return nil
    }

    /// Ends a run refused before any stage: `summary.json` where the run would live (when that can be known), the
    /// outcome's exit status.
    private func finishEarly(_ outcome: RunOutcome, message: String) -> Never {
        if let hint = JobSpec.runDirectoryHint(specPath: spec, override: runDir) {
            try? RunSummary.writeEarly(runDirectory: hint.url, name: hint.name, outcome: outcome, message: message)
        }
        annotate(message)
        endRun(outcome.exitCode)
    }

    private func annotate(_ message: String) { GitHubActions.error(message, title: "qlora run \(spec)") }
}

/// GitHub Actions' workflow commands, when running there (`GITHUB_ACTIONS=true`): failures as `::error`
/// annotations, the run's Markdown summary appended to the job summary (`GITHUB_STEP_SUMMARY`).
enum GitHubActions {
    static var active: Bool { ProcessInfo.processInfo.environment["GITHUB_ACTIONS"] == "true" }

    static func error(_ message: String, title: String) {
        guard active else { return }
        // Workflow-command escaping: %, CR and LF in the message; also , and : in properties.
        func escape(_ s: String, property: Bool = false) -> String {
            var out = s.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "\r", with: "%0D")
                .replacingOccurrences(of: "\n", with: "%0A")
            if property { out = out.replacingOccurrences(of: ":", with: "%3A").replacingOccurrences(of: ",", with: "%2C") }
            return out
        }
        print("::error title=\(escape(title, property: true))::\(escape(message))")
    }

    static func appendStepSummary(from markdown: URL) {
        guard active, let path = ProcessInfo.processInfo.environment["GITHUB_STEP_SUMMARY"], !path.isEmpty,
              let text = try? String(contentsOf: markdown, encoding: .utf8),
              let handle = FileHandle(forWritingAtPath: path) else { return }
        handle.seekToEndOfFile()
        handle.write(Data((text + "\n").utf8))
        try? handle.close()
    }
}

extension StageID: ExpressibleByArgument {}

/// The run's stop requests. The CLI owns the process's signals: the first SIGINT/SIGTERM becomes a request, which a
/// polling stage honours at its next safe point (training saves a checkpoint and stops) and the runner honours before
/// the next stage (a stage that does not poll finishes first, then the run stops: exit 75, resumable). A second
/// signal takes its default action and ends the process at once (stages are atomic, so nothing committed is lost).
private let runCancellation = Cancellation()

/// Rank 0 of a data-parallel run: announces the exit status to the other ranks and finalizes MPI (set by
/// `startRanks`; nil in a single process).
nonisolated(unsafe) private var distributedEnd: ((Int32) -> Void)?

/// Ends `qlora run` with `code`, telling the other ranks first.
private func endRun(_ code: Int32) -> Never {
    distributedEnd?(code)
    Foundation.exit(code)
}

private func installStopHandlers() {
    // A parent may hand the signals down blocked (Foundation's Process does, from a thread that blocks them): unblock
    // them on this thread, so a stop request is never left pending.
    var stops = sigset_t()
    sigemptyset(&stops)
    sigaddset(&stops, SIGINT)
    sigaddset(&stops, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &stops, nil)
    for sig in [SIGINT, SIGTERM] {
        signal(sig) { sig in
            if runCancellation.isRequested {
                signal(sig, SIG_DFL)
                raise(sig)
            } else {
                runCancellation.request()
            }
        }
    }
}

private func restoreStopHandlers() {
    signal(SIGINT, SIG_DFL)
    signal(SIGTERM, SIG_DFL)
}
