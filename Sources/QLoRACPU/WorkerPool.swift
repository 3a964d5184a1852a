import CQLoRAKernels
import QLoRACore

/// The CPU backend's own worker threads for short parallel regions (Sources/CQLoRAKernels/pool.c): decoding runs
/// about two hundred GEMVs of tens of microseconds per token, and waking Dispatch's threads for each cost more
/// than the second thread saved (measured with `qlora bench generate --threads 2` on the 2-core EPYC: 39 tokens/s
/// through Dispatch, against 43.5 with one thread). Workers spin briefly between regions, then sleep.
/// One pool per backend; it stops its threads when the last copy of the backend goes.
public final class WorkerPool: @unchecked Sendable {
    private let pool: OpaquePointer?
    /// Threads a region runs on, the caller included.
    public let threads: Int

    public init(threads: Int) {
        self.threads = max(1, threads)
        pool = self.threads > 1 ? qlk_pool_create(Int32(self.threads)) : nil
    }

    deinit { qlk_pool_destroy(pool) }

    /// `body` over `0..<count` cut into `parts` contiguous ranges, `p·count/parts ..< (p+1)·count/parts`, run on the
    /// pool's threads (inline when `parts` is 1, the pool has no workers, or a region is already running on it).
    public func forEachRange(_ count: Int, parts: Int, _ body: (Range<Int>) -> Void) {
        let parts = max(1, min(parts, count))
        guard parts > 1, let pool else {
            Parallel.forEachRange(count, parts: 1, body)
            return
        }
        withoutActuallyEscaping(body) { escaping in
            var region = Region(count: count, parts: parts, body: escaping)
            withUnsafeMutablePointer(to: &region) { r in
                qlk_pool_run(pool, { context, p in
                    let region = context!.assumingMemoryBound(to: Region.self).pointee
                    let p = Int(p)
                    region.body((p * region.count / region.parts)..<((p + 1) * region.count / region.parts))
                }, r, Int64(parts))
            }
        }
    }

    private struct Region {
        let count: Int
        let parts: Int
        let body: (Range<Int>) -> Void
    }
}
