import Dispatch

/// Data-parallel loops over disjoint index ranges.
///
/// The body may capture raw pointers (not `Sendable`): callers promise that the ranges write disjoint
/// memory. The split depends only on `count` and `parts`, never on timing, so results are deterministic.
public enum Parallel {
    private struct Body: @unchecked Sendable {
        let run: (Range<Int>) -> Void
    }

    /// Runs `body` over `0..<count` cut into `parts` contiguous ranges (concurrently when `parts > 1`).
    public static func forEachRange(_ count: Int, parts: Int, _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(parts, count))
        if parts <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            let box = Body(run: escaping)
            DispatchQueue.concurrentPerform(iterations: parts) { p in
                box.run((p * count / parts)..<((p + 1) * count / parts))
            }
        }
    }
}
