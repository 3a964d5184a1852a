/// How a `qlora run` ended, as its exit status says it (the CI contract: a job runner decides from the code alone
/// whether to retry). `summary.json` records the same as `status`, `exit_code` and `resumable`.
public enum RunOutcome: String, Sendable, CaseIterable {
    /// Every stage up to date.
    case succeeded
    /// A stage failed; retrying the same job will fail the same way (bad data, a missing file, a bug).
    case stageFailed = "failed"
    /// The spec or the command line is invalid: nothing ran.
    case badSpec = "invalid"
    /// A quality gate of `evaluation.gates` failed; every artifact was written.
    case gateFailed = "gate_failed"
    /// Another process holds the run directory.
    case locked
    /// Stopped by SIGINT/SIGTERM with its progress saved: running again resumes (EX_TEMPFAIL).
    case interrupted

    public var exitCode: Int32 {
        switch self {
        case .succeeded: 0
        case .stageFailed: 1
        case .badSpec: 2
        case .gateFailed: 3
        case .locked: 4
        case .interrupted: 75
        }
    }

    /// Whether running the same job again can make progress without changing anything.
    public var resumable: Bool { self == .interrupted || self == .locked }
}
