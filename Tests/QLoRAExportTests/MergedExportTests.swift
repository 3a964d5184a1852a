import Foundation
import QLoRACore
import QLoRACPU
import QLoRAFormats
import QLoRAModel
import QLoRAPipeline
import QLoRATraining
import Testing

@Suite("Merged export")
struct MergedExportTests {
    /// A base of each kind: HF directories (tied and untied head), the converter-layout GGUF (Q/K rows permuted
    /// in the file), and a prepared NF4 + double-quant directory.
    static let sources = ["gqa_tied", "mha_untied", "gqa_tied/model.gguf", "prepared nf4"]

    /// The base path for `source` (preparing the NF4 directory under `dir`).
    static func base(_ source: String, in dir: URL) throws -> String {
        guard source == "prepared nf4" else { return ExportFixtures.path(source) }
        let out = dir.appendingPathComponent("prepared")
        _ = try ModelPreparer.prepare(source: ExportFixtures.path("gqa_tied"), into: out, options: PrepareOptions())
        return out.path
    }

    static func export(_ base: String, _ adapter: PEFTAdapter, dtype: MergedExport.DType, in dir: URL,
                       name: String = "merged") throws -> MergedExport.Report {
        let adapterDir = dir.appendingPathComponent("adapter-\(name)")
        try adapter.write(to: adapterDir)
        return try MergedExport.run(.init(model: base, adapter: adapterDir, output: dir.appendingPathComponent(name), dtype: dtype),
                                    backend: CPUBackend())
    }

    @Test(arguments: sources)
    func fp32ExportMatchesTheAdapterOnTheBase(source: String) throws {
        let dir = try ExportFixtures.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try Self.base(source, in: dir)
        let baseModel = try ModelLoader.loadModel(path: base, backend: CPUBackend())
        let adapter = ExportFixtures.adapter(for: baseModel.config)
        let report = try Self.export(base, adapter, dtype: .fp32, in: dir)
        let f = try #require(report.fidelity)
        print("[fp32 from \(source)] \(f.summary)")
        #expect(f.maxAbsLogitDiff < 1e-4, "\(f.summary)")
        #expect(f.top1Agreement == 1)
        #expect(report.mergedProjections == 7 * baseModel.config.layers)

        // The adapter really changes the function: the export is far from the base.
        let merged = try ModelLoader.loadModel(path: report.output.path, backend: CPUBackend())
        #expect(ExportFixtures.maxAbsDiff(ExportFixtures.logits(merged, ExportFixtures.ids),
                                          ExportFixtures.logits(baseModel, ExportFixtures.ids)) > 0.1)

        // A plain HF checkpoint: HF names, every tensor F32, config without quantization_config.
        let file = try SafetensorsFile(path: report.output.appendingPathComponent("model.safetensors").path)
        #expect(file.tensors.allSatisfy { $0.dtype == .f32 })
        #expect(file.names.contains("model.layers.1.mlp.down_proj.weight"))
        #expect(file.names.contains("lm_head.weight") == (source == "mha_untied"))
        #expect(!file.names.contains { $0.contains("absmax") || $0.hasPrefix("blk.") })
        let config = try #require(try JSONParser.parse(Array(try Data(contentsOf: report.output.appendingPathComponent("config.json")))).objectValue)
        #expect(config["torch_dtype"] == .string("float32"))
        #expect(config["quantization_config"] == nil)
        let fidelity = try JSONParser.parse(Array(try Data(contentsOf: report.output.appendingPathComponent("fidelity.json"))))
        #expect(fidelity["max_abs_logit_diff"]?.numberValue == f.maxAbsLogitDiff)
        // Nothing but the checkpoint and the inputs is left in the parent directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }.isEmpty)
    }

    /// bf16 rounds every tensor (embeddings and norms too) to 8 significant bits (relative error ≤ 2⁻⁹). On these
    /// models (logits up to ~10) that measured max |Δlogit| 0.15 and mean KL 3e-4 nats (top-1 96-99%); the bound
    /// is 0.3 / 1e-3. fp16 (11 bits, ≤ 2⁻¹²) measured 0.026 and 4e-6 nats; bound 0.05 / 2e-5.
    @Test(arguments: [MergedExport.DType.bf16, .fp16])
    func sixteenBitExportsStayWithinTheRoundingBound(dtype: MergedExport.DType) throws {
        let dir = try ExportFixtures.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        for source in ["gqa_tied", "prepared nf4"] {
            let base = try Self.base(source, in: dir)
            let config = try ModelLoader.loadModel(path: base, backend: CPUBackend()).config
            let report = try Self.export(base, ExportFixtures.adapter(for: config), dtype: dtype, in: dir, name: "merged-\(source.count)")
            let f = try #require(report.fidelity)
            print("[\(dtype) from \(source)] \(f.summary)")
            let bound = dtype == .bf16 ? (logit: 0.3, kl: 1e-3) : (logit: 0.05, kl: 2e-5)
            #expect(f.maxAbsLogitDiff < bound.logit, "\(f.summary)")
            #expect(f.meanKL < bound.kl, "\(f.summary)")
            #expect(f.maxAbsLogitDiff > 1e-6, "the export should be rounded")
            let file = try SafetensorsFile(path: report.output.appendingPathComponent("model.safetensors").path)
            #expect(file.tensors.allSatisfy { $0.dtype == (dtype == .bf16 ? .bf16 : .f16) })
        }
    }

    @Test func refusesAMismatchedAdapterAndLeavesNothingBehind() throws {
        let dir = try ExportFixtures.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        var other = try ModelLoader.loadModel(path: ExportFixtures.path("gqa_tied"), backend: CPUBackend()).config
        other.intermediateSize = 96
        #expect {
            _ = try Self.export(ExportFixtures.path("gqa_tied"), ExportFixtures.adapter(for: other), dtype: .bf16, in: dir)
        } throws: { "\($0)".contains("gate_proj.lora_B.weight`: shape [96, 4], expected [128, 4]") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["adapter-merged"])
    }

    @Test func replacesAnExistingExportOnlyWhenForced() throws {
        let dir = try ExportFixtures.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = ExportFixtures.path("gqa_tied")
        let config = try ModelLoader.loadModel(path: base, backend: CPUBackend()).config
        let adapterDir = dir.appendingPathComponent("adapter")
        try ExportFixtures.adapter(for: config).write(to: adapterDir)
        let out = dir.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try Data("old".utf8).write(to: out.appendingPathComponent("marker"))
        var p = MergedExport.Parameters(model: base, adapter: adapterDir, output: out, dtype: .fp32, fidelity: false)
        #expect { _ = try MergedExport.run(p, backend: CPUBackend()) } throws: { "\($0)".contains("already exists") }
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("marker").path))
        p.force = true
        let report = try MergedExport.run(p, backend: CPUBackend())
        #expect(report.fidelity == nil)
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("marker").path))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir.path)) == ["adapter", "out"])
    }
}
