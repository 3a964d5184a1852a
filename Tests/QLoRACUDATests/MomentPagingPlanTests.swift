import QLoRACore
import Testing
@testable import QLoRACUDA

/// Which AdamW moments the CUDA backend keeps on the device under a budget (`MomentPagingPlan`), checked without a GPU.
@Suite struct MomentPagingPlanTests {
    @Test func everythingIsResidentWithoutABudgetOrWhenItFits() {
        let counts = [100, 300, 50]
        for budget in [nil, 3600, 1 << 30] {
            let plan = MomentPagingPlan(counts: counts, budgetBytes: budget)
            #expect(plan.resident == [true, true, true] && plan.slotFloats == 0 && plan.deviceBytes == 3600)
        }
    }

    @Test func stagingComesOutOfTheBudgetThenTensorsFitInUpdateOrder() {
        // 8 bytes per parameter; staging: two buffers of the largest tensor's m|v = 2 · 8 · 300 = 4800 bytes.
        let counts = [100, 300, 50, 200, 60, 300, 300]   // 10 480 bytes of moments
        let plan = MomentPagingPlan(counts: counts, budgetBytes: 4800 + 800 + 400 + 480)
        // 100 fits (800), 300 does not, 50 fits (400), 200 does not, 60 fits (480), the last two do not: first fit
        // in update order.
        #expect(plan.resident == [true, false, true, false, true, false, false])
        #expect(plan.slotFloats == 600)
        #expect(plan.deviceBytes == 800 + 400 + 480 + 4800)
    }

    @Test func theDeviceNeverHoldsMoreThanTheBudgetAboveTheStagingFloor() {
        var rng = SeededGenerator(seed: 7)
        for _ in 0..<500 {
            let counts = (0..<Int(rng.next() % 12 + 1)).map { _ in Int(rng.next() % 5000) + 1 }
            let total = counts.reduce(0, +) * 8
            let budget = Int(rng.next() % UInt64(total + 1))
            let plan = MomentPagingPlan(counts: counts, budgetBytes: budget)
            let floor = 2 * 8 * counts.max()!
            #expect(plan.deviceBytes <= max(budget, floor), "\(counts) under \(budget): \(plan)")
            if budget < total { #expect(plan.resident.contains(false)) }
            // The staging buffers hold the largest streamed tensor's m|v.
            let streamed = zip(counts, plan.resident).filter { !$0.1 }.map(\.0)
            #expect(plan.slotFloats == 2 * (streamed.max() ?? 0))
        }
    }

    @Test func belowTwoStagingBuffersNothingIsResident() {
        let plan = MomentPagingPlan(counts: [10, 1000], budgetBytes: 1000)
        #expect(plan.resident == [false, false] && plan.deviceBytes == 2 * 8 * 1000)
    }
}
