import CQLoRAKernels
import Foundation

/// Small building blocks of the CPU kernels: fixed-order SIMD reductions and a deterministic parallel loop.
/// (The exp-heavy row kernels are C, in CQLoRAKernels' train_kernels.c.)
///
/// Reductions accumulate in 8 lanes (element `i` goes to lane `i % 8`, lanes combined in a fixed tree, the
/// tail added last), so their rounding depends only on the length, never on threads.
enum CPUKernels {
    typealias Lanes = SIMD8<Float>

    /// The kernels' e^x (`qlk_exp`), for tests.
    static func exp(_ x: Float) -> Float { qlk_exp(x) }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Lanes {
        UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
    }

    @inline(__always) static func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
    }

    /// `Σ a[i]·b[i]`.
    @inline(__always) static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = Lanes(repeating: 0)
        var i = 0
        while i + 8 <= n {
            acc.addProduct(load(a + i), load(b + i))
            i += 8
        }
        var s = acc.sum()
        while i < n {
            s += a[i] * b[i]
            i += 1
        }
        return s
    }

    /// `max a[i]` (−∞ for n = 0).
    @inline(__always) static func maximum(_ a: UnsafePointer<Float>, _ n: Int) -> Float {
        var i = 0
        var m = -Float.infinity
        if n >= 8 {
            var acc = load(a)
            i = 8
            while i + 8 <= n {
                acc = pointwiseMax(acc, load(a + i))
                i += 8
            }
            m = acc.max()
        }
        while i < n {
            m = Swift.max(m, a[i])
            i += 1
        }
        return m
    }

    /// Runs `body` over `0 ..< count` cut into chunks of `chunk` items, on up to `threads` threads. Chunk
    /// boundaries depend only on `count` and `chunk`, so a body that writes per-chunk results is
    /// deterministic for any thread count; small jobs (one chunk or one thread) run inline.
    static func parallelChunks(_ count: Int, chunk: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let chunks = (count + chunk - 1) / chunk
        let workers = min(threads, chunks)
        if workers <= 1 {
            for c in 0..<chunks { body((c * chunk)..<min(count, (c + 1) * chunk)) }
            return
        }
        // The body runs on several threads at once; callers guarantee that the chunks touch disjoint memory.
        withoutActuallyEscaping(body) { body in
            let task = UncheckedSendable(body)
            DispatchQueue.concurrentPerform(iterations: workers) { w in
                var c = w
                while c < chunks {
                    task.value((c * chunk)..<min(count, (c + 1) * chunk))
                    c += workers
                }
            }
        }
    }
}

/// A pointer that crosses into `parallelChunks` workers; each worker touches a disjoint part.
struct SharedPointer<T>: @unchecked Sendable {
    let base: UnsafeMutablePointer<T>
    init(_ base: UnsafeMutablePointer<T>) { self.base = base }
}

/// A value handed to worker threads whose safety the caller has checked (disjoint writes).
struct UncheckedSendable<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
