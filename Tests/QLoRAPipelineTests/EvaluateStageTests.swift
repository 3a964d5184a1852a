import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
#if canImport(Glibc)
import Glibc
#endif
import Testing
import QLoRAFormats
import QLoRATokenizer
@testable import QLoRAPipeline

/// The evaluate stage's parts: its spec section, the loss plot, the report, question tokenization and the
/// eval-split targets. (The stage end to end runs in the CLI test on pipelines/tiny.yaml.)
@Suite struct EvaluateStageTests {
    static let specHead = "name: x\ndataset:\n  files: [{path: a.jsonl, format: text}]\ntokenizer: {path: t.json}\nmodel: {path: m.gguf}\nlora: {}\n"

    @Test func theSectionDecodesWithDefaults() throws {
        let yaml = Self.specHead + """
            evaluation:
              tasks:
                - path: ../datasets/fetched/arc_easy.jsonl
                  limit: 100
                - {path: tasks/rc_0shot/requests.jsonl.gz, name: arc-raw}
              prompts: [Hi there]
            """
        let spec = try JobSpec.parse(yaml: yaml, file: "s.yaml")
        let e = try #require(spec.evaluation)
        #expect(e.tasks == [EvaluationTask(path: "../datasets/fetched/arc_easy.jsonl", name: "arc_easy", limit: 100),
                            EvaluationTask(path: "tasks/rc_0shot/requests.jsonl.gz", name: "arc-raw")])
        #expect(e.prompts == ["Hi there"] && e.maxNewTokens == 64 && e.maxEvalSequences == 256 && e.batchRows == 1024)
        #expect(spec.problems().isEmpty, "\(spec.problems())")
        #expect(StageID.enabled(by: spec).last == .evaluate)
        #expect(EvaluationTask.defaultName("x/rc_0shot/requests.jsonl.gz") == "rc_0shot")
        // The normalized spec reads back the same.
        #expect(try JobSpec.parse(yaml: try spec.normalizedYAML(), file: "s.yaml").evaluation == e)
    }

    @Test(arguments: [
        ("  max_new_tokens: 0\n", "evaluation.max_new_tokens", "must be in 1...4096, got 0"),
        ("  max_eval_sequences: -1\n", "evaluation.max_eval_sequences", "must be >= 0 (0 skips the eval loss), got -1"),
        ("  batch_rows: 8\n", "evaluation.batch_rows", "must be in 16...65536, got 8"),
        ("  tasks: [{path: a.csv}]\n", "evaluation.tasks[0].path", "`a.csv` is not a JSONL file (.jsonl or .jsonl.gz)"),
        ("  tasks: [{path: a.jsonl, limit: 0}]\n", "evaluation.tasks[0].limit", "must be >= 1, got 0"),
        ("  tasks: [{path: a.jsonl, name: 'a b'}]\n", "evaluation.tasks[0].name",
         "`a b` must be 1-64 letters, digits, `.`, `_` or `-` (it names report entries and files)"),
        ("  tasks: [{path: x/a.jsonl}, {path: y/a.jsonl.gz}]\n", "evaluation.tasks[1].name",
         "`a` is also the name of tasks[0]; give one of them a `name`"),
        ("  prompts: ['  ']\n", "evaluation.prompts[0]", "is empty"),
        ("  max_eval_sequences: 0\n", "evaluation", "has nothing to do: give `tasks`, `prompts` or `max_eval_sequences` > 0"),
    ])
    func validationNamesTheKey(section: String, keyPath: String, message: String) throws {
        let spec = try JobSpec.parse(yaml: Self.specHead + "evaluation:\n" + section, file: "s.yaml")
        let problems = spec.problems()
        #expect(problems.contains { $0.keyPath == keyPath && $0.message == message }, "\(problems)")
    }

    @Test func unknownKeysAndMissingTaskFilesAreErrors() throws {
        let typo = #expect(throws: SpecError.self) {
            try JobSpec.parse(yaml: Self.specHead + "evaluation:\n  max_new_token: 3\n", file: "s.yaml")
        }
        #expect(typo?.message == "unknown key `max_new_token`; did you mean `max_new_tokens`?")
        let spec = try JobSpec.parse(yaml: Self.specHead + "evaluation:\n  tasks: [{path: ../datasets/fetched/nope.jsonl}]\n",
                                     file: "/r/pipelines/s.yaml")
        let missing = spec.missingInputs().first { $0.keyPath == "evaluation.tasks[0].path" }
        #expect(missing?.message == "task file not found: /r/datasets/fetched/nope.jsonl (run `python3 scripts/fetch_datasets.py` to fetch it)")
    }

    @Test(arguments: ["fifo", "/dev/zero"])
    func inputsThatAreNotRegularFilesAreErrors(which: String) throws {
        try withTemporaryDirectory { dir in
            let fifo = dir.appendingPathComponent("fifo").path
            #expect(mkfifo(fifo, 0o600) == 0)
            let path = which == "fifo" ? fifo : which
            let yaml = "name: x\ndataset:\n  files: [{path: \(path), format: text}]\ntokenizer: {path: \(path)}\n"
                + "model: {path: \(path)}\nlora: {}\nevaluation:\n  tasks: [{path: \(path)}]\n"
            let spec = try JobSpec.parse(yaml: yaml, file: dir.appendingPathComponent("s.yaml").path)
            let problems = spec.missingInputs()
            for key in ["dataset.files[0].path", "evaluation.tasks[0].path", "tokenizer.path", "model.path"] {
                let problem = problems.first { $0.keyPath == key }
                #expect(problem?.message.hasPrefix("not a regular file: \(path) (") == true, "\(key): \(problems)")
            }
        }
    }

    @Test func theEvaluateStageReadsEveryStageItScores() {
        #expect(StageID.evaluate.upstream == [.tokenize, .prepare, .train])
        #expect(StageID.available.contains(.evaluate) && Pipeline.registry[.evaluate] is EvaluateStage)
    }

    // MARK: loss plot

    /// Counts elements and collects text of an SVG document; fails on malformed XML.
    final class SVGProbe: NSObject, XMLParserDelegate {
        var counts: [String: Int] = [:]
        var texts: [String] = []
        var current = ""
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            counts[name, default: 0] += 1
            current = ""
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "text" { texts.append(current) }
        }
    }

    static func probe(_ svg: String) throws -> SVGProbe {
        let parser = XMLParser(data: Data(svg.utf8))
        let probe = SVGProbe()
        parser.delegate = probe
        #expect(parser.parse(), "malformed SVG: \(parser.parserError.map { "\($0)" } ?? "?")")
        return probe
    }

    @Test func theLossPlotIsWellFormedSVGWithAxesTicksAndLegend() throws {
        let train = (1...200).map { (step: $0, loss: 2.5 * exp(-Double($0) / 80) + 0.8) }
        let evalLoss = EvaluationReport.EvalLoss(sequences: 10, tokens: 500, base: .init(loss: 1.9, perplexity: exp(1.9)),
                                                 adapter: .init(loss: 1.2, perplexity: exp(1.2)))
        let plot = EvaluateStage.plot("demo <&>", trainLoss: train, evalLoss: evalLoss)
        let svg = plot.svg
        #expect(svg.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\""))
        let p = try Self.probe(svg)
        #expect(p.counts["svg"] == 1 && p.counts["polyline"] == 2)  // train loss and its moving average
        #expect(p.texts.contains("demo <&>: training and eval loss"))
        #expect(p.texts.contains("train loss") && p.texts.contains("train loss, mean of 10 steps") && p.texts.contains("eval loss, base (1.900)") && p.texts.contains("eval loss, adapter (1.200)"))
        #expect(p.texts.contains("optimizer step") && p.texts.contains { $0.hasPrefix("loss") })
        // x ticks at round steps, y ticks covering the data.
        #expect(p.texts.contains("0") && p.texts.contains("200"))
        #expect(p.texts.contains("1.0") && p.texts.contains("3.5"))
        // 2 axes + 2 levels + 1 legend line per entry (4) + ticks and grid lines.
        #expect((p.counts["line"] ?? 0) > 2 + 2 + 4 + 10)
    }

    @Test func thePlotCopesWithOneStepAndNoEvalLoss() throws {
        let p = try Self.probe(EvaluateStage.plot("x", trainLoss: [(1, 2.0)], evalLoss: nil).svg)
        #expect(p.counts["circle"] == 1 && p.counts["polyline"] == nil)
        let empty = try Self.probe(EvaluateStage.plot("x", trainLoss: [], evalLoss: nil).svg)
        #expect(empty.counts["svg"] == 1)
    }

    @Test func ticksAreRoundNumbers() {
        #expect(LossPlot.ticks(0, 200) == [0, 50, 100, 150, 200])
        #expect(LossPlot.ticks(0.8, 3.3) == [1, 1.5, 2, 2.5, 3])
        #expect(LossPlot.ticks(1, 1) == [1])
    }

    // MARK: report

    @Test func theReportRendersTablesAndEscapesCells() throws {
        let report = EvaluationReport(
            run: "r", adapterParameters: 123, maxNewTokens: 8, training: .init(steps: 4, firstLoss: 2.5, finalLoss: 2.0),
            evalLoss: .init(sequences: 3, tokens: 40, base: .init(loss: 2, perplexity: exp(2)), adapter: .init(loss: 1.5, perplexity: exp(1.5))),
            tasks: [.init(name: "arc_easy", path: "a.jsonl", questions: 20,
                          base: .init(acc: 0.35, accNorm: 0.4, correct: 7, correctNorm: 8),
                          adapter: .init(acc: 0.45, accNorm: 0.4, correct: 9, correctNorm: 8), changedPicks: 3)],
            samples: [.init(prompt: "a | b", base: "x\ny", adapter: "", baseTokens: 8, adapterTokens: 1, baseStopped: false, adapterStopped: true)],
            timing: .init(loadSeconds: 1, evalLossSeconds: 2, tasksSeconds: 3, samplesSeconds: 4, totalSeconds: 10))
        let md = report.markdown
        #expect(md.contains("| base | 2.0000 | 7.39 |"))
        #expect(md.contains("| change | -0.5000 | -2.91 |"))
        #expect(md.contains("| arc_easy | 20 | 35.0% | 45.0% | 40.0% | 40.0% | 3 |"))
        #expect(md.contains("| x<br>y *(cut at max_new_tokens)* | *(empty)* |"))
        #expect(md.contains("### 1. a | b"))
        let json = try JSONSerialization.jsonObject(with: try report.json()) as! [String: Any]
        let tasks = json["tasks"] as! [[String: Any]]
        #expect((tasks[0]["adapter"] as! [String: Any])["acc_norm"] as? Double == 0.4)
        #expect((json["eval_loss"] as! [String: Any])["tokens"] as? Int == 40)
    }

    // MARK: questions and eval targets

    @Test func questionsTokenizeLikeLMEvalEncodePair() throws {
        let tokenizer = try Tokenizer.load(path: repositoryRoot.appendingPathComponent("Tests/QLoRATokenizerTests/Fixtures/smollm2").path)
        let q = MultipleChoiceQuestion(context: "Question: Where is Paris?\nAnswer:", choices: [" France", " in Texas"], answer: 0)
        let t = ChoiceEvaluation.tokens(q, tokenizer: tokenizer)
        #expect(t.context == tokenizer.encode(q.context, addSpecialTokens: false))
        for (ids, choice) in zip(t.choices, q.choices) {
            #expect(t.context + ids == tokenizer.encode(q.context + choice, addSpecialTokens: false))
        }
        // A context ending in a space gives the space to the continuation, as lm-eval does.
        let spaced = ChoiceEvaluation.tokens(MultipleChoiceQuestion(context: "Answer: ", choices: ["yes", "no"], answer: 0), tokenizer: tokenizer)
        #expect(spaced.context == tokenizer.encode("Answer:", addSpecialTokens: false))
        #expect(spaced.choices[0] == Array(tokenizer.encode("Answer: yes", addSpecialTokens: false).dropFirst(spaced.context.count)))
        // An empty context is the EOS token alone.
        let empty = ChoiceEvaluation.tokens(MultipleChoiceQuestion(context: "", choices: ["a", "b"], answer: 0), tokenizer: tokenizer)
        #expect(empty.context == [tokenizer.eosTokenID!])
    }

    @Test func evalRunsSplitDocumentsAndFollowTheLabels() throws {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("eval.tokens")
            // One packed sequence of two documents; labels mark the trained tokens.
            try TokenFile.write([TokenFile.Sequence(ids: [1, 2, 3, 4, 5, 6, 7], labels: [false, false, true, true, false, true, true],
                                                    documentStarts: [0, 4])], packed: true, vocabularySize: 10, to: url)
            let runs = EvaluateStage.evalRuns(try TokenFile.Reader(path: url.path), count: 1)
            #expect(runs.map(\.tokens) == [[1, 2, 3, 4], [5, 6, 7]])
            #expect(runs.map(\.targets) == [[nil, 3, 4, nil], [6, 7, nil]])
        }
    }

    @Test func trainLossIsReadFromMetricsAndBadLinesNameTheLine() throws {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("metrics.jsonl")
            try write("{\"step\":1,\"loss\":2.5,\"lr\":0.1}\n{\"step\":2,\"loss\":2.25}\n", to: url)
            #expect(try EvaluateStage.trainLoss(url).map(\.loss) == [2.5, 2.25])
            try write("{\"step\":1,\"loss\":2.5}\n{\"step\":2}\n", to: url)
            let error = #expect(throws: StageFailure.self) { try EvaluateStage.trainLoss(url) }
            #expect(error?.message.hasPrefix(url.path + ":2:") == true)
            #expect(try EvaluateStage.trainLoss(dir.appendingPathComponent("none.jsonl")).isEmpty)
        }
    }
}
