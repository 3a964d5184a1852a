import CCUDA
import Foundation
import QLoRACore

/// Which tensors' AdamW moments (an m and a v, fp32: 8 bytes per parameter) stay in device memory under a budget, and
/// how big the two staging buffers the others stream through are. Pure arithmetic, tested without a GPU
/// (Tests/QLoRACUDATests/MomentPagingPlanTests.swift).
///
/// Everything fits: all resident, no staging. Otherwise the staging buffers (each the m|v of the largest tensor that
/// streams) come out of the budget first, and tensors become resident in update order while they fit (first fit:
/// one too big is skipped, later smaller ones may still fit). The resident set then stays fixed: the optimizer sweeps
/// the tensors in the same order every step, and least-recently-used eviction on a cyclic sweep evicts exactly the
/// tensor needed soonest, so every access would miss; a fixed set hits on every resident tensor. Below two staging
/// buffers nothing is resident and the device holds the staging buffers alone (the floor, over the budget).
struct MomentPagingPlan: Equatable, Sendable {
    /// Per tensor: its moments live in device memory between updates.
    let resident: [Bool]
    /// Floats in each of the two staging buffers (0 when nothing streams).
    let slotFloats: Int
    /// Device bytes the moments take: the resident tensors' plus the staging buffers.
    let deviceBytes: Int

    init(counts: [Int], budgetBytes: Int?) {
        let need = counts.map { 8 * $0 }
        guard let budget = budgetBytes, need.reduce(0, +) > budget else {
            resident = counts.map { _ in true }
            slotFloats = 0
            deviceBytes = need.reduce(0, +)
            return
        }
        let largest = counts.max() ?? 0
        var room = budget - 2 * 8 * largest
        var resident: [Bool] = []
        for bytes in need {
            let fits = room >= bytes
            resident.append(fits)
            if fits { room -= bytes }
        }
        self.resident = resident
        slotFloats = 2 * (zip(counts, resident).filter { !$0.1 }.map(\.0).max() ?? 0)
        deviceBytes = zip(need, resident).filter(\.1).map(\.0).reduce(0, +) + 2 * 4 * slotFloats
    }

    /// One update of every tensor as the two streams run it, in the order the host issues the operations.
    /// Streamed tensor j (the j-th not resident) goes through staging buffer j % 2: its load is issued before tensor
    /// j − 1's update waits (double buffering); a buffer is loaded again only after the copy stream has stored its
    /// previous tensor, which waited for that tensor's update. `MomentPagingScheduleTests` runs this under every
    /// legal interleaving it samples against unpaged AdamW.
    func schedule() -> [MomentPagingOp] {
        let streamed = resident.indices.filter { !resident[$0] }
        var ops: [MomentPagingOp] = []
        func load(_ j: Int) { ops += [.load(tensor: streamed[j], slot: j % 2), .recordLoaded(slot: j % 2)] }
        if !streamed.isEmpty { load(0) }
        var j = 0
        for i in resident.indices {
            if resident[i] {
                ops.append(.update(tensor: i, slot: nil))
                continue
            }
            if j + 1 < streamed.count { load(j + 1) }
            ops += [.waitLoaded(slot: j % 2), .update(tensor: i, slot: j % 2), .recordComputed(slot: j % 2),
                    .waitComputed(slot: j % 2), .store(tensor: i, slot: j % 2)]
            j += 1
        }
        return ops
    }
}

/// What the paged optimizer issues, on which stream: the copy stream loads and stores staging buffers and records
/// `loaded` / waits for `computed`; the compute stream waits for `loaded`, updates, and records `computed`.
enum MomentPagingOp: Equatable, Sendable {
    case load(tensor: Int, slot: Int)
    case recordLoaded(slot: Int)
    case waitLoaded(slot: Int)
    /// AdamW on tensor `tensor` with its moments in `slot`, or in its own device memory (nil: resident).
    case update(tensor: Int, slot: Int?)
    case recordComputed(slot: Int)
    case waitComputed(slot: Int)
    case store(tensor: Int, slot: Int)

    /// Runs on the copy stream (else the compute stream).
    var onCopyStream: Bool {
        switch self {
        case .load, .recordLoaded, .waitComputed, .store: true
        case .waitLoaded, .update, .recordComputed: false
        }
    }
}

/// AdamW's moments on the GPU (`MomentPaging`): resident tensors keep m|v in device memory; the others live in pinned
/// host memory and stream through two staging buffers on the copy stream, double-buffered: while tensor j updates on
/// the compute stream, tensor j+1's moments are already being copied in, and j's are copied back out once its update
/// is done (events order the two streams; nothing waits on the host). The update is `Backend.adamW` in every case, so
/// a paged run is bit-identical to an unpaged one. No managed memory: oversubscribing it can hang a GPU.
final class CUDAMomentPager: MomentPager, @unchecked Sendable {
    let backend: CUDABackend
    let counts: [Int]
    let plan: MomentPagingPlan
    /// `plan.schedule()`, issued on every update.
    private let schedule: [MomentPagingOp]
    private var context: CUDAContext { backend.context }
    /// m|v (2n floats) of each resident tensor.
    private let device: [Tensor?]
    /// Pinned host memory holding m|v of every streamed tensor, at `hostOffsets` (floats).
    private let host: UnsafeMutablePointer<Float>?
    private let hostOffsets: [Int]
    private let slots: [Tensor]
    /// Per staging buffer: its load is done; its update is done.
    private let loaded: [qlora_CUevent], computed: [qlora_CUevent]
    private let lock = NSLock()
    private(set) var evictions = 0

    init(backend: CUDABackend, counts: [Int], budgetBytes: Int?) {
        self.backend = backend
        self.counts = counts
        plan = MomentPagingPlan(counts: counts, budgetBytes: budgetBytes)
        schedule = plan.schedule()
        device = zip(counts, plan.resident).map { n, resident in resident ? backend.allocate([2 * n], .f32) : nil }
        var offsets: [Int] = [], floats = 0
        for (n, resident) in zip(counts, plan.resident) {
            offsets.append(floats)
            if !resident { floats += 2 * n }
        }
        hostOffsets = offsets
        let context = backend.context
        if floats > 0 {
            context.makeCurrent()
            var p: UnsafeMutableRawPointer?
            context.must(context.driver.api.cuMemAllocHost(&p, floats * 4), "cuMemAllocHost_v2(\(floats * 4) bytes of AdamW moments)")
            host = p!.bindMemory(to: Float.self, capacity: floats)
            host!.initialize(repeating: 0, count: floats)
            let slotFloats = plan.slotFloats
            slots = (0..<2).map { _ in backend.allocate([slotFloats], .f32) }
            func event() -> qlora_CUevent {
                var e: qlora_CUevent?
                context.must(context.driver.api.cuEventCreate(&e, 2), "cuEventCreate")   // CU_EVENT_DISABLE_TIMING
                return e!
            }
            loaded = [event(), event()]
            computed = [event(), event()]
        } else {
            host = nil
            slots = []
            loaded = []
            computed = []
        }
    }

    deinit {
        guard let host else { return }
        waitForCopies()
        context.must(context.driver.api.cuMemFreeHost(host), "cuMemFreeHost")
        for e in loaded + computed { context.must(context.driver.api.cuEventDestroy(e), "cuEventDestroy_v2") }
    }

    private func waitForCopies() {
        context.makeCurrent()
        context.must(context.driver.api.cuStreamSynchronize(context.copyStream), "cuStreamSynchronize(copy stream)")
    }

    func update(_ params: [Tensor], gradients: [Tensor], step: AdamWStep) {
        precondition(params.count == counts.count && gradients.count == counts.count, "\(params.count) tensors for \(counts.count) moments")
        for i in counts.indices {
            precondition(params[i].count == counts[i] && gradients[i].count == counts[i],
                         "tensor \(i): \(params[i].count) parameters for \(counts[i]) moments")
        }
        let api = context.driver.api
        lock.lock()
        defer { lock.unlock() }
        context.makeCurrent()
        for op in schedule {
            switch op {
            case .load(let i, let slot):
                context.must(api.cuMemcpyHtoDAsync(backend.ptr(slots[slot]), host! + hostOffsets[i], 8 * counts[i], context.copyStream),
                             "cuMemcpyHtoDAsync_v2(AdamW moments, \(8 * counts[i]) bytes)")
            case .recordLoaded(let slot):
                context.must(api.cuEventRecord(loaded[slot], context.copyStream), "cuEventRecord")
            case .waitLoaded(let slot):
                context.must(api.cuStreamWaitEvent(context.stream, loaded[slot], 0), "cuStreamWaitEvent")
            case .update(let i, let slot):
                let n = counts[i]
                let mv = slot.map { slots[$0] } ?? device[i]!
                backend.adamW(params[i], gradient: gradients[i], m: mv.rows(0..<n), v: mv.rows(n..<(2 * n)), count: n, step: step)
            case .recordComputed(let slot):
                context.must(api.cuEventRecord(computed[slot], context.stream), "cuEventRecord")
            case .waitComputed(let slot):
                context.must(api.cuStreamWaitEvent(context.copyStream, computed[slot], 0), "cuStreamWaitEvent")
            case .store(let i, let slot):
                context.must(api.cuMemcpyDtoHAsync(host! + hostOffsets[i], backend.ptr(slots[slot]), 8 * counts[i], context.copyStream),
                             "cuMemcpyDtoHAsync_v2(AdamW moments, \(8 * counts[i]) bytes)")
                evictions += 1
            }
        }
    }

    func moments(_ index: Int) -> (m: [Float], v: [Float]) {
        let n = counts[index]
        if let mv = device[index] { return (backend.download(mv.rows(0..<n)), backend.download(mv.rows(n..<(2 * n)))) }
        lock.lock()
        defer { lock.unlock() }
        waitForCopies()
        let p = host! + hostOffsets[index]
        return (Array(UnsafeBufferPointer(start: p, count: n)), Array(UnsafeBufferPointer(start: p + n, count: n)))
    }

    func setMoments(_ index: Int, m: [Float], v: [Float]) {
        let n = counts[index]
        precondition(m.count == n && v.count == n, "tensor \(index) has \(n) moments, got \(m.count) and \(v.count)")
        if let mv = device[index] {
            m.withUnsafeBufferPointer { backend.write($0, into: mv.rows(0..<n)) }
            v.withUnsafeBufferPointer { backend.write($0, into: mv.rows(n..<(2 * n))) }
            return
        }
        lock.lock()
        defer { lock.unlock() }
        waitForCopies()
        let p = host! + hostOffsets[index]
        p.update(from: m, count: n)
        (p + n).update(from: v, count: n)
    }
}

extension CUDABackend: MomentPaging {
    public func makeMomentPager(counts: [Int], budgetBytes: Int?) -> any MomentPager {
        CUDAMomentPager(backend: self, counts: counts, budgetBytes: budgetBytes)
    }
}
