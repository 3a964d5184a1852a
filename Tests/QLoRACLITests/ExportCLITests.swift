import Foundation
import QLoRAFormats
import Testing

/// `qlora export` on the LoRA golden fixtures: a tiny LLaMA (HF directory) and the adapter PEFT saved for it.
@Suite(.serialized) struct ExportCLITests {
    static let model = "Tests/QLoRAGradTests/Fixtures/lora/model"
    static let adapter = "Tests/QLoRAGradTests/Fixtures/lora/adapter"

    @Test func mergedExportWritesACheckpointWithItsFidelity() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("merged").path
        let run = try CLI.run(["export", "merged", "--model", Self.model, "--adapter", Self.adapter, "--out", out, "--dtype", "fp32"])
        #expect(run.status == 0, "\(run.all)")
        #expect(run.stdout.contains("(14 projections merged)") && run.stdout.contains("fidelity (float32): max |Δlogit|"))
        let fidelity = try JSONParser.parse(Array(try Data(contentsOf: URL(fileURLWithPath: out).appendingPathComponent("fidelity.json"))))
        #expect((fidelity["max_abs_logit_diff"]?.numberValue ?? 1) < 1e-4)
        for name in ["config.json", "model.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: URL(fileURLWithPath: out).appendingPathComponent(name).path))
        }
        let again = try CLI.run(["export", "merged", "--model", Self.model, "--adapter", Self.adapter, "--out", out, "--no-fidelity"])
        #expect(again.status == 1 && again.stderr.contains("already exists (use --force"))
        #expect(try CLI.run(["export", "merged", "--model", Self.model, "--adapter", Self.adapter, "--out", out, "--dtype", "int8"]).status == 2)
        let noAdapter = try CLI.run(["export", "merged", "--model", Self.model, "--adapter", dir.path, "--out", out + "2"])
        #expect(noAdapter.status == 1 && noAdapter.stderr.contains("adapter_config.json: missing"))
    }

    @Test func ggufLoRAExportNeedsTheBaseForQAndK() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("a.gguf").path
        let run = try CLI.run(["export", "gguf-lora", "--adapter", Self.adapter, "--base", Self.model, "--out", out])
        #expect(run.status == 0, "\(run.all)")
        #expect(run.stdout.contains("28 tensors, architecture llama, rank 8") && run.stdout.contains("rows permuted"))
        let file = try GGUFFile(path: out)
        #expect(file.metadata["general.type"] == .string("adapter") && file.tensors.count == 28)
        let noBase = try CLI.run(["export", "gguf-lora", "--adapter", Self.adapter, "--out", out])
        #expect(noBase.status == 1 && noBase.stderr.contains("pass --base"))
        #expect(try CLI.run(["export", "gguf-lora", "--adapter", Self.adapter, "--out", out, "--outtype", "q8_0"]).status == 2)
    }
}
