import Foundation
import Testing
@testable import QLoRAPipeline

/// Quality gates (Sources/QLoRAPipeline/Runner/QualityGates.swift): the bounds, the spec's checks, and a run on a tiny
/// model whose failed gate fails the run with every artifact written, and whose gates change without rerunning a stage.
@Suite struct QualityGateTests {
    let metrics: [String: Double] = ["eval_loss_base": 2.0, "eval_loss_adapter": 1.5, "arc_acc_base": 0.5, "arc_acc_adapter": 0.4]

    @Test func boundsAbsoluteAgainstBaseAndAgainstABaseline() {
        let results = QualityGates.check([
            QualityGate(metric: "eval_loss", max: 1.6, maxVsBase: -0.4),
            QualityGate(metric: "perplexity", max: 4),
            QualityGate(metric: "arc_acc", min: 0.3, minVsBase: 0),
            QualityGate(metric: "eval_loss", maxVsBaseline: 0.1),
        ], evaluate: metrics, baseline: ["eval_loss_adapter": 1.3])
        #expect(results.map(\.passed) == [true, true, false, true, false, false])
        #expect(results[2].message.hasPrefix("perplexity 4.482 > 4"), "\(results[2].message)")
        #expect(results[4].message.hasPrefix("arc_acc − base = -0.1 < 0 (base 0.5"), "\(results[4].message)")
        #expect(results[5].message.hasPrefix("eval_loss − baseline = 0.2 > 0.1"), "\(results[5].message)")
    }

    @Test func aMetricTheRunDidNotReportFailsTheGate() {
        let r = QualityGates.check([QualityGate(metric: "mmlu_acc", min: 0.1), QualityGate(metric: "eval_loss", maxVsBaseline: 0)],
                                   evaluate: metrics, baseline: nil)
        #expect(r.map(\.passed) == [false, false])
        #expect(r[0].message.contains("reported no mmlu_acc") && r[1].message.contains("no baseline value"))
    }

    @Test func theSpecRefusesGatesItCannotCheck() throws {
        try withTemporaryDirectory { dir in
            try write("{}\n", to: dir.appendingPathComponent("t.jsonl"))
            let yaml = """
                name: g
                evaluation:
                  tasks: [{path: t.jsonl, name: arc}]
                  max_eval_sequences: 0
                  gates:
                    - {metric: arc_ac, min: 0.5}
                    - {metric: eval_loss, max: 2}
                    - {metric: arc_acc}
                    - {metric: arc_acc, min_vs_baseline: 0}
                """
            let error = try #require(throws: SpecErrors.self) { _ = try loadSpec(yaml, in: dir) }
            let text = error.description
            #expect(text.contains("evaluation.gates[0].metric") && text.contains("did you mean `arc_acc`"), "\(text)")
            #expect(text.contains("evaluation.gates[1].metric") && text.contains("needs `max_eval_sequences` > 0"), "\(text)")
            #expect(text.contains("evaluation.gates[2]") && text.contains("has no bound"), "\(text)")
            #expect(text.contains("evaluation.gates[3]") && text.contains("give `evaluation.baseline`"), "\(text)")
        }
    }

    @Test func aFailedGateFailsTheRunAfterEveryStageAndGatesRerunNothing() throws {
        try withTemporaryDirectory { dir in
            var spec = try TrainStageTests.spec(in: dir, evalFraction: 0.25)
            spec.evaluation = EvaluationSection(maxEvalSequences: 4, gates: [QualityGate(metric: "eval_loss", max: 1000)])
            let first = try Pipeline.run(spec: spec)
            #expect(first.outcome == .succeeded, "\(first.failure ?? "") \(first.gates)")
            #expect(first.gates.count == 1 && first.gates[0].passed)
            // A gate no adapter can pass: the run fails with exit status 3, every stage up to date, nothing rerun.
            spec.evaluation?.gates = [QualityGate(metric: "eval_loss", max: 1000), QualityGate(metric: "perplexity", maxVsBase: -1e9)]
            let second = try Pipeline.run(spec: spec)
            #expect(second.outcome == .gateFailed && second.outcome.exitCode == 3)
            #expect(second.stages.allSatisfy { $0.state == .skipped }, "\(second.stages.map { "\($0.stage) \($0.state)" })")
            #expect(second.gates.map(\.passed) == [true, false])
            let md = try RunSummary.write(second, spec: spec, totalSeconds: 0)
            #expect(try String(contentsOf: md, encoding: .utf8).contains("| perplexity | max_vs_base -1000000000 | **FAILED**"))
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("run/summary.json"))) as! [String: Any]
            #expect(json["status"] as? String == "gate_failed" && json["exit_code"] as? Int == 3)
            #expect((json["gates"] as? [[String: Any]])?.count == 2)
            // Against this run as a baseline: the same adapter is within 0 of itself.
            spec.evaluation?.gates = [QualityGate(metric: "eval_loss", maxVsBaseline: 0)]
            let copy = dir.appendingPathComponent("baseline-summary.json")
            try FileManager.default.copyItem(at: dir.appendingPathComponent("run/summary.json"), to: copy)
            spec.evaluation?.baseline = copy.path
            let third = try Pipeline.run(spec: spec)
            #expect(third.outcome == .succeeded, "\(third.gates)")
        }
    }
}
