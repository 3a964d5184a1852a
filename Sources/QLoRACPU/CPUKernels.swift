import CQLoRAKernels
import Foundation
import QLoRACore

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

    /// `Σ a[i]·b[i]`. A multiply then an add per lane: `addProduct` (a fused multiply-add) became 8 calls into
    /// libm's `fmaf` per step, since the Swift targets are compiled for baseline x86-64 without FMA.
    @inline(__always) static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
        var acc = Lanes(repeating: 0)
        var i = 0
        while i + 8 <= n {
            acc += load(a + i) * load(b + i)
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

    /// `Parallel.forEachChunk` (QLoRACore) under the name the CPU kernels call it by: `body` over `0 ..< count`
    /// in chunks of `chunk` items on up to `threads` threads, chunk boundaries independent of the thread count.
    @inline(__always)
    static func parallelChunks(_ count: Int, chunk: Int, threads: Int, _ body: (Range<Int>) -> Void) {
        Parallel.forEachChunk(count, chunk: chunk, threads: threads, body)
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
