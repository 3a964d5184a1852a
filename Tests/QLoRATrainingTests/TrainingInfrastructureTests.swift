import Foundation
import Testing
@testable import QLoRATraining

@Suite struct ScheduleTests {
    @Test func matchesTransformersSchedules() {
        let linear = LearningRateSchedule(kind: .linear, peak: 1e-3, warmupSteps: 10, totalSteps: 110)
        #expect(linear.factor(0) == 0)
        #expect(linear.factor(5) == 0.5)
        #expect(linear.factor(10) == 1)
        #expect(linear.factor(60) == 0.5)
        #expect(linear.factor(110) == 0)
        #expect(linear.factor(200) == 0)
        let cosine = LearningRateSchedule(kind: .cosine, peak: 2e-4, warmupSteps: 0, totalSteps: 100)
        #expect(cosine.factor(0) == 1)
        #expect(abs(cosine.factor(50) - 0.5) < 1e-12)
        #expect(cosine.factor(100) < 1e-12)
        #expect(abs(cosine.learningRate(25) - 2e-4 * 0.5 * (1 + cos(Double.pi * 0.25))) < 1e-18)
        let constant = LearningRateSchedule(kind: .constant, peak: 2e-4, warmupSteps: 4, totalSteps: 10)
        #expect(constant.factor(1) == 0.25 && constant.factor(4) == 1 && constant.factor(9) == 1)
        #expect(LearningRateSchedule(kind: .constant, peak: 2e-4, warmupSteps: 0, totalSteps: 10).factor(0) == 1)
    }
}

@Suite struct CheckpointStoreTests {
    private func tmp() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("ckpt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func keepsTheNewestAndFallsBackPastACorruptOne() throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = CheckpointStore(directory: dir, keep: 2)
        for step in [10, 20, 30] {
            try store.save(step: step, files: ["adapter.bin": [UInt8](repeating: UInt8(step), count: 100), "state.json": Array("{\"step\":\(step)}".utf8)])
        }
        #expect(store.all().map(\.step) == [30, 20])
        #expect(store.latest().entry?.step == 30 && store.latest().skipped.isEmpty)

        // Flip one byte of the newest checkpoint: resume falls back to the previous one and says why.
        let victim = dir.appendingPathComponent("step-00000030/adapter.bin")
        var bytes = try Data(contentsOf: victim)
        bytes[7] ^= 0xFF
        try bytes.write(to: victim)
        let (entry, skipped) = store.latest()
        #expect(entry?.step == 20)
        #expect(skipped.count == 1 && skipped[0].reason.contains("adapter.bin") && skipped[0].reason.contains("SHA-256"))

        // A checkpoint without its manifest (a crash before the rename cannot produce one, but a hand-made copy can).
        try FileManager.default.removeItem(at: dir.appendingPathComponent("step-00000020/checkpoint.json"))
        #expect(store.latest().entry == nil && store.latest().skipped.count == 2)
    }

    @Test func leftoverTemporaryDirectoriesAreIgnoredAndCleaned() throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let leftover = dir.appendingPathComponent(".tmp-step-00000040-1-2")
        try FileManager.default.createDirectory(at: leftover, withIntermediateDirectories: true)
        let store = CheckpointStore(directory: dir, keep: 3)
        #expect(store.latest().entry == nil)
        try store.save(step: 5, files: ["a": [1]])
        #expect(!FileManager.default.fileExists(atPath: leftover.path))
        #expect(store.latest().entry?.step == 5)
    }
}

@Suite struct PagedStoreTests {
    @Test func valuesSurviveEvictionUnderASmallBudget() throws {
        let path = NSTemporaryDirectory() + "paged-\(UUID().uuidString).bin"
        let counts = [5000, 7000, 123, 4096, 9000]
        let store = try PagedFloatStore(path: path, counts: counts, budgetBytes: 40_000)
        #expect(store.totalBytes > 40_000)
        for round in 0..<3 {
            for (i, n) in counts.enumerated() {
                store.withTensor(i) { buffer in
                    for j in 0..<n { buffer[j] += Float(i * 100_000 + j + round) }
                }
            }
        }
        #expect(store.evictions > 0)
        for (i, n) in counts.enumerated() {
            let v = store.values(i)
            #expect(v == (0..<n).map { j in Float(i * 100_000 + j) * 3 + 3 })
        }
        let unpaged = try PagedFloatStore(path: path + ".2", counts: counts, budgetBytes: nil)
        for i in counts.indices { _ = unpaged.values(i) }
        #expect(unpaged.evictions == 0)
    }
}
