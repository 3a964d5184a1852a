import Synchronization

/// A request to stop a long operation at its next safe point, made by whoever owns the process (the CLI turns
/// SIGINT/SIGTERM into one) and polled by the operation. Library code never installs signal handlers itself.
///
/// `acceptsRequests` says whether an operation is polling right now: a signal handler that finds nobody polling
/// can fall back to the default action (end the process), so an interrupt is never silently deferred.
public final class Cancellation: Sendable {
    private let requested = Atomic<Bool>(false)
    private let polling = Atomic<Int>(0)

    public init() {}

    /// Asks the polling operation to stop (async-signal-safe: one atomic store).
    public func request() { requested.store(true, ordering: .relaxed) }

    public var isRequested: Bool { requested.load(ordering: .relaxed) }

    /// Whether some operation is inside `polling(_:)` (async-signal-safe: one atomic load).
    public var acceptsRequests: Bool { polling.load(ordering: .relaxed) > 0 }

    /// Runs `body`, during which requests are accepted (`body` checks `isRequested` at its safe points).
    public func polling<T>(_ body: () throws -> T) rethrows -> T {
        polling.add(1, ordering: .relaxed)
        defer { polling.subtract(1, ordering: .relaxed) }
        return try body()
    }
}
