import Foundation
import Logging
import QLoRABackends
import QLoRACore
import QLoRADistributed
import QLoRAFormats

/// Runs a job spec's stages in order, skipping those that are up to date.
///
/// A stage is up to date when its manifest is complete, its fingerprint matches, the upstream outputs it
/// consumed are unchanged, and its own outputs still hash to what the manifest says. Otherwise it reruns,
/// and so does everything downstream of it.
public enum Pipeline {
    public struct Options: Sendable {
        public var runDirectory: String?
        /// Rerun this stage and everything that depends on it.
        public var from: StageID?
        /// Bring only this stage up to date (its upstream must already be).
        public var only: StageID?
        /// Stop after this stage: the stages up to it in pipeline order run, none after (`--to prepare` ingests,
        /// tokenizes and prepares, so a GPU job can then start at training).
        public var to: StageID?
        /// Rerun even up-to-date stages (all, or the `--only` one).
        public var force: Bool
        /// The command line, recorded in the lock file so a second run can name the holder.
        public var command: String
        /// Overrides the spec's `backend:` (`--backend`).
        public var backend: BackendChoice?
        /// Worker threads of the backend (default: every core).
        public var threads: Int?
        /// Stop requests for the stages that poll (training); the caller owns the signals that set it.
        public var cancellation: Cancellation
        /// The ranks of a data-parallel job: `run` is rank 0's part, `Ranks.follow` the others' (docs/DISTRIBUTED.md).
        public var collective: any Collective = SingleProcess()

        public init(runDirectory: String? = nil, from: StageID? = nil, only: StageID? = nil, force: Bool = false,
                    command: String = "qlora run", backend: BackendChoice? = nil, threads: Int? = nil,
                    cancellation: Cancellation = Cancellation(), to: StageID? = nil) {
            self.runDirectory = runDirectory
            self.to = to
            self.from = from
            self.only = only
            self.force = force
            self.command = command
            self.backend = backend
            self.threads = threads
            self.cancellation = cancellation
        }
    }

    public enum Event: Sendable {
        /// The backend chosen for the run (before the first stage).
        case backend(BackendSelection)
        case cleanedUp([String])
        case skipped(StageID, reason: String)
        case started(StageID, reason: String)
        case progress(ProgressSnapshot)
        case finished(StageID, StageManifest)
        case failed(StageID, message: String)
    }

    public struct StageResult: Sendable {
        public enum State: String, Sendable { case ran, skipped, failed, notRun = "not run" }
        public var stage: StageID
        public var state: State
        public var reason: String
        public var durationSeconds: Double
        public var metrics: [String: Double]
        public var notes: [String]
    }

    public struct Result: Sendable {
        public var runDirectory: URL
        /// The backend the computing stages ran (or would run) on, e.g. "cpu".
        public var backend: String
        public var stages: [StageResult]
        public var failure: String?
        /// The failure was a stop request (SIGINT/SIGTERM): progress is saved and running again resumes.
        public var interrupted = false
        public var succeeded: Bool { failure == nil }
        /// The quality gates checked after the stages (empty without `evaluation.gates`).
        public var gates: [GateResult] = []
        /// What the run's exit status says (the CI contract, RunOutcome.swift).
        public var outcome: RunOutcome {
            if failure != nil { return interrupted ? .interrupted : .stageFailed }
            return gates.allSatisfy(\.passed) ? .succeeded : .gateFailed
        }
    }

    /// The stages this build implements.
    public static let registry: [StageID: any Stage] = [
        .ingest: IngestStage(), .tokenize: TokenizeStage(), .prepare: PrepareStage(), .train: TrainStage(), .evaluate: EvaluateStage(),
        .package: PackageStage(),
    ]

    public static func run(spec: JobSpec, options: Options = Options(), logger: Logger = Logger(label: "qlora"),
                           observer: @escaping @Sendable (Event) -> Void = { _ in }) throws -> Result {
        let enabled = StageID.enabled(by: spec)
        if let to = options.to, !enabled.contains(to) {
            throw PipelineArgumentError("--to \(to.rawValue): the spec has no `\(to.sectionKeys[0])` section")
        }
        if let only = options.only, !enabled.contains(only) {
            throw PipelineArgumentError("--only \(only.rawValue): the spec has no `\(only.sectionKeys[0])` section")
        }
        if let from = options.from, !enabled.contains(from) {
            throw PipelineArgumentError("--from \(from.rawValue): the spec has no `\(from.sectionKeys[0])` section")
        }
        let missing = spec.missingInputs()
        if !missing.isEmpty { throw SpecErrors(missing) }

        let selection = try Backends.make(options.backend ?? spec.backend, threads: options.threads, precision: spec.computePrecision)
        observer(.backend(selection))

        let run = RunDirectory(url: spec.runDirectory(override: options.runDirectory))
        try run.create()
        let lock = try run.lock(command: options.command)
        defer { lock.release() }
        let removed = try run.removeStaleTemporaries()
        if !removed.isEmpty { observer(.cleanedUp(removed)) }
        try AtomicFile.write(try spec.normalizedYAML(), to: run.url.appendingPathComponent("spec.yaml"))

        var results: [StageResult] = []
        var failure: String?
        var interrupted = false
        var decider = StageDecider(spec: spec, options: options, run: run, backendName: selection.name, enabled: enabled)
        for stage in decider.considered {
            guard let impl = registry[stage] else {
                throw PipelineArgumentError("stage \(stage.rawValue) is not available in this build")
            }
            if failure == nil && options.cancellation.isRequested {
                // A stop request that came while no stage was polling for one: stop before the next stage.
                failure = "interrupted before stage \(stage.rawValue); completed stages are kept: run again to resume"
                interrupted = true
            }
            if failure != nil {
                results.append(StageResult(stage: stage, state: .notRun, reason: interrupted ? "interrupted" : "an earlier stage failed",
                                           durationSeconds: 0, metrics: [:], notes: []))
                continue
            }
            let d = try decider.decide(stage, impl: impl, inputs: try StageDecider.inputs(of: impl, spec: spec))
            let (dependencies, inputs, upstream, fingerprint, reason) = (d.dependencies, d.inputs, d.upstream, d.fingerprint, d.reason)
            let selected = options.only == nil || options.only == stage
            let existing = run.manifest(stage)

            guard let why = reason else {
                let m = existing!
                results.append(StageResult(stage: stage, state: .skipped, reason: "up to date", durationSeconds: 0,
                                           metrics: m.metrics, notes: m.notes))
                run.appendEvent(["event": .string("stage_skipped"), "stage": .string(stage.rawValue),
                                 "fingerprint": .string(fingerprint)])
                observer(.skipped(stage, reason: "up to date"))
                impl.removeRecoveryState(runDirectory: run.url)
                continue
            }
            guard selected else {
                throw PipelineArgumentError("--only \(options.only!.rawValue): upstream stage \(stage.rawValue) is not up to date (\(why)); run without --only first")
            }

            observer(.started(stage, reason: why))
            run.appendEvent(["event": .string("stage_started"), "stage": .string(stage.rawValue), "reason": .string(why),
                             "fingerprint": .string(fingerprint)])
            let started = Date()
            do {
                let tmp = try run.makeTemporaryStageDirectory(stage)
                let context = try StageContext(
                    spec: spec, runDirectory: run.url, output: tmp,
                    upstream: Dictionary(uniqueKeysWithValues: dependencies.map { ($0, run.stageURL($0)) }),
                    progress: ProgressReporter(stage: stage) { observer(.progress($0)) }, logger: logger, backend: selection,
                    cancellation: options.cancellation, collective: options.collective)
                // The other ranks wait for rank 0 between stages; training is the one they take part in.
                if stage == .train, options.collective.size > 1 { try Ranks.announce(.train, to: options.collective) }
                let report = try impl.run(context)
                let finished = Date()
                let manifest = StageManifest(
                    stage: stage, state: StageManifest.completeState, fingerprint: fingerprint,
                    formatVersion: impl.formatVersion, toolVersion: ToolInfo.version, inputs: inputs,
                    upstream: upstream, outputs: try StageManifest.collectOutputs(in: tmp),
                    startedAt: started.iso8601, finishedAt: finished.iso8601,
                    durationSeconds: finished.timeIntervalSince(started), metrics: report.metrics, notes: report.notes,
                    backend: impl.usesBackend ? selection.name : nil)
                try AtomicFile.write(try manifest.encoded(), to: tmp.appendingPathComponent("manifest.json"))
                try run.commit(stage, from: tmp)
                run.appendEvent(["event": .string("stage_finished"), "stage": .string(stage.rawValue),
                                 "duration_seconds": .number(manifest.durationSeconds)])
                results.append(StageResult(stage: stage, state: .ran, reason: why, durationSeconds: manifest.durationSeconds,
                                           metrics: report.metrics, notes: report.notes))
                observer(.finished(stage, manifest))
                impl.removeRecoveryState(runDirectory: run.url)
            } catch {
                let message = "\(error)"
                failure = "stage \(stage.rawValue) failed: \(message)"
                // A collective that broke (a rank died, or the launcher stopped the job) loses nothing committed: the
                // newest checkpoint is intact, so a rerun resumes.
                interrupted = (error as? StageFailure)?.interrupted ?? (error is CollectiveError)
                run.appendEvent(["event": .string("stage_failed"), "stage": .string(stage.rawValue), "error": .string(message)])
                results.append(StageResult(stage: stage, state: .failed, reason: message,
                                           durationSeconds: Date().timeIntervalSince(started), metrics: [:], notes: []))
                observer(.failed(stage, message: message))
                _ = try? run.removeStaleTemporaries()
            }
        }
        var gates: [GateResult] = []
        if failure == nil, let e = spec.evaluation, !e.gates.isEmpty, decider.considered.contains(.evaluate),
           options.only == nil || options.only == .evaluate {
            let evaluate = run.manifest(.evaluate)?.metrics ?? [:]
            do {
                let baseline = try e.baseline.map { try QualityGates.baselineMetrics(summary: spec.resolve($0)) }
                gates = QualityGates.check(e.gates, evaluate: evaluate, baseline: baseline)
            } catch {
                failure = "\(error)"
            }
            run.appendEvent(["event": .string("gates_checked"), "failed": .number(Double(gates.filter { !$0.passed }.count))])
        }
        return Result(runDirectory: run.url, backend: selection.name, stages: results, failure: failure, interrupted: interrupted,
                      gates: gates)
    }

    /// SHA-256 over the stage identity, its format version, its configuration, the backend it computes on (if
    /// it does), its upstream fingerprints and the content hashes of its input files.
    static func fingerprint(stage: any Stage, spec: JobSpec, inputs: [StageManifest.Input], upstream: [String],
                            backend: String?) throws -> String {
        var text = "qlora-stage-fingerprint 1\nstage \(stage.id.rawValue)\nformat \(stage.formatVersion)\n"
        text += "config " + String(decoding: try stage.configuration(of: spec), as: UTF8.self) + "\n"
        if let backend { text += "backend \(backend)\n" }
        for fp in upstream { text += "upstream \(fp)\n" }
        for (i, input) in inputs.enumerated() { text += "input \(i) \(input.sha256) \(input.size)\n" }
        return FileDigest.of(data: Data(text.utf8)).sha256
    }

    /// Why an existing stage directory cannot be reused, or nil when it can.
    static func staleness(_ manifest: StageManifest?, fingerprint: String, upstream: [String: StageManifest.Upstream],
                          directory: URL) -> String? {
        guard let manifest else {
            return FileManager.default.fileExists(atPath: directory.path) ? "no valid manifest" : "not run yet"
        }
        if manifest.state != StageManifest.completeState { return "previous run did not complete" }
        if manifest.fingerprint != fingerprint { return "configuration or inputs changed" }
        if manifest.upstream != upstream { return "upstream outputs changed" }
        return manifest.verifyOutputs(in: directory)
    }
}

/// Bad command-line use of `run` (exit 2).
public struct PipelineArgumentError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Pipeline {
    /// What `run` would do with each stage, decided as `run` decides it but without running, locking or writing
    /// anything: the stage's fingerprint (a cache key: equal fingerprints mean equal outputs) and whether it would run
    /// and why, or be skipped as up to date. `backendName` is the backend the computing stages would run on.
    public struct PlannedStage: Sendable, Encodable {
        public var stage: String
        public var fingerprint: String
        public var willRun: Bool
        public var reason: String
    }

    public static func plan(spec: JobSpec, options: Options = Options(), backendName: String) throws -> [PlannedStage] {
        let run = RunDirectory(url: spec.runDirectory(override: options.runDirectory))
        var decider = StageDecider(spec: spec, options: options, run: run, backendName: backendName, enabled: StageID.enabled(by: spec))
        var planned: [PlannedStage] = []
        for stage in decider.considered {
            guard let impl = registry[stage] else { throw PipelineArgumentError("stage \(stage.rawValue) is not available in this build") }
            let inputs: [StageManifest.Input]
            do { inputs = try StageDecider.inputs(of: impl, spec: spec) } catch {
                // Not known until the input exists: the stage cannot be up to date.
                decider.unknown(stage)
                planned.append(PlannedStage(stage: stage.rawValue, fingerprint: "", willRun: true, reason: "input missing: \(error)"))
                continue
            }
            let d = try decider.decide(stage, impl: impl, inputs: inputs)
            planned.append(PlannedStage(stage: stage.rawValue, fingerprint: d.fingerprint, willRun: d.reason != nil, reason: d.reason ?? "up to date"))
        }
        return planned
    }
}

/// How `Pipeline.run` and `Pipeline.plan` decide each stage, in pipeline order: its fingerprint (configuration,
/// format version, backend, upstream fingerprints, input hashes) and why it must run, or nil when it is up to date.
struct StageDecider {
    let spec: JobSpec
    let options: Pipeline.Options
    let run: RunDirectory
    let backendName: String
    let enabled: [StageID]
    private var fingerprints: [StageID: String] = [:]
    private var rerun: Set<StageID> = []

    init(spec: JobSpec, options: Pipeline.Options, run: RunDirectory, backendName: String, enabled: [StageID]) {
        self.spec = spec
        self.options = options
        self.run = run
        self.backendName = backendName
        self.enabled = enabled
    }

    /// The stages the options select, in order: with --only, that stage and its upstream; with --to, the stages up
    /// to it in pipeline order.
    var considered: [StageID] {
        enabled.filter { stage in
            (options.only.map { $0 == stage || $0.dependsOn(stage) } ?? true) && (options.to.map { stage <= $0 } ?? true)
        }
    }

    struct Decision {
        var dependencies: [StageID]
        var inputs: [StageManifest.Input]
        var upstream: [String: StageManifest.Upstream]
        var fingerprint: String
        /// Why the stage runs; nil when it is up to date.
        var reason: String?
    }

    /// The stage's input files with their hashes (throws when one cannot be read).
    static func inputs(of impl: any Stage, spec: JobSpec) throws -> [StageManifest.Input] {
        try impl.inputFiles(of: spec).map { url in
            let d = try FileDigest.of(file: url)
            return StageManifest.Input(path: url.path, sha256: d.sha256, size: d.size)
        }
    }

    /// A stage whose fingerprint cannot be known (a missing input): it and everything downstream would run.
    mutating func unknown(_ stage: StageID) {
        fingerprints[stage] = ""
        rerun.insert(stage)
    }

    mutating func decide(_ stage: StageID, impl: any Stage, inputs: [StageManifest.Input]) throws -> Decision {
        let dependencies = (stage.upstream + stage.optionalUpstream).filter { enabled.contains($0) }
        var upstream: [String: StageManifest.Upstream] = [:]
        for dep in dependencies {
            guard let m = run.manifest(dep), let fp = fingerprints[dep] else { continue }
            upstream[dep.rawValue] = StageManifest.Upstream(fingerprint: fp, outputsDigest: m.outputsDigest)
        }
        let fingerprint = try Pipeline.fingerprint(stage: impl, spec: spec, inputs: inputs, upstream: dependencies.map { fingerprints[$0] ?? "" },
                                                   backend: impl.usesBackend ? backendName : nil)
        fingerprints[stage] = fingerprint
        let selected = options.only == nil || options.only == stage
        var reason: String?
        if options.force && selected { reason = "--force" }
        else if let from = options.from, stage == from || stage.dependsOn(from) { reason = "--from \(from.rawValue)" }
        else if let up = dependencies.first(where: { rerun.contains($0) }) { reason = "upstream stage \(up.rawValue) was rerun" }
        else { reason = Pipeline.staleness(run.manifest(stage), fingerprint: fingerprint, upstream: upstream, directory: run.stageURL(stage)) }
        if reason != nil { rerun.insert(stage) }
        return Decision(dependencies: dependencies, inputs: inputs, upstream: upstream, fingerprint: fingerprint, reason: reason)
    }
}
