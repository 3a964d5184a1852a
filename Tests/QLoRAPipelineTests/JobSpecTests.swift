import Foundation
import QLoRABackends
import QLoRACore
import Testing
@testable import QLoRAPipeline

@Suite struct JobSpecTests {
    @Test(arguments: [
        ("name: !!python/object:os.system x\n", 1, 7, "name", "!!python/object:os.system"),
        ("name: x\nseed: !custom 3\n", 2, 7, "seed", "!custom"),
        ("name: x\ndataset: !!binary aGVsbG8=\n", 2, 10, "dataset", "!!binary"),
        ("name: x\ndataset:\n  files:\n    - !!python/object/apply:subprocess.call {path: a}\n", 4, 7, "dataset.files[0]", "!!python/object/apply:subprocess.call"),
        ("!!omap\nname: x\n", 1, 1, "", "!!omap"),
    ])
    func explicitYAMLTagsAreRefused(yaml: String, line: Int, column: Int, keyPath: String, tag: String) throws {
        let error = #expect(throws: SpecError.self) { try JobSpec.parse(yaml: yaml, file: "s.yaml") }
        #expect(error?.line == line && error?.column == column, "\(error.map { "\($0)" } ?? "")")
        #expect(error?.keyPath == keyPath)
        #expect(error?.message.contains("YAML tag `\(tag)` is not allowed") == true, "\(error.map { "\($0)" } ?? "")")
    }

    @Test func coreTagsAndPlainValuesStillDecode() throws {
        let spec = try JobSpec.parse(yaml: "name: !!str x\nseed: !!int 7\n", file: "s.yaml")
        #expect(spec.name == "x" && spec.seed == 7)
    }

    @Test func typoedKeyNamesFileLineColumnKeyPathAndSuggestion() throws {
        try withTemporaryDirectory { dir in
            try write("{}", to: dir.appendingPathComponent("a.jsonl"))
            let yaml = """
                name: typo
                dataset:
                  files:
                    - {path: a.jsonl, format: chat}
                lora:
                  lora_rnak: 16
                """
            let error = #expect(throws: SpecError.self) { try loadSpec(yaml, in: dir) }
            #expect(error?.line == 6)
            #expect(error?.column == 3)
            #expect(error?.keyPath == "lora.lora_rnak")
            #expect(error?.description.contains("did you mean `lora_rank`?") == true)
            #expect(error?.description.hasPrefix(dir.appendingPathComponent("spec.yaml").path + ":6:3: error:") == true)
        }
    }

    @Test func unknownTopLevelKeyIsAnError() throws {
        let error = #expect(throws: SpecError.self) { try JobSpec.parse(yaml: "name: x\nseeed: 3\n", file: "s.yaml") }
        #expect(error?.description == "s.yaml:2:1: error: seeed: unknown key `seeed`; did you mean `seed`?")
    }

    @Test func unknownKeyWithoutCloseMatchListsKnownKeys() throws {
        let error = #expect(throws: SpecError.self) {
            try JobSpec.parse(yaml: "name: x\npackage:\n  zzzzzz: 1\n", file: "s.yaml")
        }
        #expect(error?.message == "unknown key `zzzzzz` (known keys: archive)")
    }

    @Test func enumValueSuggestsClosest() throws {
        let error = #expect(throws: SpecError.self) {
            try JobSpec.parse(yaml: "name: x\ndataset:\n  files:\n    - path: a.jsonl\n      format: alpacca\n", file: "s.yaml")
        }
        #expect(error?.keyPath == "dataset.files[0].format")
        #expect(error?.line == 5)
        #expect(error?.column == 15)
        #expect(error?.message.contains("did you mean `alpaca`?") == true)
    }

    @Test func backendIsAutoByDefaultAndOneOfTheKnownBackends() throws {
        #expect(try JobSpec.parse(yaml: "name: x\n", file: "s.yaml").backend == .auto)
        #expect(try JobSpec.parse(yaml: "name: x\nbackend: reference\n", file: "s.yaml").backend == .reference)
        #expect(try JobSpec.parse(yaml: "name: x\n", file: "s.yaml").normalizedYAML().contains("backend: auto\n"))
        let error = #expect(throws: SpecError.self) { try JobSpec.parse(yaml: "name: x\nbackend: refrence\n", file: "s.yaml") }
        #expect(error?.keyPath == "backend")
        #expect(error?.message.contains("did you mean `reference`?") == true)
    }

    @Test func wrongTypeIsLocated() throws {
        let error = #expect(throws: SpecError.self) {
            try JobSpec.parse(yaml: "name: x\nseed: lots\n", file: "s.yaml")
        }
        #expect(error?.description == "s.yaml:2:7: error: seed: expected an integer, got `lots`")
    }

    @Test func yesIsNotABoolean() throws {
        let error = #expect(throws: SpecError.self) {
            try JobSpec.parse(yaml: "name: x\ndataset:\n  files: []\n  dedupe: yes\n", file: "s.yaml")
        }
        #expect(error?.message == "expected true or false, got `yes`")
    }

    @Test func invalidYAMLHasALocation() throws {
        let error = #expect(throws: SpecError.self) {
            try JobSpec.parse(yaml: "name: x\ndataset: [unclosed\n", file: "s.yaml")
        }
        #expect(error?.message.hasPrefix("invalid YAML") == true)
        #expect((error?.line ?? 0) >= 2)
    }

    @Test func missingRequiredKey() throws {
        let error = #expect(throws: SpecError.self) { try JobSpec.parse(yaml: "seed: 1\n", file: "s.yaml") }
        #expect(error?.message == "missing required key `name`")
    }

    @Test(arguments: [
        ("lora:\n  lora_dropout: 1.0\n", "lora.lora_dropout", "must be in [0, 1), got 1.0"),
        ("lora:\n  lora_dropout: -0.1\n", "lora.lora_dropout", "must be in [0, 1), got -0.1"),
        ("lora:\n  lora_rank: 0\n", "lora.lora_rank", "must be in 1...1024, got 0"),
        ("quantization:\n  blocksize: 100\n", "quantization.blocksize", "must be a power of two in 32...4096, got 100"),
        ("training:\n  learning_rate: 0\n", "training.learning_rate", "must be in (0, 1], got 0.0"),
        ("training:\n  paged_optimizer_budget_mb: 0\n", "training.paged_optimizer_budget_mb", "must be >= 1, got 0"),
        ("training:\n  paged_optimizer_budget_mb: 8\n  optimizer: adamw_32bit\n", "training.paged_optimizer_budget_mb",
         "applies only to optimizer paged_adamw_32bit (the optimizer is adamw_32bit)"),
        ("quantization:\n  compute_dtype: bfloat16\n", "quantization.compute_dtype",
         "`bfloat16` is not supported by the cpu backend (it computes in `float32` only; bfloat16 needs `backend: cuda`)"),
        ("quantization:\n  compute_dtype: float16\nbackend: cuda\n", "quantization.compute_dtype",
         "`float16` is not supported by the cuda backend (it computes in `float32`, `bfloat16` only)"),
        ("training:\n  optimizer: adamw_8bit\n", "training.optimizer",
         "`adamw_8bit` is not supported by the cpu backend (supported: `paged_adamw_32bit`, `adamw_32bit`; no backend has 8-bit AdamW yet)"),
        ("dataset:\n  eval_fraction: 1\n  files: []\n", "dataset.eval_fraction", "must be in [0, 1), got 1.0"),
        ("dataset:\n  max_rejected_fraction: 2\n  files: []\n", "dataset.max_rejected_fraction", "must be in [0, 1], got 2.0"),
    ])
    func rangeChecksPointAtTheKey(section: String, keyPath: String, message: String) throws {
        let spec = try JobSpec.parse(yaml: "name: x\n" + section, file: "s.yaml")
        let problems = spec.problems()
        let match = problems.first { $0.keyPath == keyPath }
        #expect(match?.message == message, "\(problems)")
        #expect(match?.line == 3)
    }

    @Test func computeDtypeIsFloat32UnlessTheSpecAsksForBfloat16OnCUDA() throws {
        let plain = try JobSpec.parse(yaml: "name: x\nbackend: cuda\nquantization: {}\n", file: "s.yaml")
        let dtypeProblems = { (spec: JobSpec) in spec.problems().filter { $0.keyPath == "quantization.compute_dtype" } }
        #expect(plain.computePrecision == .fp32 && dtypeProblems(plain).isEmpty)
        let bf16 = try JobSpec.parse(yaml: "name: x\nbackend: cuda\nquantization:\n  compute_dtype: bfloat16\n", file: "s.yaml")
        #expect(bf16.computePrecision == .bf16 && dtypeProblems(bf16).isEmpty, "\(bf16.problems())")
        // The CPU backends refuse bf16 when made, too (a `--backend cpu` override of a cuda spec).
        let error = try #require(throws: BackendUnavailable.self) { try Backends.make(.cpu, threads: 1, precision: .bf16) }
        #expect(error.description == "backend cpu computes in fp32 only; bf16 compute needs the CUDA backend (backend: cuda)")
        #expect(throws: Never.self) { try Backends.make(.reference, threads: 1, precision: .fp32) }
    }

    @Test func pathsResolveRelativeToTheSpecFile() throws {
        let spec = try JobSpec.parse(yaml: "name: x\n", file: "/some/dir/spec.yaml")
        #expect(spec.resolve("../data/a.jsonl").path == "/some/data/a.jsonl")
        #expect(spec.resolve("/abs/b.csv").path == "/abs/b.csv")
        var withRunDir = spec
        withRunDir.runDir = "out"
        #expect(withRunDir.runDirectory(override: nil).path == "/some/dir/out")
        #expect(withRunDir.runDirectory(override: "/x/y").path == "/x/y")
    }

    @Test func defaultsAreFilledInTheNormalizedSpec() throws {
        let spec = try JobSpec.parse(yaml: "name: x\nlora: {}\n", file: "s.yaml")
        #expect(spec.lora?.loraRank == 16)
        #expect(spec.lora?.targetModules == LoRASection.allTargetModules)
        let yaml = try spec.normalizedYAML()
        #expect(yaml.contains("lora_alpha: 32.0\n"))
        #expect(yaml.contains("lora_dropout: 0.05\n"))
        #expect(yaml.contains("seed: 42"))
        // The normalized spec reads back to the same values.
        let again = try JobSpec.parse(yaml: yaml, file: "s.yaml")
        #expect(again.lora == spec.lora)
    }

    @Test func everyShippedPipelineValidates() throws {
        let dir = repositoryRoot.appendingPathComponent("pipelines")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.contains("tiny.yaml") && files.contains("quickstart.yaml"))
        for file in files {
            let path = dir.appendingPathComponent(file).path
            let text = try String(contentsOfFile: path, encoding: .utf8)
            #expect(text.hasPrefix("#"), "\(file) must start with a comment saying what it runs")
            #expect(throws: Never.self, "\(file)") { try JobSpec.load(path: path) }
        }
    }

    @Test func suggestionUsesEditDistanceWithTranspositions() {
        #expect(Suggestion.editDistance("lora_rnak", "lora_rank") == 1)
        #expect(Suggestion.editDistance("kitten", "sitting") == 3)
        #expect(Suggestion.closest(to: "lora_rnak", in: ["lora_rank", "lora_alpha"]) == "lora_rank")
        #expect(Suggestion.closest(to: "completely_different", in: ["lora_rank"]) == nil)
    }
}
