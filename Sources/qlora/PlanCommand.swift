import ArgumentParser
import Foundation
import QLoRABackends
import QLoRACUDA
import QLoRAPipeline

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Predict a job before running it: each stage's peak memory, which stages would run or be skipped and why, and whether training fits.",
        discussion: """
            Reads the spec and the model's configuration (no weights), the run directory's manifests (read-only: no \
            lock, nothing written) and hashes the inputs as `run` would, so each stage's fingerprint is the one `run` \
            would record (a CI cache key). Memory is estimated from the model shape, LoRA rank and targets, sequence \
            length (tokenizer.max_seq_len), micro-batch (training.batch_size), checkpointing and the paged optimizer's \
            budget, with formulas calibrated on `qlora bench train` (Sources/QLoRAPipeline/Plan/MemoryPlan.swift), \
            and judged with a 15% margin against --memory, else the GPU's memory (cuda) or this machine's RAM. \
            `qlora run` makes the same check before it starts and refuses a training stage that cannot fit \
            (--ignore-plan runs it anyway). Exit status 1 when training does not fit, 2 for a bad spec.

            Examples:
              qlora plan pipelines/tiny.yaml
              qlora plan pipelines/guanaco-65b.yaml --backend cuda --memory 48GiB
              qlora plan pipelines/quickstart.yaml --model-shape llama3-8b --memory 24GiB --json
            """)

    @Argument(help: "The job spec (YAML).")
    var spec: String

    @Option(name: .customLong("run-dir"), help: "Run directory (default: the spec's).")
    var runDir: String?

    @Option(help: "Backend the job would run on: auto, cpu, reference or cuda.")
    var backend: BackendChoice?

    @Option(help: "Memory to fit in, e.g. 24GiB, 48GB, 512MiB (default: the GPU's for cuda, else this machine's RAM).")
    var memory: String?

    @Option(help: "Plan for a published model shape instead of the spec's model file: \(ModelShape.presets.map(\.name).joined(separator: ", ")).")
    var modelShape: String?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let spec = try loadSpec(self.spec)
        let plan: JobPlan
        do {
            plan = try makePlan(spec: spec, runDir: runDir, backend: backend, memory: memory, modelShape: modelShape)
        } catch let error as PlanArgumentError {
            printError("error: \(error.message)")
            throw ExitCode(2)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(plan), as: UTF8.self))
        } else {
            printSafe(plan.text)
        }
        if !plan.fits { throw ExitCode(1) }
    }
}

struct PlanArgumentError: Error { var message: String }

/// The plan `plan` prints and `run` checks.
func makePlan(spec: JobSpec, runDir: String?, backend: BackendChoice?, memory: String?, modelShape: String?,
              to: StageID? = nil, only: StageID? = nil, from: StageID? = nil, force: Bool = false,
              stageDecisions: Bool = true) throws -> JobPlan {
    let choice = backend ?? spec.backend
    let name = choice == .auto ? "cpu" : choice.rawValue   // auto is the CPU in this build (Backends.make says why)
    var shape: ModelShape?
    if let modelShape {
        guard let preset = ModelShape.preset(modelShape) else {
            throw PlanArgumentError(message: "--model-shape \(modelShape): not one of \(ModelShape.presets.map(\.name).joined(separator: ", "))")
        }
        shape = preset
    }
    var limit: Int64?
    if let memory {
        guard let bytes = parseByteSize(memory) else { throw PlanArgumentError(message: "--memory \(memory): expected a size such as 24GiB, 48GB or 512MiB") }
        limit = bytes
    }
    let device = name == "cuda" ? CUDAProbe.run(libraries: false).devices.first.map { Int64($0.memoryBytes) } : nil
    return try JobPlan.make(spec: spec, options: .init(runDirectory: runDir, from: from, only: only, force: force, to: to),
                            backend: name, shape: shape, limitBytes: limit, deviceMemoryBytes: device, stageDecisions: stageDecisions)
}

/// "24GiB", "48GB", "512MiB", "1.5TiB", or plain bytes.
func parseByteSize(_ text: String) -> Int64? {
    let kib = 1024.0, mib = kib * kib, gib = mib * kib, tib = gib * kib
    let units: [(String, Double)] = [("TiB", tib), ("GiB", gib), ("MiB", mib), ("KiB", kib), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6),
                                     ("KB", 1e3), ("T", tib), ("G", gib), ("M", mib), ("K", kib), ("B", 1)]
    let t = text.trimmingCharacters(in: .whitespaces)
    for (suffix, factor) in units where t.hasSuffix(suffix) {
        guard let v = Double(t.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)), v > 0, v.isFinite else { return nil }
        return Int64(v * factor)
    }
    return Int64(t).flatMap { $0 > 0 ? $0 : nil }
}
