import Testing
import QLoRACore
import QLoRACPU
import QLoRAModel
import QLoRATraining

/// Schedules against transformers 5.24 (`get_scheduler(name, opt, num_warmup_steps=3, num_training_steps=10)`,
/// base lr 2e-4, the optimizer's lr read before each of 11 updates; values printed by Python, compared exactly;
/// transformers' plain `constant` ignores the warmup, so it maps to warmup 0), and gradient accumulation.
@Suite struct TrainingLoopPartsTests {
    /// transformers' schedule name → (our kind, warmup steps used) and the rates transformers gives.
    static let transformers: [(name: String, kind: LearningRateSchedule.Kind, warmup: Int, rates: [Double])] = [
        ("constant", .constant, 0, Array(repeating: 0.0002, count: 11)),
        ("constant_with_warmup", .constant, 3, [0.0, 6.666666666666667e-05, 0.00013333333333333334] + Array(repeating: 0.0002, count: 8)),
        ("linear", .linear, 3, [0.0, 6.666666666666667e-05, 0.00013333333333333334, 0.0002, 0.00017142857142857143,
                                0.00014285714285714287, 0.00011428571428571428, 8.571428571428571e-05, 5.714285714285714e-05,
                                2.857142857142857e-05, 0.0]),
        ("cosine", .cosine, 3, [0.0, 6.666666666666667e-05, 0.00013333333333333334, 0.0002, 0.0001900968867902419,
                                0.00016234898018587337, 0.00012225209339563145, 7.774790660436858e-05, 3.7651019814126654e-05,
                                9.903113209758096e-06, 0.0]),
    ]

    @Test func schedulesEqualTransformersRatesBitForBit() {
        for (name, kind, warmup, rates) in Self.transformers {
            let s = LearningRateSchedule(kind: kind, peak: 2e-4, warmupSteps: warmup, totalSteps: 10)
            #expect((0...10).map(s.learningRate) == rates, "\(name)")
        }
    }

    @Test func accumulatingMicroBatchesGivesTheWholeBatchGradient() throws {
        // Two micro-batches with gradScale = 1/N_total add up to the gradient of the mean over both.
        let (model, g) = try LoRAGoldenTests.model(backend: CPUBackend(threads: 2))
        let whole = TrainingBatch(sequences: g.sequences, labels: g.labels)
        let parts = zip(g.sequences, g.labels).map { TrainingBatch(sequences: [$0], labels: [$1]) }
        let n = Float(whole.countedTargets)
        var accumulated = LoRAWeights.zeros(model.config, model.lora!)
        var sum = 0.0, count = 0
        for part in parts {
            let loss = model.lossAndGradients(part, gradScale: 1 / n, into: &accumulated)
            sum += loss.sum
            count += loss.count
        }
        #expect(count == g.counted && abs(sum / Double(count) - g.loss) <= 1e-5 * g.loss)
        let (worst, name) = LoRAGoldenTests.worstRelative(accumulated, try LoRAGoldenTests.adapters("grads.safetensors", like: accumulated))
        #expect(worst <= 1e-4, "worst relative gradient error \(worst) in \(name)")
    }
}
