import QLoRACore

/// The bytes a device backend's allocations hold, now and at most (the peak `qlora bench train` reports). Counted
/// at each cuMemAlloc/cuMemFree of `CUDAContext`, so it is what qlora asked for: the driver's and cuBLASLt's own
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

extension CUDABackend: DeviceMemoryReporting {
    public var deviceMemory: (inUse: Int, peak: Int) {
        let m = context.memory
        return (m.inUse, m.peak)
    }

    public func resetDeviceMemoryPeak() { context.resetMemoryPeak() }
}
