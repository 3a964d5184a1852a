import QLoRACore
import Testing
@testable import QLoRACUDA

/// The paged optimizer's stream protocol (`MomentPagingPlan.schedule`, what `CUDAMomentPager` issues) on simulated
/// streams: each stream runs its operations in issue order, a wait holds its stream until the event's most recent
/// record issued before the wait has run (cuStreamWaitEvent's semantics), and otherwise the two streams interleave at
/// random. Several steps are issued before anything runs, so the copy stream may run as far ahead as the events allow.
/// Every sampled interleaving must end bit-identical to unpaged AdamW.
@Suite struct MomentPagingScheduleTests {
    @Test func everyInterleavingMatchesUnpagedAdamW() throws {
        var rng = SeededGenerator(seed: 11)
        for _ in 0..<40 {
            let counts = (0..<Int(rng.next() % 7 + 1)).map { _ in Int(rng.next() % 9) + 1 }
            let budget = Int(rng.next() % UInt64(8 * counts.reduce(0, +) + 1))
            let plan = MomentPagingPlan(counts: counts, budgetBytes: budget)
            for _ in 0..<25 {
                var simulation = Simulation(counts: counts, plan: plan, schedule: plan.schedule(), steps: 3, rng: &rng)
                #expect(try simulation.run(), "\(counts) under \(budget) bytes: resident \(plan.resident)")
            }
        }
    }

    /// The simulation can fail: without the copy stream's wait for the update, a store can copy a staging buffer out
    /// before the update wrote it, and some interleaving shows it.
    @Test func aScheduleWithoutTheUpdateWaitIsCaught() throws {
        let counts = [3, 4, 2, 5]
        let plan = MomentPagingPlan(counts: counts, budgetBytes: 0)
        #expect(plan.resident == [false, false, false, false])
        let broken = plan.schedule().filter { if case .waitComputed = $0 { false } else { true } }
        var rng = SeededGenerator(seed: 5)
        var caught = false
        for _ in 0..<200 where !caught {
            var simulation = Simulation(counts: counts, plan: plan, schedule: broken, steps: 2, rng: &rng)
            caught = try !simulation.run()
        }
        #expect(caught)
    }

    @Test func streamedTensorsAlternateStagingBuffersAndLoadOneAhead() {
        let plan = MomentPagingPlan(counts: [2, 4, 4, 4], budgetBytes: 2 * 8 * 4 + 16)   // staging plus tensor 0
        #expect(plan.resident == [true, false, false, false])
        #expect(plan.schedule() == [
            .load(tensor: 1, slot: 0), .recordLoaded(slot: 0),
            .update(tensor: 0, slot: nil),
            .load(tensor: 2, slot: 1), .recordLoaded(slot: 1),
            .waitLoaded(slot: 0), .update(tensor: 1, slot: 0), .recordComputed(slot: 0), .waitComputed(slot: 0), .store(tensor: 1, slot: 0),
            .load(tensor: 3, slot: 0), .recordLoaded(slot: 0),
            .waitLoaded(slot: 1), .update(tensor: 2, slot: 1), .recordComputed(slot: 1), .waitComputed(slot: 1), .store(tensor: 2, slot: 1),
            .waitLoaded(slot: 0), .update(tensor: 3, slot: 0), .recordComputed(slot: 0), .waitComputed(slot: 0), .store(tensor: 3, slot: 0),
        ])
    }
}

/// Two streams, two events per staging buffer, the moments' host copies, staging buffers and resident copies, and the
/// parameters, run through `steps` updates of `schedule`.
private struct Simulation {
    struct Entry { let op: MomentPagingOp; let step: Int; let version: Int }

    let counts: [Int], plan: MomentPagingPlan, steps: Int
    var queues: [[Entry]] = [[], []]   // 0: compute, 1: copy
    var issued: [String: Int] = [:], done: [String: Int] = [:]
    var host: [[Float]], device: [[Float]], slots: [[Float]], params: [[Float]]
    let initialParams: [[Float]], gradients: [[[Float]]]
    var rng: SeededGenerator

    init(counts: [Int], plan: MomentPagingPlan, schedule: [MomentPagingOp], steps: Int, rng: inout SeededGenerator) {
        self.counts = counts
        self.plan = plan
        self.steps = steps
        host = counts.map { [Float](repeating: 0, count: 2 * $0) }
        device = host
        slots = [[Float]](repeating: [Float](repeating: .nan, count: 2 * (counts.max() ?? 0)), count: 2)
        var r = rng
        func random(_ n: Int) -> [Float] { (0..<n).map { _ in Float(Int(r.next() % 2001) - 1000) / 1000 } }
        params = counts.map(random)
        initialParams = params
        gradients = (0..<steps).map { _ in counts.map(random) }
        rng = r
        self.rng = r   // the caller's generator moves on; this one drives the interleaving
        for step in 0..<steps {
            for op in schedule {
                let event: String?
                switch op {
                case .recordLoaded(let s), .waitLoaded(let s): event = "loaded\(s)"
                case .recordComputed(let s), .waitComputed(let s): event = "computed\(s)"
                default: event = nil
                }
                var version = 0
                if let event {
                    switch op {
                    case .recordLoaded, .recordComputed:
                        issued[event, default: 0] += 1
                        version = issued[event]!
                    default: version = issued[event, default: 0]   // a wait: for the latest record issued so far
                    }
                }
                queues[op.onCopyStream ? 1 : 0].append(Entry(op: op, step: step, version: version))
            }
        }
    }

    static func adamW(_ step: Int) -> AdamWStep {
        AdamWStep(learningRate: 1e-2, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, t: step + 1)
    }

    private func ready(_ e: Entry) -> Bool {
        switch e.op {
        case .waitLoaded(let s): done["loaded\(s)", default: 0] >= e.version
        case .waitComputed(let s): done["computed\(s)", default: 0] >= e.version
        default: true
        }
    }

    private mutating func execute(_ e: Entry) {
        switch e.op {
        case .load(let i, let s): slots[s].replaceSubrange(0..<(2 * counts[i]), with: host[i])
        case .store(let i, let s): host[i] = Array(slots[s][0..<(2 * counts[i])])
        case .recordLoaded(let s): done["loaded\(s)"] = e.version
        case .recordComputed(let s): done["computed\(s)"] = e.version
        case .waitLoaded, .waitComputed: break
        case .update(let i, let s):
            let n = counts[i], step = Self.adamW(e.step)
            let mv = s.map { slots[$0] } ?? device[i]
            var m = Array(mv[0..<n]), v = Array(mv[n..<(2 * n)])
            for x in 0..<n { step.apply(&params[i][x], gradients[e.step][i][x], &m[x], &v[x]) }
            if let s { slots[s].replaceSubrange(0..<(2 * n), with: m + v) } else { device[i] = m + v }
        }
    }

    /// Runs every queued operation: true when the parameters and moments end bit-identical to unpaged AdamW.
    mutating func run() throws -> Bool {
        while !queues[0].isEmpty || !queues[1].isEmpty {
            let candidates = [0, 1].filter { !queues[$0].isEmpty && ready(queues[$0][0]) }
            guard let first = candidates.first else { throw SimulationDeadlock() }
            execute(queues[candidates.count == 1 ? first : Int(rng.next() % 2)].removeFirst())
        }
        // Unpaged AdamW from the same start.
        var p = initialParams
        var m = counts.map { [Float](repeating: 0, count: $0) }, v = m
        for step in 0..<steps {
            let a = Self.adamW(step)
            for i in counts.indices {
                for x in 0..<counts[i] { a.apply(&p[i][x], gradients[step][i][x], &m[i][x], &v[i][x]) }
            }
        }
        let moments = counts.indices.map { plan.resident[$0] ? device[$0] : host[$0] }
        let same = zip(p, params).allSatisfy { $0.map(\.bitPattern) == $1.map(\.bitPattern) }
            && counts.indices.allSatisfy { (m[$0] + v[$0]).map(\.bitPattern) == moments[$0].map(\.bitPattern) }
        return same
    }
}

private struct SimulationDeadlock: Error {}
