import Foundation
import Testing
import QLoRACore
import QLoRACPU
import QLoRAFormats
import QLoRAModel
@testable import QLoRATraining

/// The training loop: resume after a crash reproduces the uninterrupted run byte for byte, and the paged
/// optimizer matches the unpaged one bit for bit.
@Suite struct TrainerResumeTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("QLoRAModelTests/Fixtures/gqa_tied")

    struct Crash: Error {}

    private func tmp() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("trainer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// 10 random sequences (lengths 5...20, the first two tokens masked, one packed pair of documents).
    private func data(_ dir: URL) throws -> TrainingData {
        var rng = SeededGenerator(seed: 5)
        var sequences: [TokenFile.Sequence] = []
        for i in 0..<10 {
            let n = 5 + Int(rng.next() % 16)
            let ids = (0..<n).map { _ in UInt32(rng.next() % 128) }
            let labels = (0..<n).map { $0 >= 2 }
            sequences.append(TokenFile.Sequence(ids: ids, labels: labels, documentStarts: i == 3 ? [0, n / 2] : [0]))
        }
        let url = dir.appendingPathComponent("train.tokens")
        try TokenFile.write(sequences, packed: true, vocabularySize: 128, to: url)
        return TrainingData(reader: try TokenFile.Reader(path: url.path), baseOrder: nil, seed: 9)
    }

    private func trainer(_ dir: URL, data: TrainingData, paged: Int? = nil, dropout: Double = 0.1) throws -> Trainer {
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let base = try ModelLoader.loadModel(path: Self.fixture.path, backend: CPUBackend(threads: 2))
        let lora = LoRAConfig(rank: 4, alpha: 8, dropout: dropout)
        var rng = SeededGenerator(seed: 3)
        let adapters = LoRAWeights.peftInit(base.config, lora, rng: &rng)
        let model = adaptedModel(config: base.config, weights: base.weights.quantized(FourBitOptions()), lora: lora, adapters: adapters,
                              backend: CPUBackend(threads: 2))
        let options = TrainerOptions(schedule: LearningRateSchedule(kind: .cosine, peak: 5e-3, warmupSteps: 2, totalSteps: 7),
                                     maxSteps: 7, batchSize: 2, gradientAccumulation: 2, maxGradNorm: 0.3,
                                     adam: AdamW.Parameters(weightDecay: 0.01),
                                     pagedStatePath: paged.map { _ in dir.appendingPathComponent("adam.pages").path },
                                     pagedBudgetBytes: paged, saveEvery: 1, seed: 11)
        return try Trainer(model: model, data: data, options: options,
                           checkpoints: CheckpointStore(directory: dir.appendingPathComponent("checkpoints"), keep: 2))
    }

    private func adapterBytes(_ t: Trainer) -> [UInt32] { t.model.adapters.tensors.flatMap { $0.map(\.bitPattern) } }

    @Test func resumedRunIsByteIdenticalToTheUninterruptedOne() throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let a = dir.appendingPathComponent("a"), b = dir.appendingPathComponent("b")
        try FileManager.default.createDirectory(at: a, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: b, withIntermediateDirectories: true)
        let full = try trainer(a, data: try data(a))
        #expect(try full.resume(identity: "x").isEmpty)
        try full.run(identity: "x")
        #expect(full.step == 7 && full.metrics.count == 7)

        for crashAt in [1, 4, 6] {
            try? FileManager.default.removeItem(at: b.appendingPathComponent("checkpoints"))
            let first = try trainer(b, data: try data(b))
            _ = try first.resume(identity: "x")
            #expect(throws: Crash.self) {
                try first.run(identity: "x") { m in if m.step == crashAt { throw Crash() } }
            }
            // The step that crashed was computed but never checkpointed: the resumed run redoes it.
            let second = try trainer(b, data: try data(b))
            let notes = try second.resume(identity: "x")
            #expect((notes.first?.contains("resumed from step-\(String(format: "%08d", crashAt - 1))") ?? false) == (crashAt > 1), "\(notes)")
            try second.run(identity: "x")
            #expect(adapterBytes(second) == adapterBytes(full), "crash at step \(crashAt)")
            #expect(second.metrics.map(\.loss) == full.metrics.map(\.loss))
            #expect(second.optimizer.m == full.optimizer.m && second.optimizer.v == full.optimizer.v)
        }
        // A different identity never resumes someone else's checkpoint.
        let other = try trainer(b, data: try data(b))
        let notes = try other.resume(identity: "y")
        #expect(other.step == 0 && notes.contains { $0.contains("different configuration") })
        // Losses go down on this tiny memorization task.
        #expect(full.metrics.last!.loss < full.metrics.first!.loss)
    }

    @Test func nonFiniteLossFailsTheStepAndKeepsTheLastCheckpoint() throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let first = try trainer(dir, data: try data(dir))
        #expect(throws: Crash.self) { try first.run(identity: "n") { m in if m.step == 3 { throw Crash() } } }
        let second = try trainer(dir, data: try data(dir))
        _ = try second.resume(identity: "n")
        #expect(second.step == 2)
        // Poison one adapter value: the next step's loss is NaN.
        var adapters = second.model.adapters
        let key = adapters.layers[0].keys.sorted { "\($0)" < "\($1)" }[0]
        adapters.layers[0][key]!.a[0] = .nan
        second.model.adapters = adapters
        let failure = #expect(throws: TrainerError.self) { try second.run(identity: "n") }
        #expect(failure?.description.contains("non-finite loss (nan) at step 3") == true, "\(failure.map { "\($0)" } ?? "")")
        #expect(second.step == 2)
        // Nothing NaN was written: the newest checkpoint is still step 2's, and a new trainer resumes from it.
        let store = CheckpointStore(directory: dir.appendingPathComponent("checkpoints"), keep: 2)
        #expect(store.latest().entry?.step == 2)
        let third = try trainer(dir, data: try data(dir))
        _ = try third.resume(identity: "n")
        #expect(third.step == 2)
        #expect(third.model.adapters.layers[0][key]!.a[0].isFinite)
    }

    @Test func pagedOptimizerMatchesUnpagedBitForBit() throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let unpaged = try trainer(dir.appendingPathComponent("u"), data: try data(dir), paged: nil)
        try unpaged.run(identity: "p")
        let stateBytes = unpaged.model.adapters.parameterCount * 8
        let paged = try trainer(dir.appendingPathComponent("p"), data: try data(dir), paged: stateBytes / 4)
        try paged.run(identity: "p")
        #expect(paged.optimizer.pageEvictions > 0)
        #expect(adapterBytes(paged) == adapterBytes(unpaged))
        #expect(paged.metrics.map(\.loss) == unpaged.metrics.map(\.loss))
    }
}
