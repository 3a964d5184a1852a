import Dispatch

/// Data-parallel loops over disjoint index ranges: the one place qlora starts worker threads for a loop.
///
/// The body may capture raw pointers (not `Sendable`): callers promise that the ranges write disjoint
/// memory. The split depends only on the arguments, never on timing, so results are deterministic.
public enum Parallel {
    private struct Body: @unchecked Sendable {
        let run: (Range<Int>) -> Void
    }

    /// Runs `body` over `0..<count` cut into `parts` contiguous ranges (concurrently when `parts > 1`):
    /// range `p` is `p·count/parts ..< (p+1)·count/parts`.
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

    /// Runs `body` over `0..<count` cut into chunks of `chunk` items (the last one shorter), on up to `threads`
    /// threads, worker `w` taking chunks `w, w + workers, …`. Chunk boundaries depend only on `count` and
    /// `chunk`, so a body that writes per-chunk results is deterministic for any thread count; small jobs (one
    /// chunk or one thread) run inline, in chunk order.
    public static func forEachChunk(_ count: Int, chunk: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunk = max(1, chunk)
        let chunks = (count + chunk - 1) / chunk
        let workers = min(threads, chunks)
        if workers <= 1 {
            for c in 0..<chunks { body((c * chunk)..<min(count, (c + 1) * chunk)) }
            return
        }
        withoutActuallyEscaping(body) { escaping in
            let box = Body(run: escaping)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var c = w
                while c < chunks {
                    box.run((c * chunk)..<min(count, (c + 1) * chunk))
                    c += workers
                }
            }
        }
    }
}
