import Foundation
import Testing
import QLoRACore
import QLoRACPU
import QLoRADistributed
import QLoRAFormats
import QLoRAModel
@testable import QLoRATraining

/// Data-parallel training with ranks as threads (`ThreadGroup`: the same chain and broadcasts the trainer runs
/// under mpirun, scripts/distributed-check.sh runs the real thing): every world size gives the single process's
/// losses, adapters and moments bit for bit, and a checkpoint written by some number of ranks resumes on another.
@Suite struct DataParallelTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("QLoRAModelTests/Fixtures/gqa_tied")

    struct Stop: Error {}

    /// 12 random sequences (lengths 5...20, the first two tokens masked).
    private func data(_ dir: URL) throws -> TrainingData {
        var rng = SeededGenerator(seed: 21)
        let sequences = (0..<12).map { _ in
            let n = 5 + Int(rng.next() % 16)
            return TokenFile.Sequence(ids: (0..<n).map { _ in UInt32(rng.next() % 128) }, labels: (0..<n).map { $0 >= 2 })
        }
        let url = dir.appendingPathComponent("train.tokens")
        if !FileManager.default.fileExists(atPath: url.path) {
            try TokenFile.write(sequences, packed: false, vocabularySize: 128, to: url)
        }
        return TrainingData(reader: try TokenFile.Reader(path: url.path), baseOrder: nil, seed: 4)
    }

    private func trainer(_ dir: URL, collective: any Collective, accumulation: Int, steps: Int = 5) throws -> Trainer {
        let backend = CPUBackend(threads: 1)
        let base = try ModelLoader.loadModel(path: Self.fixture.path, backend: backend)
        let lora = LoRAConfig(rank: 4, alpha: 8, dropout: 0.1)
        var rng = SeededGenerator(seed: 3)
        let model = try base.withAdapter(LoRAWeights.peftInit(base.config, lora, rng: &rng), lora: lora)
        let options = TrainerOptions(schedule: LearningRateSchedule(kind: .cosine, peak: 5e-3, warmupSteps: 1, totalSteps: steps),
                                     maxSteps: steps, batchSize: 1, gradientAccumulation: accumulation, maxGradNorm: 0.3,
                                     adam: AdamW.Parameters(weightDecay: 0.01), saveEvery: 1, seed: 11)
        return try Trainer(model: model, data: try data(dir), options: options,
                           checkpoints: CheckpointStore(directory: dir.appendingPathComponent("checkpoints"), keep: 2),
                           collective: collective)
    }

    struct Outcome: Equatable {
        var losses: [Double]
        var adapters: [UInt32]
        var moments: [UInt32]
    }

    private func outcome(_ t: Trainer) -> Outcome {
        Outcome(losses: t.metrics.map(\.loss), adapters: t.model.adapters.tensors.flatMap { $0.map(\.bitPattern) },
                moments: (t.optimizer.m + t.optimizer.v).flatMap { $0.map(\.bitPattern) })
    }

    /// Runs `ranks` trainers as threads on `dir`; returns each rank's outcome. `stopAfter`: every rank throws after
    /// that step (a crash after the checkpoint of that step was written).
    private func train(_ dir: URL, ranks: Int, accumulation: Int, stopAfter: Int? = nil) throws -> [Outcome] {
        let group = ThreadGroup(size: ranks)
        nonisolated(unsafe) var results = [Outcome?](repeating: nil, count: ranks)
        nonisolated(unsafe) var failures: [String] = []
        let lock = NSLock()
        // One thread per rank (concurrentPerform would run more ranks than cores one after another: a deadlock).
        let done = DispatchGroup()
        for r in 0..<ranks {
            done.enter()
            let thread = Thread {
                defer { done.leave() }
                do {
                    let t = try trainer(dir, collective: group.member(r), accumulation: accumulation)
                    _ = try t.resume(identity: "dp")
                    try t.run(identity: "dp") { m in if m.step == stopAfter { throw Stop() } }
                    lock.withLock { results[r] = outcome(t) }
                } catch is Stop {
                } catch {
                    lock.withLock { failures.append("rank \(r): \(error)") }
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        #expect(failures.isEmpty, "\(failures)")
        return results.compactMap { $0 }
    }

    private func tmp() throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("dp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: [(2, 4), (3, 4), (2, 1), (4, 2)])
    func everyWorldSizeGivesTheSingleProcessRun(ranks: Int, accumulation: Int) throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let single = try train(dir.appendingPathComponent("single").creatingDirectory(), ranks: 1, accumulation: accumulation)
        let parallel = try train(dir.appendingPathComponent("parallel").creatingDirectory(), ranks: ranks, accumulation: accumulation)
        #expect(single.count == 1 && parallel.count == ranks)
        #expect(single[0].losses.count == 5 && single[0].losses.allSatisfy(\.isFinite))
        // Rank 0 keeps the metrics; every rank holds the same adapters and moments.
        #expect(parallel[0].losses == single[0].losses)
        for r in 0..<ranks {
            #expect(parallel[r].adapters == single[0].adapters, "rank \(r) of \(ranks), accumulation \(accumulation)")
            #expect(parallel[r].moments == single[0].moments, "rank \(r) of \(ranks)")
        }
    }

    @Test func aCheckpointOfTwoRanksResumesOnOneAndOfOneOnThree() throws {
        let dir = try tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let reference = try train(dir.appendingPathComponent("reference").creatingDirectory(), ranks: 2, accumulation: 4)[0]
        let a = try dir.appendingPathComponent("a").creatingDirectory()
        #expect(try train(a, ranks: 2, accumulation: 4, stopAfter: 2).isEmpty)
        let resumed = try train(a, ranks: 1, accumulation: 4)[0]
        #expect(resumed.losses == reference.losses && resumed.adapters == reference.adapters && resumed.moments == reference.moments)
        let b = try dir.appendingPathComponent("b").creatingDirectory()
        #expect(try train(b, ranks: 1, accumulation: 4, stopAfter: 3).isEmpty)
        let three = try train(b, ranks: 3, accumulation: 4)
        #expect(three[0].losses == reference.losses)
        #expect(three.allSatisfy { $0.adapters == reference.adapters && $0.moments == reference.moments })
    }
}

private extension URL {
    func creatingDirectory() throws -> URL {
        try FileManager.default.createDirectory(at: self, withIntermediateDirectories: true)
        return self
    }
}
