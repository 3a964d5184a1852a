import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Float tensors (optimizer state) in a file-backed shared mapping with a resident-memory budget: the CPU
/// side of a paged optimizer (spec paged-optimizers §2-3; the CUDA backend adds the device side).
///
/// Each tensor starts on a page boundary of one backing file. `withTensor` makes a tensor resident and marks
/// it most recently used; when the tensors touched since their last eviction exceed `budgetBytes`, the least
/// recently used ones are handed back to the OS (`madvise(MADV_DONTNEED)` on a shared file mapping drops the
/// pages from this process; their contents live on in the page cache and the file, and are faulted back in on
/// the next access). So the state can be larger than the budget, and the values are exactly the same as
/// with in-memory arrays: only where they live changes. The backing file is deleted on `deinit` (it is scratch
/// space; checkpoints copy the values out).
public final class PagedFloatStore: @unchecked Sendable {
    public let counts: [Int]
    public let budgetBytes: Int?
    public let path: String
    private let base: UnsafeMutableRawPointer
    private let length: Int
    private let offsets: [Int]
    private let pageSize: Int
    private var recency: [Int] = []  // tensor indices, least recently used first
    private var residentBytes = 0
    private let lock = NSLock()
    /// How many tensor evictions the budget caused (for reports).
    public private(set) var evictions = 0

    /// Creates `counts.count` zero-filled tensors in a new file at `path` (replacing any file there).
    public init(path: String, counts: [Int], budgetBytes: Int?) throws {
        self.counts = counts
        self.budgetBytes = budgetBytes
        self.path = path
        pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        var offsets: [Int] = []
        var end = 0
        for c in counts {
            offsets.append(end)
            end += (c * 4 + pageSize - 1) / pageSize * pageSize
        }
        self.offsets = offsets
        length = max(end, pageSize)
        unlink(path)
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw PagedStoreError("\(path): create failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // The file's blocks are allocated now, not when a page is first written: a sparse file on a full disk
        // would turn that first write through the mapping into SIGBUS (found by scripts/fault-inject.sh: a full
        // disk during training killed the process). posix_fallocate fails with ENOSPC instead, naming the file.
        let status = posix_fallocate(fd, 0, off_t(length))
        guard status == 0 else {
            unlink(path)
            throw PagedStoreError("\(path): cannot allocate \(length) bytes for the optimizer state: \(String(cString: strerror(status)))")
        }
        guard let p = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            unlink(path)
            throw PagedStoreError("\(path): mmap failed: \(String(cString: strerror(errno)))")
        }
        base = p
    }

    deinit {
        munmap(base, length)
        unlink(path)
    }

    /// Total bytes of state (page-rounded per tensor).
    public var totalBytes: Int { length }

    /// Calls `body` with tensor `index`'s values (resident while `body` runs).
    public func withTensor<R>(_ index: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        lock.lock()
        touch(index)
        lock.unlock()
        let pointer = (base + offsets[index]).assumingMemoryBound(to: Float.self)
        return try body(UnsafeMutableBufferPointer(start: pointer, count: counts[index]))
    }

    /// Copies tensor `index` out.
    public func values(_ index: Int) -> [Float] { withTensor(index) { Array($0) } }

    /// Overwrites tensor `index`.
    public func set(_ index: Int, _ values: [Float]) {
        precondition(values.count == counts[index], "tensor \(index) holds \(counts[index]) values, got \(values.count)")
        withTensor(index) { buffer in _ = buffer.update(fromContentsOf: values) }
    }

    private func bytes(_ index: Int) -> Int { (counts[index] * 4 + pageSize - 1) / pageSize * pageSize }

    private func touch(_ index: Int) {
        if let at = recency.firstIndex(of: index) {
            recency.remove(at: at)
        } else {
            residentBytes += bytes(index)
        }
        recency.append(index)
        guard let budget = budgetBytes else { return }
        while residentBytes > budget, recency.count > 1 {
            let victim = recency.removeFirst()
            if bytes(victim) > 0 { madvise(base + offsets[victim], bytes(victim), MADV_DONTNEED) }
            residentBytes -= bytes(victim)
            evictions += 1
        }
    }
}

public struct PagedStoreError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
