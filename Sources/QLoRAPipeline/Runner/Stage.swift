import Foundation
import QLoRADistributed
import Logging
import QLoRABackends
import QLoRACore
import QLoRAFormats

/// One step of the pipeline. A stage reads its spec section, upstream artifacts and input files, and
/// writes its artifacts into `context.output` (a temporary directory the runner renames into place).
/// It never calls another stage.
public protocol Stage: Sendable {
    var id: StageID { get }
    /// Bump when the stage's algorithm or output format changes: old artifacts then count as stale.
    var formatVersion: Int { get }
    /// The spec values the stage depends on, as canonical JSON (part of the fingerprint).
    func configuration(of spec: JobSpec) throws -> Data
    /// Files outside the run directory whose content the stage reads (hashed into the fingerprint).
    func inputFiles(of spec: JobSpec) -> [URL]
    /// Whether the stage computes on `context.backend`: the backend that ran is then part of its fingerprint
    /// and manifest (results differ between backends in the last bits).
    var usesBackend: Bool { get }
    func run(_ context: StageContext) throws -> StageReport
    /// Removes what the stage kept outside its directory to survive a crash (the train stage's checkpoints), once
    /// its outputs are committed: the runner calls it after the commit, and when it finds the stage up to date (a
    /// process killed between the commit and this cleanup leaves them behind). Never before: a kill between the
    /// end of `run` and the commit must still find them.
    func removeRecoveryState(runDirectory: URL)
}

extension Stage {
    public var usesBackend: Bool { false }
    public func removeRecoveryState(runDirectory: URL) {}
}

public struct StageContext: Sendable {
    public var spec: JobSpec
    public var runDirectory: URL
    /// Where to write artifacts (the temporary stage directory).
    public var output: URL
    /// Final directories of upstream stages.
    public var upstream: [StageID: URL]
    public var progress: ProgressReporter
    public var logger: Logger
    /// The backend the run computes on (chosen once per run by `Pipeline.run`).
    public var backend: BackendSelection
    /// Stop requests (SIGINT/SIGTERM, turned into requests by the CLI): a stage that polls it stops at a safe point.
    public var cancellation: Cancellation
    /// The ranks of a data-parallel job (one process: `SingleProcess`). Only the train stage uses them; the others
    /// run on rank 0 alone (docs/DISTRIBUTED.md).
    public var collective: any Collective

    /// `backend` nil: the spec's choice.
    public init(spec: JobSpec, runDirectory: URL, output: URL, upstream: [StageID: URL], progress: ProgressReporter,
                logger: Logger, backend: BackendSelection? = nil, cancellation: Cancellation = Cancellation(),
                collective: any Collective = SingleProcess()) throws {
        self.spec = spec
        self.runDirectory = runDirectory
        self.output = output
        self.upstream = upstream
        self.progress = progress
        self.logger = logger
        self.backend = try backend ?? Backends.make(spec.backend, precision: spec.computePrecision)
        self.cancellation = cancellation
        self.collective = collective
    }
}

/// What a stage tells the runner besides its files: metrics for the manifest and the CI summary.
public struct StageReport: Sendable {
    public var metrics: [String: Double]
    /// Short human lines (e.g. "1,204 duplicates removed") printed after the stage and kept in the summary.
    public var notes: [String]

    public init(metrics: [String: Double] = [:], notes: [String] = []) {
        self.metrics = metrics
        self.notes = notes
    }
}

/// A stage failure with its cause; the CLI prints it and exits 1.
public struct StageFailure: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The stage stopped on a stop request (SIGINT/SIGTERM) at a safe point, with its progress saved: running again
    /// resumes (exit status 75, `RunOutcome.interrupted`).
    public var interrupted: Bool
    public init(_ message: String, interrupted: Bool = false) {
        self.message = message
        self.interrupted = interrupted
    }
    public var description: String { message }
}

/// Canonical JSON of a Codable value (sorted keys) for fingerprints.
public func canonicalJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(value)
}
