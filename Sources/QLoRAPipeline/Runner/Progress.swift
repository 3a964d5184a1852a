import Foundation

/// What a long operation reports; the CLI renders it as a bar (terminal) or periodic lines (logs/CI).
public struct ProgressSnapshot: Sendable {
    public enum Unit: String, Sendable { case bytes, items, steps, tokens }

    public var stage: StageID
    public var label: String
    public var completed: Int64
    public var total: Int64?
    public var unit: Unit
    /// Seconds since `start`.
    public var elapsed: Double
    /// Units already done when the operation started (a resumed run): not counted in the rate.
    public var resumedFrom: Int64 = 0
    /// Extra text shown after the numbers (e.g. "loss 1.23").
    public var detail: String
    public var finished: Bool

    /// Units per second over the operation so far (work done before a resume excluded).
    public var rate: Double { elapsed > 0 ? Double(max(0, completed - resumedFrom)) / elapsed : 0 }

    /// Estimated seconds left, when the total is known and some work is done.
    public var eta: Double? {
        guard let total, completed > resumedFrom, rate > 0 else { return nil }
        return Double(max(0, total - completed)) / rate
    }

    public var fraction: Double? {
        guard let total, total > 0 else { return nil }
        return min(1, Double(completed) / Double(total))
    }
}

/// Handed to a stage to report progress; throttles updates to at most 10 per second so a hot loop can
/// call `update` freely.
public final class ProgressReporter: @unchecked Sendable {
    private let stage: StageID
    private let sink: @Sendable (ProgressSnapshot) -> Void
    private let lock = NSLock()
    private var label = ""
    private var total: Int64?
    private var unit: ProgressSnapshot.Unit = .items
    private var startTime = Date()
    private var resumedFrom: Int64 = 0
    private var lastEmit = Date.distantPast

    public init(stage: StageID, sink: @escaping @Sendable (ProgressSnapshot) -> Void) {
        self.stage = stage
        self.sink = sink
    }

    public func start(_ label: String, total: Int64?, unit: ProgressSnapshot.Unit) {
        lock.lock()
        self.label = label
        self.total = total
        self.unit = unit
        startTime = Date()
        resumedFrom = 0
        lastEmit = .distantPast
        lock.unlock()
        emit(completed: 0, detail: "", finished: false, force: true)
    }

    /// The operation continues from `completed` units done earlier (a resumed run): the clock restarts
    /// there, so the rate and ETA describe this run's pace.
    public func resume(at completed: Int64) {
        lock.lock()
        startTime = Date()
        resumedFrom = completed
        lastEmit = .distantPast
        lock.unlock()
        emit(completed: completed, detail: "resumed", finished: false, force: true)
    }

    public func update(_ completed: Int64, detail: String = "") {
        emit(completed: completed, detail: detail, finished: false, force: false)
    }

    public func finish(_ completed: Int64, detail: String = "") {
        emit(completed: completed, detail: detail, finished: true, force: true)
    }

    private func emit(completed: Int64, detail: String, finished: Bool, force: Bool) {
        let now = Date()
        lock.lock()
        if !force && now.timeIntervalSince(lastEmit) < 0.1 {
            lock.unlock()
            return
        }
        lastEmit = now
        let snapshot = ProgressSnapshot(stage: stage, label: label, completed: completed, total: total, unit: unit,
                                        elapsed: now.timeIntervalSince(startTime), resumedFrom: resumedFrom, detail: detail,
                                        finished: finished)
        lock.unlock()
        sink(snapshot)
    }
}
