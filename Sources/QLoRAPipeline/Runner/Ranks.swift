import Foundation
import Logging
import QLoRABackends
import QLoRACore
import QLoRADistributed

/// How the ranks of a data-parallel `qlora run` work together (docs/DISTRIBUTED.md).
///
/// Rank 0 runs the pipeline (`Pipeline.run`): it alone locks the run directory, runs ingest, tokenize, prepare,
/// evaluate and package, and writes every file. The other ranks wait for its announcements: `train` when the
/// train stage starts (they load the committed tokenize and prepare outputs from the shared run directory and
/// take their share of every step), and `exit` with the run's exit status when rank 0 is done.
public enum Ranks {
    public enum Announcement: Equatable, Sendable {
        case train
        case exit(Int32)
    }

    /// Rank 0: tells the other ranks what comes next.
    public static func announce(_ announcement: Announcement, to collective: any Collective) throws {
        var message: [Int64] = switch announcement {
        case .train: [1, 0]
        case .exit(let code): [2, Int64(code)]
        }
        try collective.broadcast(&message, root: 0)
    }

    /// Rank 0, at the very end: the run's exit status for every rank. False when it could not be delivered (a rank
    /// is gone; the timeout or a stop request bounds the wait): then MPI cannot be finalized in step either.
    @discardableResult
    public static func finish(_ code: Int32, collective: any Collective) -> Bool {
        guard collective.size > 1 else { return true }
        return (try? announce(.exit(code), to: collective)) != nil
    }

    /// A rank other than 0: waits for rank 0's announcements and takes part in training until rank 0 announces
    /// the exit status, which it returns (`announced`: rank 0 said so, and MPI can be finalized in step). A broken collective (a rank died, or a stop request that the other ranks
    /// did not answer) ends it with 75, interrupted: the job's newest checkpoint is intact and a rerun resumes.
    public static func follow(spec: JobSpec, options: Pipeline.Options, logger: Logger) -> (code: Int32, announced: Bool) {
        let collective = options.collective
        let runDirectory = spec.runDirectory(override: options.runDirectory)
        var trained = false
        while true {
            var message: [Int64] = [0, 0]
            do {
                try message.withUnsafeMutableBytes { try collective.announcement($0, root: 0) }
            } catch {
                logger.error("\(error)")
                return (RunOutcome.interrupted.exitCode, false)
            }
            switch message[0] {
            case 1 where !trained:
                trained = true
                do {
                    let selection = try Backends.make(options.backend ?? spec.backend, threads: options.threads, precision: spec.computePrecision)
                    try TrainStage.follow(spec: spec, runDirectory: runDirectory, backend: selection.backend, collective: collective,
                                          cancellation: options.cancellation)
                } catch let error as CollectiveError {
                    logger.error("\(error)")
                    return (RunOutcome.interrupted.exitCode, false)
                } catch {
                    // Rank 0 fails the same way (same data, same steps) and says so; wait for its exit status.
                    logger.error("train stage: \(error)")
                }
            case 2:
                return (Int32(truncatingIfNeeded: message[1]), true)
            default:
                logger.error("unexpected announcement \(message) from rank 0")
                return (RunOutcome.stageFailed.exitCode, false)
            }
        }
    }
}
