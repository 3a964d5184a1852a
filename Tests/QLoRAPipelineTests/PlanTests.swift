import Foundation
import Testing
@testable import QLoRAPipeline

/// The planner (Sources/QLoRAPipeline/Plan): memory estimates against measured figures, the paper's 65B claim, and
/// stage decisions that agree with what `run` then does.
@Suite struct PlanTests {
    static let smollm = ModelShape.preset("smollm2-135m")!

    /// `qlora bench train` on SmolLM2 (seq 256 × batch 4, rank 8, all seven projections, 2-core EPYC): peak RSS 669 MB
    /// with checkpointing, 1.40 GB without. The estimates stay within 15% (the plan's margin).
    @Test func trainEstimatesMatchTheMeasuredPeaks() {
        let targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        for (checkpointing, measured) in [(true, 669.5e6), (false, 1.40e9)] {
            let e = MemoryPlanner.train(Self.smollm, rank: 8, targets: targets, microBatch: 4, sequenceLength: 256,
                                        checkpointing: checkpointing, pagedBudgetBytes: nil)
            let ratio = Double(e.total) / measured
            #expect(ratio > 1 / MemoryEstimate.margin && ratio < MemoryEstimate.margin, "checkpointing \(checkpointing): \(e.total) vs \(measured)")
        }
    }

    @Test func guanaco65BFitsOneFortyEightGBGPUAsThePaperSays() throws {
        let spec = try JobSpec.load(path: repositoryRoot.appendingPathComponent("pipelines/guanaco-65b.yaml").path)
        let plan = try JobPlan.make(spec: spec, backend: "cuda", shape: ModelShape.preset("llama-65b"), limitBytes: 48 << 30)
        #expect(plan.fits, "\(plan.verdict)")
        let train = try #require(plan.memory.first { $0.stage == "train" })
        #expect(train.peakBytes < 48_000_000_000)
        #expect(plan.sequenceLength == 512 && plan.microBatch == 1 && plan.gradientCheckpointing)
        // Without paging the moments, or at 4× the sequence length, it does not.
        var unpaged = spec
        unpaged.training?.pagedOptimizerBudgetMB = nil
        unpaged.tokenizer?.maxSeqLen = 4096
        #expect(try !JobPlan.make(spec: unpaged, backend: "cuda", shape: ModelShape.preset("llama-65b"), limitBytes: 48 << 30).fits)
    }

    @Test func stageDecisionsAreWhatRunThenDoes() throws {
        try withTemporaryDirectory { dir in
            let spec = try TrainStageTests.spec(in: dir)
            let before = try JobPlan.make(spec: spec, backend: "cpu")
            #expect(before.stages.map(\.stage) == ["ingest", "tokenize", "prepare", "train"])
            #expect(before.stages.allSatisfy { $0.willRun })
            #expect(before.fits && before.largestMicroBatch >= 2)
            let result = try Pipeline.run(spec: spec)
            #expect(result.succeeded, "\(result.failure ?? "")")
            let after = try JobPlan.make(spec: spec, backend: "cpu")
            #expect(after.stages.allSatisfy { !$0.willRun && $0.reason == "up to date" }, "\(after.stages)")
            let run = RunDirectory(url: dir.appendingPathComponent("run"))
            for s in after.stages {
                #expect(run.manifest(StageID(rawValue: s.stage)!)?.fingerprint == s.fingerprint, "\(s.stage)")
            }
            // Editing the training section: train would rerun, the data stages not.
            var edited = spec
            edited.training?.maxSteps = 5
            let plan = try JobPlan.make(spec: edited, backend: "cpu")
            #expect(plan.stages.map(\.willRun) == [false, false, false, true])
            // A limit too small for one sequence: does not fit, and says what to change.
            let tight = try JobPlan.make(spec: spec, backend: "cpu", limitBytes: 1 << 20)
            #expect(!tight.fits && tight.verdict.contains("does not fit"))
        }
    }
}
