import Foundation
import Testing
@testable import QLoRAFormats

/// Adapter packages: the manifest's self digest, `AdapterVerifier` on directories, and archives written,
/// verified and tampered with.
@Suite struct AdapterPackageTests {
    static let arch = AdapterManifest.Architecture(modelType: "llama", hiddenSize: 8, intermediateSize: 12, layers: 2, heads: 2,
                                                   kvHeads: 1, headDim: 4, vocabSize: 32)
    static let targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    /// A complete, valid package for the tiny architecture in a fresh directory.
    static func makePackage(rank: Int = 2) throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qlora-pkg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var tensors: [SafetensorsWriter.FloatTensor] = []
        var params = 0
        for layer in 0..<arch.layers {
            for module in targets {
                let shape = arch.shape(of: module)!
                tensors.append((PEFTAdapterFormat.key(layer: layer, module: module, isA: true), [rank, shape.in],
                                (0..<(rank * shape.in)).map { Float($0 % 7) * 0.01 }))
                tensors.append((PEFTAdapterFormat.key(layer: layer, module: module, isA: false), [shape.out, rank],
                                (0..<(rank * shape.out)).map { Float($0 % 5) * 0.02 }))
                params += rank * (shape.in + shape.out)
            }
        }
        try SafetensorsWriter.write(floats: tensors, metadata: ["format": "pt"], to: dir.appendingPathComponent("adapter_model.safetensors"))
        let config = """
            {"base_model_name_or_path": "tiny", "bias": "none", "lora_alpha": 4, "lora_dropout": 0.05, "peft_type": "LORA", \
            "r": \(rank), "target_modules": [\(targets.map { "\"\($0)\"" }.joined(separator: ", "))], "task_type": "CAUSAL_LM", "use_rslora": false}
            """
        try Data(config.utf8).write(to: dir.appendingPathComponent("adapter_config.json"))
        try Data("# tiny\n".utf8).write(to: dir.appendingPathComponent("README.md"))
        var files: [AdapterManifest.File] = []
        for name in ["adapter_config.json", "adapter_model.safetensors", "README.md"] {
            let d = try FileDigest.of(file: dir.appendingPathComponent(name))
            files.append(.init(path: name, sha256: d.sha256, size: d.size))
        }
        let manifest = AdapterManifest(
            name: "tiny", files: files,
            baseModel: .init(source: "tiny.gguf", files: [.init(path: "tiny.gguf", sha256: String(repeating: "ab", count: 32), size: 10)],
                             architecture: arch, quantization: ["quant_type": "nf4"], preparedDigest: "x"),
            datasets: [], data: ["train_examples": 3],
            tokenizer: .init(source: "t.json", files: [], chatTemplate: "{{ x }}", eosToken: "</s>", eosTokenID: 2, bosToken: nil),
            adapter: .init(rank: rank, alpha: 4, dropout: 0.05, useRSLoRA: false, targetModules: targets, trainableParameters: params),
            metrics: ["train.final_loss": 1.5], jobSpec: "name: tiny\n", tool: .init(name: "qlora", version: "test", build: [:]))
        try manifest.encoded().write(to: dir.appendingPathComponent(AdapterManifest.fileName))
        return dir
    }

    @Test func manifestCarriesItsOwnDigest() throws {
        let dir = try Self.makePackage()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bytes = try Data(contentsOf: dir.appendingPathComponent(AdapterManifest.fileName))
        let decoded = try JSONDecoder().decode(AdapterManifest.self, from: bytes)
        #expect(AdapterManifest.selfDigest(of: bytes) == decoded.manifestSHA256)
        #expect(decoded.manifestSHA256 != String(repeating: "0", count: 64))
        // Encoding is deterministic: the same manifest gives the same bytes.
        #expect(try decoded.encoded() == bytes)
    }

    @Test func aCompletePackageVerifies() throws {
        let dir = try Self.makePackage()
        defer { try? FileManager.default.removeItem(at: dir) }
        let report = try AdapterVerifier.verify(directory: dir)
        #expect(report.manifest.name == "tiny")
        #expect(report.checks.count == 4, "\(report.checks)")
    }

    @Test(arguments: ["adapter_config.json", "adapter_model.safetensors", "README.md", "manifest.json"])
    func flippingOneByteFailsNamingTheFile(_ member: String) throws {
        let dir = try Self.makePackage()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent(member)
        var bytes = [UInt8](try Data(contentsOf: url))
        let offset = member == "manifest.json" ? bytes.count / 3 : bytes.count / 2
        bytes[offset] ^= 0x01
        try Data(bytes).write(to: url)
        let error = #expect(throws: AdapterVerifier.Failure.self) { try AdapterVerifier.verify(directory: dir) }
        #expect(error?.problems.first?.hasPrefix("\(member):") == true, "\(error?.problems ?? [])")
    }

    @Test func extraMissingAndInconsistentMembersAreNamed() throws {
        let dir = try Self.makePackage()
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data("x".utf8).write(to: dir.appendingPathComponent("extra.bin"))
        try FileManager.default.removeItem(at: dir.appendingPathComponent("README.md"))
        let error = #expect(throws: AdapterVerifier.Failure.self) { try AdapterVerifier.verify(directory: dir) }
        let problems = error?.problems ?? []
        #expect(problems.contains("extra.bin: present but not listed in the manifest"), "\(problems)")
        #expect(problems.contains("README.md: listed in the manifest but missing"), "\(problems)")
    }

    @Test func tensorsMustMatchTheArchitectureAndConfig() throws {
        // A package whose manifest says rank 2 but whose files hold rank 3: consistent hashes, wrong content.
        let dir = try Self.makePackage(rank: 3)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent(AdapterManifest.fileName)
        var manifest = try JSONDecoder().decode(AdapterManifest.self, from: Data(contentsOf: url))
        manifest.adapter.rank = 2
        try manifest.encoded().write(to: url)
        let error = #expect(throws: AdapterVerifier.Failure.self) { try AdapterVerifier.verify(directory: dir) }
        let problems = error?.problems ?? []
        #expect(problems.contains { $0.hasPrefix("adapter_config.json: r is 3, the manifest says 2") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("adapter_model.safetensors: base_model.model.model.layers.0.") && $0.contains("expected [2, 8]") },
                "\(problems)")
    }

    @Test(arguments: ArchiveFormat.allCases)
    func archivesAreReproducibleAndVerify(_ format: ArchiveFormat) throws {
        let dir = try Self.makePackage()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("qlora-pkg-out-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: out) }
        let members = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        let a = out.appendingPathComponent("a.\(format.fileExtension)"), b = out.appendingPathComponent("b.\(format.fileExtension)")
        try AdapterPackage.write(directory: dir, members: members, to: a)
        try AdapterPackage.write(directory: dir, members: members.reversed(), to: b)
        #expect(try Data(contentsOf: a) == Data(contentsOf: b))
        #expect(try AdapterPackage.verify(archive: a).manifest.name == "tiny")

        // Tampered member, repacked: the archive is well formed but fails verification naming the member.
        let weights = dir.appendingPathComponent("adapter_model.safetensors")
        var bytes = [UInt8](try Data(contentsOf: weights))
        bytes[bytes.count - 5] ^= 0x80
        try Data(bytes).write(to: weights)
        let tampered = out.appendingPathComponent("t.\(format.fileExtension)")
        try AdapterPackage.write(directory: dir, members: members, to: tampered)
        let error = #expect(throws: AdapterVerifier.Failure.self) { try AdapterPackage.verify(archive: tampered) }
        #expect(error?.source == "t.\(format.fileExtension)")
        #expect(error?.problems.first?.hasPrefix("adapter_model.safetensors: sha256") == true, "\(error?.problems ?? [])")
    }
}
