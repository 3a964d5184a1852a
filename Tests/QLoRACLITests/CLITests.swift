import Foundation
import Testing
import QLoRAFormats

/// Runs the built `qlora` binary (next to the test bundle) and captures its output.
struct CLI {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static let binary: URL = {
        let besideTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for dir in [besideTests, besideTests.deletingLastPathComponent()] {
            let candidate = dir.appendingPathComponent("qlora")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        for config in ["debug", "release"] {
            let candidate = root.appendingPathComponent(".build/\(config)/qlora")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        return besideTests.appendingPathComponent("qlora")
    }()

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
        var all: String { stdout + stderr }
    }

    static func run(_ arguments: [String], in directory: URL? = nil, stdin: String? = nil,
                    environment: [String: String] = [:]) throws -> Output {
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        process.currentDirectoryURL = directory ?? root
        var env = ProcessInfo.processInfo.environment
        env["QLORA_PROGRESS_INTERVAL"] = "0"
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        input.fileHandleForWriting.write(Data((stdin ?? "").utf8))
        try input.fileHandleForWriting.close()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
    }
}

func temporaryDirectory() throws -> URL {
    let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("qlora-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite(.serialized) struct CLITests {
    @Test func helpListsEveryCommandAndExitCodes() throws {
        let help = try CLI.run(["--help"])
        #expect(help.status == 0)
        for word in ["run", "status", "validate", "bench", "plan", "Exit status of `run`: 0 success", "interrupted"] {
            #expect(help.stdout.contains(word), "missing \(word)")
        }
        let runHelp = try CLI.run(["run", "--help"])
        for flag in ["--run-dir", "--from", "--only", "--force", "--ci"] { #expect(runHelp.stdout.contains(flag)) }
    }

    @Test func badArgumentsExitTwo() throws {
        #expect(try CLI.run(["run", "--bogus"]).status == 2)
        #expect(try CLI.run(["run", "pipelines/tiny.yaml", "--from", "nowhere"]).status == 2)
        let missing = try CLI.run(["run", "does-not-exist.yaml"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("does-not-exist.yaml:1:1: error: cannot read the spec file: no such file"))
    }

    @Test func everyShippedPipelineValidates() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: CLI.root.appendingPathComponent("pipelines").path)
            .filter { $0.hasSuffix(".yaml") }.sorted().map { "pipelines/\($0)" }
        let result = try CLI.run(["validate"] + names)
        #expect(result.status == 0, "\(result.all)")
        for name in names { #expect(result.stdout.contains("\(name): ok")) }
    }

    @Test func typoInSpecExitsTwoWithLocationAndSuggestion() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let spec = dir.appendingPathComponent("typo.yaml")
        try Data("name: typo\nlora:\n  lora_rnak: 16\n".utf8).write(to: spec)
        for command in [["validate", spec.path], ["run", spec.path]] {
            let result = try CLI.run(command)
            #expect(result.status == 2)
            #expect(result.stderr.contains("\(spec.path):3:3: error: lora.lora_rnak: unknown key `lora_rnak`; did you mean `lora_rank`?"))
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: CLI.root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path),
                   "tiny.yaml trains the real SmolLM2 (fetched by `make test`)"))
    func tinyRunsThenSkipsEverythingAndWritesCISummary() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let runDir = dir.appendingPathComponent("tiny").path
        let first = try CLI.run(["run", "pipelines/tiny.yaml", "--run-dir", runDir, "--ci"])
        #expect(first.status == 0, "\(first.all)")
        #expect(first.stdout.contains("ingest    running: not run yet"))
        #expect(first.stdout.contains("duplicates removed"))
        #expect(first.stdout.contains("summary: \(runDir)/summary.md"))
        let second = try CLI.run(["run", "pipelines/tiny.yaml", "--run-dir", runDir, "--ci"])
        #expect(second.status == 0)
        #expect(second.stdout.contains("ingest    skipped: up to date"))
        #expect(second.stdout.contains("tokenize  skipped: up to date"))
        #expect(second.stdout.contains("everything up to date"))
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runDir + "/summary.json"))) as! [String: Any]
        #expect(summary["status"] as? String == "succeeded")
        #expect(summary["backend"] as? String == "cpu")
        #expect(first.stdout.contains("backend: cpu (auto: "), "\(first.stdout)")
        for stage in ["train", "evaluate"] {
            let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(runDir)/\(stage)/manifest.json"))) as! [String: Any]
            #expect(manifest["backend"] as? String == "cpu", "\(stage)")
        }
        let md = try String(contentsOfFile: runDir + "/summary.md", encoding: .utf8)
        #expect(md.contains("| ingest | skipped |"))

        let status = try CLI.run(["status", runDir, "--json", "--verify"])
        #expect(status.status == 0)
        let json = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as! [String: Any]
        let stages = json["stages"] as! [[String: Any]]
        #expect(stages.map { $0["state"] as! String } == ["complete", "complete", "complete", "complete", "complete", "complete"])
        #expect(stages.map { $0["stage"] as! String } == ["ingest", "tokenize", "prepare", "train", "evaluate", "package"])
        let metrics = try String(contentsOfFile: runDir + "/train/metrics.jsonl", encoding: .utf8)
        #expect(metrics.split(separator: "\n").count == 4)
        #expect(FileManager.default.fileExists(atPath: runDir + "/train/adapter_model.safetensors"))
        #expect(!FileManager.default.fileExists(atPath: runDir + "/train.checkpoints"), "checkpoints are removed once training completes")
        // The adapter manifest's copy beside the archive is the adapter manifest (package/manifest.json is the stage's).
        let copy = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runDir + "/package/adapter-manifest.json"))) as! [String: Any]
        #expect(copy["format"] as? String == "qlora-adapter")
        let stageManifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runDir + "/package/manifest.json"))) as! [String: Any]
        #expect(stageManifest["stage"] as? String == "package")
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: runDir + "/evaluate/report.json"))) as! [String: Any]
        let tasks = report["tasks"] as! [[String: Any]]
        #expect(tasks.map { $0["name"] as! String } == ["arc_easy"] && tasks.first?["questions"] as? Int == 20)
        #expect((report["samples"] as! [Any]).count == 1)
        #expect((report["eval_loss"] as? [String: Any])?["sequences"] as? Int == 8)
        for file in ["report.md", "loss.svg", "arc_easy.predictions.jsonl"] {
            #expect(FileManager.default.fileExists(atPath: runDir + "/evaluate/" + file), "evaluate/\(file)")
        }
        let table = try CLI.run(["status", runDir])
        #expect(table.stdout.contains("ingest    complete"))
        #expect(table.stdout.contains("tokenize  complete"))
        try checkPackage(runDir)
        try checkReferenceBackend(runDir)
    }

    /// The same run on `ReferenceBackend` (the scalar definitions) through the same model code: the data stages
    /// stay up to date (they do not compute on a backend), train, evaluate and package rerun because the backend is
    /// part of their fingerprint, and the losses agree with the CPU backend's within 1e-4 relative.
    ///
    /// Skipped under ThreadSanitizer (`QLORA_SANITIZER=thread`, set by scripts/sanitize.sh): `ReferenceBackend` is
    /// single-threaded scalar code, so TSan has nothing to find in it, and instrumented it takes hours on SmolLM2;
    /// the pipeline code around it is the CPU run's above, which TSan does check.
    func checkReferenceBackend(_ runDir: String) throws {
        if ProcessInfo.processInfo.environment["QLORA_SANITIZER"] == "thread" { return }
        let refDir = runDir + "-reference"
        try FileManager.default.copyItem(atPath: runDir, toPath: refDir)
        defer { try? FileManager.default.removeItem(atPath: refDir) }
        let run = try CLI.run(["run", "pipelines/tiny.yaml", "--run-dir", refDir, "--backend", "reference", "--ci"])
        #expect(run.status == 0, "\(run.all)")
        #expect(run.stdout.contains("backend: reference"), "\(run.stdout)")
        #expect(run.stdout.contains("prepare   skipped: up to date"), "\(run.stdout)")
        #expect(run.stdout.contains("train     running: configuration or inputs changed"), "\(run.stdout)")
        #expect(run.stdout.contains("package   running"), "\(run.stdout)")
        func losses(_ dir: String) throws -> [Double] {
            try String(contentsOfFile: dir + "/train/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
                (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["loss"] as! Double
            }
        }
        func evalLosses(_ dir: String) throws -> [Double] {
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/evaluate/report.json"))) as! [String: Any]
            let eval = report["eval_loss"] as! [String: Any]
            return ["base", "adapter"].map { (eval[$0] as! [String: Any])["loss"] as! Double }
        }
        let (cpu, reference) = (try losses(runDir) + evalLosses(runDir), try losses(refDir) + evalLosses(refDir))
        #expect(cpu.count == 6 && reference.count == 6)
        for (a, b) in zip(cpu, reference) { #expect(abs(a - b) <= 1e-4 * abs(a), "cpu \(cpu) vs reference \(reference)") }
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: refDir + "/train/manifest.json"))) as! [String: Any]
        #expect(manifest["backend"] as? String == "reference")
        #expect(try CLI.run(["verify", refDir + "/package/tiny.tar.gz"]).status == 0)
    }

    /// The package stage's archive verifies, is byte-identical when packaged again, unpacks for peft, and a
    /// tampered member (repacked) fails verification naming it.
    func checkPackage(_ runDir: String) throws {
        let archive = runDir + "/package/tiny.tar.gz"
        let verify = try CLI.run(["verify", archive])
        #expect(verify.status == 0, "\(verify.all)")
        #expect(verify.stdout.contains("OK: tiny, LoRA r=8 alpha=16"))
        let first = try Data(contentsOf: URL(fileURLWithPath: archive))
        let again = try CLI.run(["run", "pipelines/tiny.yaml", "--run-dir", runDir, "--from", "package", "--ci"])
        #expect(again.status == 0, "\(again.all)")
        #expect(again.stdout.contains("package   running"), "\(again.stdout)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: archive)) == first, "packaging the same adapter twice gives the same bytes")

        // The archive is accepted directly by evaluate and generate.
        let model = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
        let evaluate = try CLI.run(["evaluate", "--model", model, "--adapter", archive, "--task", "datasets/arc-easy-sample.jsonl",
                                    "--limit", "4", "--json"])
        #expect(evaluate.status == 0, "\(evaluate.all)")
        let scored = try JSONSerialization.jsonObject(with: Data(evaluate.stdout.utf8)) as? [String: Any]
        #expect((scored?["models"] as? [[String: Any]])?.map { $0["model"] as? String } == ["base", "base + adapter"])
        let generated = try CLI.run(["generate", "--model", model, "--adapter", archive, "--chat", "--prompt", "Hi", "--max-new-tokens", "3"])
        #expect(generated.status == 0, "\(generated.all)")

        let unpacked = runDir + "/unpacked"
        #expect(try CLI.run(["unpack", archive, unpacked]).status == 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: unpacked).sorted()
        #expect(names == ["README.md", "adapter_config.json", "adapter_model.safetensors", "chat_template.jinja", "loss.svg", "manifest.json",
                          "metrics.jsonl", "report.json", "report.md"], "\(names)")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: unpacked + "/manifest.json"))) as! [String: Any]
        #expect((manifest["tokenizer"] as? [String: Any])?["eos_token"] as? String == "<|im_end|>")
        #expect(((manifest["base_model"] as? [String: Any])?["files"] as? [[String: Any]])?.first?["sha256"] as? String != nil)
        #expect((manifest["job_spec"] as? String)?.contains("lora_rank: 8") == true)
        for member in ["adapter_model.safetensors", "adapter_config.json", "README.md", "report.json"] {
            let url = URL(fileURLWithPath: unpacked + "/" + member)
            let original = try Data(contentsOf: url)
            var bytes = [UInt8](original)
            bytes[bytes.count / 2] ^= 0x04
            try Data(bytes).write(to: url)
            let tampered = runDir + "/tampered.tar.gz"
            try ArchiveWriter.write(try ArchiveMember.files(under: URL(fileURLWithPath: unpacked)), to: URL(fileURLWithPath: tampered))
            let result = try CLI.run(["verify", tampered])
            #expect(result.status == 1, "\(member): \(result.all)")
            #expect(result.stderr.contains("- \(member): sha256"), "\(member): \(result.stderr)")
            try original.write(to: url)
        }
    }

    @Test func evaluateNamesAMissingTaskFile() throws {
        let result = try CLI.run(["evaluate", "--model", "nope.gguf", "--task", "no-such-task.jsonl"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("no-such-task.jsonl"), "\(result.stderr)")
    }

    @Test func stageFailureExitsOneNamingStageAndCause() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("{\"text\":\"fine\"}\n{\"text\":17}\n".utf8).write(to: dir.appendingPathComponent("d.jsonl"))
        try Data("name: f\ndataset:\n  files: [{path: d.jsonl, format: text}]\n".utf8).write(to: dir.appendingPathComponent("f.yaml"))
        let result = try CLI.run(["run", "f.yaml", "--ci"], in: dir)
        #expect(result.status == 1)
        #expect(result.stderr.contains("error: stage ingest failed: rejected 1 of 2 rows"))
        #expect(result.stderr.contains("d.jsonl:2 wrong_type"))
    }

    @Test func missingDatasetFileExitsTwoNamingThePath() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("name: m\ndataset:\n  files:\n    - {path: nope.jsonl, format: text}\n".utf8).write(to: dir.appendingPathComponent("m.yaml"))
        let result = try CLI.run(["run", "m.yaml"], in: dir)
        #expect(result.status == 2)
        #expect(result.stderr.contains("m.yaml:4:8: error: dataset.files[0].path: input file not found: \(dir.path)/nope.jsonl"))
    }

    static let smolTokenizer = "Tests/QLoRATokenizerTests/Fixtures/smollm2"

    @Test func encodeAndDecodeRoundTripWithHFIds() throws {
        let encoded = try CLI.run(["encode", "--tokenizer", Self.smolTokenizer], stdin: "Hello world! 123\nCafé déjà vu.\n<|im_start|>user\n")
        #expect(encoded.status == 0, "\(encoded.all)")
        #expect(encoded.stdout == "[19556,905,17,216,33,34,35]\n[51,1939,2756,32564,90,16739,386,101,30]\n[1,4093]\n")
        let plain = try CLI.run(["encode", "--tokenizer", Self.smolTokenizer, "--no-special"], stdin: "<|im_start|>\n")
        #expect(plain.stdout != "[1]\n")
        let decoded = try CLI.run(["decode", "--tokenizer", Self.smolTokenizer], stdin: "[19556,905,17,216,33,34,35]\n[1,4093,198]\n")
        #expect(decoded.stdout == "Hello world! 123\n<|im_start|>user\\n\n")
        let bad = try CLI.run(["decode", "--tokenizer", Self.smolTokenizer], stdin: "[1, \"x\"]\n")
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("stdin:1: expected a JSON array"))
    }

    @Test func chatTemplateRendersTheModelsTemplate() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let messages = dir.appendingPathComponent("m.json")
        try Data(#"[{"role":"user","content":"What is the capital of France?"}]"#.utf8).write(to: messages)
        let result = try CLI.run(["chat-template", "--tokenizer", Self.smolTokenizer, "--messages", messages.path, "--add-generation-prompt"])
        #expect(result.status == 0, "\(result.all)")
        #expect(result.stdout == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func malformedTokenizerIsAClearError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("tokenizer.json")
        try Data(#"{"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}}"#.utf8).write(to: file)
        let result = try CLI.run(["encode", "--tokenizer", file.path], stdin: "a\n")
        #expect(result.status == 2)
        #expect(result.stderr.contains("\(file.path): model.merges[0]: `b` is not in the vocab"))
    }

    static let smolGGUF = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    @Test(.enabled(if: FileManager.default.fileExists(atPath: CLI.root.appendingPathComponent(smolGGUF).path),
                   "run scripts/fetch_model.py (make data)"))
    func generateAnswersTheCapitalOfFrance() throws {
        let result = try CLI.run(["generate", "--model", Self.smolGGUF, "--chat", "--prompt", "What is the capital of France?",
                                  "--max-new-tokens", "24"])
        #expect(result.status == 0, "\(result.all)")
        #expect(result.stdout == "The capital of France is Paris.\n")
        let logits = try CLI.run(["logits", "--model", Self.smolGGUF, "--prompt", "The capital of France is", "--top-k", "1", "--json"])
        #expect(logits.status == 0)
        #expect(logits.stdout.contains(#""id":7042"#))
        #expect(try CLI.run(["generate", "--model", "nope.gguf", "--prompt", "x"]).status == 2)
    }

    @Test func quantizeThenInspectShowsFourBitWeights() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = "Tests/QLoRAModelTests/Fixtures/mha_untied/model.safetensors"
        let out = dir.appendingPathComponent("q.safetensors").path
        let q = try CLI.run(["quantize", "--input", source, "--output", out, "--include", "_proj"])
        #expect(q.status == 0, "\(q.all)")
        #expect(q.stdout.contains("bits/parameter"))
        let inspect = try CLI.run(["inspect", out])
        #expect(inspect.status == 0, "\(inspect.all)")
        #expect(inspect.stdout.contains("model.layers.0.mlp.up_proj.weight"))
        #expect(inspect.stdout.contains("nf4 block 64"))
        #expect(inspect.stdout.contains("double quant"))
        #expect(!inspect.stdout.contains("nested_quant_map"), "auxiliary entries only with --all")
        // The embedding stays fp32 (not matched by --include).
        #expect(inspect.stdout.contains("model.embed_tokens.weight") && inspect.stdout.contains("F32"))
        let bits = inspect.stdout.split(separator: "\n").first { $0.hasPrefix("4-bit:") }.flatMap { line in
            line.split(separator: " ").firstIndex(of: "bits/parameter").map { Double(line.split(separator: " ")[$0 - 1]) } ?? nil
        }
        #expect(bits.map { $0 <= 4.15 && $0 > 4.1 } == true, "\(inspect.stdout)")
        let noDQ = try CLI.run(["quantize", "--input", source, "--output", out, "--no-double-quant"])
        #expect(noDQ.status == 0)
        #expect(try CLI.run(["inspect", out]).stdout.contains("4.5000 bits/parameter"))
        let missing = try CLI.run(["inspect", dir.appendingPathComponent("nope").path])
        #expect(missing.status == 2)
        let badBlock = try CLI.run(["quantize", "--input", source, "--output", out, "--blocksize", "48"])
        #expect(badBlock.status == 2 && badBlock.stderr.contains("--blocksize"))
    }
}
