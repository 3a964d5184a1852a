import Foundation
import Testing
import QLoRACPU

/// The CPU backend's worker pool (Sources/CQLoRAKernels/pool.c): every range runs exactly once, regions back to back
/// and after the workers went to sleep, nested and concurrent regions (which run inline), and teardown.
@Suite struct WorkerPoolTests {
    /// Counts per index, updated from any thread. An NSLock (pthread) rather than Synchronization's Mutex: that one
    /// locks with futex system calls ThreadSanitizer does not see, so every update was reported as a race.
    final class Hits: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [Int]
        init(_ count: Int) { counts = Array(repeating: 0, count: count) }
        func add(_ range: Range<Int>, _ amount: Int = 1) { lock.withLock { for i in range { counts[i] += amount } } }
        var values: [Int] { lock.withLock { counts } }
    }

    /// Runs one region and returns how many times each index was visited.
    private static func visits(_ pool: WorkerPool, count: Int, parts: Int) -> [Int] {
        let hits = Hits(count)
        pool.forEachRange(count, parts: parts) { hits.add($0) }
        return hits.values
    }

    @Test(arguments: [1, 2, 3, 5])
    func everyIndexRunsOnceInEveryRegion(threads: Int) {
        let pool = WorkerPool(threads: threads)
        for (count, parts) in [(1, 4), (7, 3), (100, 2), (1000, 16), (5, 5), (0, 2)] {
            for _ in 0..<50 {
                #expect(Self.visits(pool, count: count, parts: parts) == Array(repeating: 1, count: count))
            }
        }
    }

    @Test func regionsAfterTheWorkersSleptStillRun() throws {
        let pool = WorkerPool(threads: 3)
        #expect(Self.visits(pool, count: 64, parts: 3) == Array(repeating: 1, count: 64))
        Thread.sleep(forTimeInterval: 0.05)   // past the spin: the workers wait on the condition variable
        #expect(Self.visits(pool, count: 64, parts: 3) == Array(repeating: 1, count: 64))
    }

    @Test func nestedAndConcurrentRegionsRunInline() async {
        let pool = WorkerPool(threads: 2)
        let inner = Hits(4)
        pool.forEachRange(4, parts: 2) { outer in
            for o in outer {
                pool.forEachRange(10, parts: 2) { r in inner.add(o..<(o + 1), r.count) }
            }
        }
        #expect(inner.values == [10, 10, 10, 10])
        let results = await withTaskGroup(of: [Int].self) { group in
            for _ in 0..<4 { group.addTask { Self.visits(pool, count: 300, parts: 2) } }
            return await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        #expect(results.allSatisfy { $0 == Array(repeating: 1, count: 300) })
    }

    @Test func poolsComeAndGo() {
        for threads in 1...4 {
            let pool = WorkerPool(threads: threads)
            #expect(pool.threads == threads)
            #expect(Self.visits(pool, count: 10, parts: threads) == Array(repeating: 1, count: 10))
        }
    }
}
