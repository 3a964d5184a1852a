import Foundation
import Testing
@testable import QLoRAPipeline

/// The planner (Sources/QLoRAPipeline/Plan): memory estimates against measured figures, the paper's 65B claim, and
/// stage decisions that agree with what `run` then does.
@Suite struct PlanTests {
    static let smollm = ModelShape.preset("smollm2-135m")!

    /// The measured peaks of MemoryEstimate's table (SmolLM2, packed, 2-core EPYC): every estimate within 15%.
    @Test func trainEstimatesMatchTheMeasuredPeaks() {
        let targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        let measured: [(seq: Int, batch: Int, rank: Int, checkpointing: Bool, bytes: Double)] = [
            (256, 4, 8, true, 447.7e6), (256, 4, 8, false, 1.40e9), (256, 4, 16, true, 508.7e6), (256, 8, 8, true, 493.0e6),
            (512, 2, 32, false, 1425.3e6),
        ]
        for m in measured {
            let e = MemoryPlanner.train(Self.smollm, rank: m.rank, targets: targets, microBatch: m.batch, sequenceLength: m.seq,
                                        checkpointing: m.checkpointing, pagedBudgetBytes: nil)
            let ratio = Double(e.total) / m.bytes
            #expect(ratio > 1 / MemoryEstimate.margin && ratio < MemoryEstimate.margin, "\(m): estimate \(e.total)")
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
            // --to prepare: every stage up to prepare in pipeline order (the data stages too), not only its inputs.
            let toPrepare = try JobPlan.make(spec: spec, options: .init(to: .prepare), backend: "cpu")
            #expect(toPrepare.stages.map(\.stage) == ["ingest", "tokenize", "prepare"])
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
