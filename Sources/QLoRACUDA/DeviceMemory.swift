import QLoRACore

/// The bytes a device backend's allocations hold, now and at most (the peak `qlora bench train` reports). Counted
/// at each `CUDAContext.allocate`/`free` in size-class bytes, so it is what qlora's live tensors and buffers hold, like
/// PyTorch's `max_memory_allocated`: blocks kept in `DeviceBlockCache` and the driver's and cuBLASLt's own
/// reservations (the context, module images) are not in it.
struct DeviceMemoryCounter: Sendable, Equatable {
    private(set) var inUse = 0
    private(set) var peak = 0

    mutating func allocated(_ bytes: Int) {
        inUse += bytes
        peak = max(peak, inUse)
    }

    mutating func freed(_ bytes: Int) {
        precondition(bytes <= inUse, "device memory counter: freeing \(bytes) bytes with \(inUse) allocated")
        inUse -= bytes
    }

    /// The peak from now on starts at what is held now.
    mutating func resetPeak() { peak = inUse }
}

/// Device blocks freed by tensors, kept for the next allocation of the same size class instead of `cuMemFree` (which
/// waits for the whole device) and `cuMemAlloc` (slow): a training step allocates the same shapes every step, so
/// after the first one nearly every allocation is a cache hit. A size class rounds a request up by less than 1/8.
struct DeviceBlockCache: Sendable {
    private var free: [Int: [UInt64]] = [:]
    /// Bytes in cached blocks.
    private(set) var bytes = 0

    /// `bytes` rounded up: to 512 below 8 KiB, else to a sixteenth of the power of two at or above it.
    static func sizeClass(_ bytes: Int) -> Int {
        let n = max(bytes, 1)
        guard n > 8192 else { return (n + 511) / 512 * 512 }
        let power = 1 << (Int.bitWidth - (n - 1).leadingZeroBitCount)
        let step = power / 16
        return (n + step - 1) / step * step
    }

    /// A cached block of exactly `size` (a size class), if any; most recently freed first.
    mutating func take(_ size: Int) -> UInt64? {
        guard let p = free[size]?.popLast() else { return nil }
        bytes -= size
        return p
    }

    mutating func put(_ p: UInt64, size: Int) {
        free[size, default: []].append(p)
        bytes += size
    }

    /// Every cached block, removed from the cache.
    mutating func drain() -> [UInt64] {
        defer { free = [:]; bytes = 0 }
        return free.values.flatMap { $0 }
    }
}

extension CUDABackend: DeviceMemoryReporting {
    public var deviceMemory: (inUse: Int, peak: Int) {
        let m = context.memory
        return (m.inUse, m.peak)
    }

    public func resetDeviceMemoryPeak() { context.resetMemoryPeak() }
}
