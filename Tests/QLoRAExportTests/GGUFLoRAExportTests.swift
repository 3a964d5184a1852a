import Foundation
import QLoRACore
import QLoRACPU
import QLoRAFormats
import QLoRAModel
import QLoRAPipeline
import QLoRATraining
import Testing

@Suite("GGUF LoRA export")
struct GGUFLoRAExportTests {
    static let baseGGUF = ExportFixtures.path("gqa_tied/model.gguf")

    static func config() throws -> LlamaConfig {
        try ModelLoader.loadModel(path: ExportFixtures.path("gqa_tied"), backend: CPUBackend()).config
    }

    /// What llama.cpp computes for a base tensor with a LoRA pair: `W + (alpha / r)·B·A` with `r = lora_b.ne0`,
    /// in the GGUF file's own row order. Returns a merged copy of `base` (F32, same metadata) as GGUF bytes.
    static func llamaCppMerge(base: GGUFFile, lora: GGUFFile) throws -> [UInt8] {
        let alpha = try #require(lora.metadata["adapter.lora.alpha"]?.double)
        var tensors: [GGUFWriter.Tensor] = []
        for info in base.tensors {
            var w = try base.floats(info)
            if let a = lora.tensor(named: info.name + ".lora_a"), let b = lora.tensor(named: info.name + ".lora_b") {
                #expect(a.dims[0] == info.dims[0] && b.dims[1] == info.dims[1] && a.dims[1] == b.dims[0])
                let r = b.dims[0]
                let pair = LoRAPair(rank: r, inFeatures: a.dims[0], outFeatures: b.dims[1], a: try lora.floats(a), b: try lora.floats(b))
                pair.merge(scale: Float(alpha) / Float(r), into: &w)
            }
            tensors.append(GGUFWriter.Tensor(name: info.name, dims: info.dims, type: .f32,
                                             data: SafetensorsWriter.encode(w, as: .f32)!))
        }
        return try GGUFWriter.serialize(metadata: Array(base.metadata.entries), tensors: tensors)
    }

    @Test func writesLlamaCppsAdapterLayout() throws {
        let dir = try ExportFixtures.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = try Self.config()
        let adapter = ExportFixtures.adapter(for: c)
        try adapter.write(to: dir.appendingPathComponent("adapter"))
        let out = dir.appendingPathComponent("lora.gguf")
        let report = try GGUFLoRAExport.run(.init(adapter: dir.appendingPathComponent("adapter"), output: out, base: Self.baseGGUF))
        #expect(report.permutedQK && report.architecture == "llama" && report.tensors == 2 * 7 * c.layers)

        let file = try GGUFFile(path: out.path)
        #expect(file.metadata["general.type"] == .string("adapter"))
        #expect(file.metadata["adapter.type"] == .string("lora"))
        #expect(file.metadata["general.architecture"] == .string("llama"))
        #expect(file.metadata["adapter.lora.alpha"] == .float32(8))
        let base = try GGUFFile(path: Self.baseGGUF)
        for (i, layer) in adapter.weights.layers.enumerated() {
            for (p, ad) in layer {
                let name = "blk.\(i).\(GGUFLoRAExport.ggufName(p)).weight"
                let a = try #require(file.tensor(named: name + ".lora_a")), b = try #require(file.tensor(named: name + ".lora_b"))
                let w = try #require(base.tensor(named: name))
                #expect(a.type == .f32 && b.type == .f32)
                #expect(a.dims == [ad.inFeatures, 4] && b.dims == [4, ad.outFeatures])
                #expect(a.dims[0] == w.dims[0] && b.dims[1] == w.dims[1])
                #expect(try file.floats(a) == ad.a, "lora_a is PEFT's A, never permuted")
                var rows = try file.floats(b)
                if p == .q || p == .k {
                    #expect(rows != ad.b)
                    GGUFDequantizer.unpermuteRows(&rows, rows: ad.outFeatures, columns: 4, heads: p == .q ? c.heads : c.kvHeads)
                }
                #expect(rows == ad.b)
            }
        }
        // f16 halves the tensor bytes and says so in general.file_type.
        let half = dir.appendingPathComponent("lora-f16.gguf")
        _ = try GGUFLoRAExport.run(.init(adapter: dir.appendingPathComponent("adapter"), output: half, base: Self.baseGGUF, type: .f16))
        let f16 = try GGUFFile(path: half.path)
        #expect(f16.tensors.allSatisfy { $0.type == .f16 } && f16.metadata["general.file_type"] == .uint32(1))
    }

    /// The end-to-end check of the Q/K handling: applying the GGUF adapter to the converter-layout base the way
    /// llama.cpp does (in GGUF row order), then loading that through our GGUF reader (which un-permutes Q/K),
    /// gives the adapted model of the HF checkpoint + PEFT adapter. Without the lora_b permutation it does not.
    @Test func llamaCppStyleMergeReproducesTheAdaptedHFModel() throws {
        let dir = try ExportFixtures.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let hf = try ModelLoader.loadModel(path: ExportFixtures.path("gqa_tied"), backend: CPUBackend())
        let adapter = ExportFixtures.adapter(for: hf.config)
        let reference = adaptedModel(config: hf.config, weights: hf.weights, lora: adapter.lora, adapters: adapter.weights,
                                  backend: CPUBackend(), gradientCheckpointing: false).logits(ExportFixtures.ids.map { Int32($0) })
        try adapter.write(to: dir.appendingPathComponent("adapter"))
        let out = dir.appendingPathComponent("lora.gguf")
        _ = try GGUFLoRAExport.run(.init(adapter: dir.appendingPathComponent("adapter"), output: out, base: Self.baseGGUF))
        let base = try GGUFFile(path: Self.baseGGUF)

        func mergedLogits(_ lora: GGUFFile, name: String) throws -> [Float] {
            let url = dir.appendingPathComponent(name)
            try Data(try Self.llamaCppMerge(base: base, lora: lora)).write(to: url)
            return ExportFixtures.logits(try ModelLoader.loadModel(path: url.path, backend: CPUBackend()), ExportFixtures.ids)
        }
        let ours = try mergedLogits(try GGUFFile(path: out.path), name: "merged.gguf")
        #expect(ExportFixtures.maxAbsDiff(ours, reference) < 1e-4)

        // Control: the same tensors with lora_b left in HF row order (what the qwen2 architecture writes).
        let (metadata, unpermuted) = try GGUFLoRAExport.build(adapter, architecture: "qwen2", config: hf.config, type: .f32)
        let wrong = try mergedLogits(try GGUFFile(bytes: try GGUFWriter.serialize(metadata: metadata, tensors: unpermuted)),
                                     name: "wrong.gguf")
        #expect(ExportFixtures.maxAbsDiff(wrong, reference) > 0.05)
    }

    @Test func rsLoRAAlphaIsScaledSoLlamaCppAppliesTheTrainedScale() throws {
        let c = try Self.config()
        let adapter = ExportFixtures.adapter(for: c, rank: 4, alpha: 8, useRSLoRA: true)
        let (metadata, _) = try GGUFLoRAExport.build(adapter, architecture: "llama", config: c, type: .f32)
        let alpha = try #require(metadata.first { $0.key == "adapter.lora.alpha" }?.value.double)
        #expect(Float(alpha) / 4 == adapter.lora.scaling)  // llama.cpp: alpha / r; rsLoRA: 8 / √4
    }

    @Test func needsTheBaseToPermuteQAndK() throws {
        let dir = try ExportFixtures.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        let c = try Self.config()
        try ExportFixtures.adapter(for: c).write(to: dir.appendingPathComponent("qk"))
        #expect {
            _ = try GGUFLoRAExport.run(.init(adapter: dir.appendingPathComponent("qk"), output: dir.appendingPathComponent("a.gguf")))
        } throws: { "\($0)".contains("pass --base") }
        // Without Q/K there is nothing to permute.
        try ExportFixtures.adapter(for: c, targets: [.v, .down]).write(to: dir.appendingPathComponent("v"))
        let r = try GGUFLoRAExport.run(.init(adapter: dir.appendingPathComponent("v"), output: dir.appendingPathComponent("v.gguf")))
        #expect(r.tensors == 8 && !r.permutedQK)
        // An HF directory works as the base too (config only).
        let hf = try GGUFLoRAExport.run(.init(adapter: dir.appendingPathComponent("qk"), output: dir.appendingPathComponent("b.gguf"),
                                              base: ExportFixtures.path("gqa_tied")))
        #expect(hf.permutedQK)
        let built = try GGUFLoRAExport.build(try PEFTAdapter.load(directory: dir.appendingPathComponent("qk")),
                                             architecture: "llama", config: c, type: .f32)
        #expect(try Data(contentsOf: dir.appendingPathComponent("b.gguf"))
            == Data(try GGUFWriter.serialize(metadata: built.metadata, tensors: built.tensors)))
    }

    @Test func refusesAnAdapterThatDoesNotFitTheBase() throws {
        let dir = try ExportFixtures.tmp()
        defer { try? FileManager.default.removeItem(at: dir) }
        var c = try Self.config()
        c.layers = 3
        try ExportFixtures.adapter(for: c).write(to: dir.appendingPathComponent("adapter"))
        #expect {
            _ = try GGUFLoRAExport.run(.init(adapter: dir.appendingPathComponent("adapter"), output: dir.appendingPathComponent("a.gguf"),
                                             base: Self.baseGGUF))
        } throws: { "\($0)".contains("layer 2 does not exist") }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("a.gguf").path))
    }
}
