import Foundation
import QLoRACPU
import QLoRAFormats
import QLoRAModel
import Testing

/// Model configs are validated when loaded (HF config.json and GGUF metadata): every field that sizes a
/// tensor or enters RoPE/RMSNorm must make sense, and the file must hold exactly the layers it declares.
/// Errors name the file and the field (or the first missing/extra tensor).
@Suite struct ConfigValidationTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/gqa_tied")

    static let base: [(String, String)] = [
        ("model_type", #""llama""#), ("hidden_size", "64"), ("intermediate_size", "128"), ("num_hidden_layers", "2"),
        ("num_attention_heads", "4"), ("num_key_value_heads", "2"), ("vocab_size", "256"),
    ]

    @Test(arguments: [
        ("num_attention_heads", #"0"#, "num_attention_heads"),
        ("num_attention_heads", #"-4"#, "num_attention_heads"),
        ("num_key_value_heads", #"0"#, "num_key_value_heads"),
        ("num_key_value_heads", #"3"#, "num_key_value_heads"),
        ("head_dim", #"0"#, "head_dim"),
        ("head_dim", #"15"#, "head_dim"),
        ("hidden_size", #"0"#, "hidden_size"),
        ("intermediate_size", #"-1"#, "intermediate_size"),
        ("vocab_size", #"0"#, "vocab_size"),
        ("num_hidden_layers", #"0"#, "num_hidden_layers"),
        ("max_position_embeddings", #"0"#, "max_position_embeddings"),
        ("rms_norm_eps", #"0"#, "rms_norm_eps"),
        ("rms_norm_eps", #"-1e-6"#, "rms_norm_eps"),
        ("rms_norm_eps", #"1e-60"#, "rms_norm_eps"),
        ("rope_theta", #"0"#, "rope_theta"),
        ("rope_theta", #"-10000"#, "rope_theta"),
        ("rope_scaling", #"{"rope_type":"linear","factor":0}"#, "rope_scaling.factor"),
        ("rope_scaling", #"{"rope_type":"llama3","factor":8,"low_freq_factor":4,"high_freq_factor":4,"original_max_position_embeddings":8192}"#, "high_freq_factor"),
        ("rope_scaling", #"{"rope_type":"llama3","factor":8,"low_freq_factor":1,"high_freq_factor":4,"original_max_position_embeddings":0}"#, "original_max_position_embeddings"),
    ])
    func hfConfigFieldsAreValidated(key: String, value: String, field: String) throws {
        let pairs = Self.base.filter { $0.0 != key } + [(key, value)]
        let json = "{" + pairs.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
        let error = #expect(throws: ModelError.self) { try LlamaConfig.fromHF(Array(json.utf8), file: "/m/config.json") }
        #expect(error?.file == "/m/config.json")
        #expect(error?.message.contains(field) == true, "\(error.map { "\($0)" } ?? "no error") should name \(field)")
    }

    private func gguf(_ edit: (inout [GGUFMetadata.Entry]) -> Void, keepLayers: Int? = nil) throws -> URL {
        let file = try GGUFFile(path: Self.fixture.appendingPathComponent("model.gguf").path)
        var entries = Array(file.metadata.entries)
        edit(&entries)
        var tensors: [GGUFWriter.Tensor] = []
        for info in file.tensors {
            if let keepLayers, info.name.hasPrefix("blk."), Int(info.name.split(separator: ".")[1])! >= keepLayers { continue }
            tensors.append(GGUFWriter.Tensor(name: info.name, dims: info.dims, type: .f32,
                                             data: SafetensorsWriter.encode(try file.floats(info), as: .f32)!))
        }
        let url = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("config-\(UUID().uuidString).gguf")
        try Data(try GGUFWriter.serialize(metadata: entries, tensors: tensors)).write(to: url)
        return url
    }

    private func set(_ entries: inout [GGUFMetadata.Entry], _ key: String, _ value: GGUFValue) {
        entries.removeAll { $0.key == key }
        entries.append(GGUFMetadata.Entry(key: key, value: value))
    }

    @Test(arguments: [
        ("llama.rope.freq_base", GGUFValue.float32(.nan)),
        ("llama.rope.freq_base", GGUFValue.float32(-1)),
        ("llama.attention.layer_norm_rms_epsilon", GGUFValue.float32(.infinity)),
        ("llama.attention.head_count", GGUFValue.uint32(0)),
        ("llama.attention.head_count_kv", GGUFValue.uint32(0)),
        ("llama.rope.scaling.factor", GGUFValue.float32(.nan)),
    ])
    func ggufMetadataIsValidated(key: String, value: GGUFValue) throws {
        let url = try gguf { entries in
            set(&entries, key, value)
            if key.hasPrefix("llama.rope.scaling") { set(&entries, "llama.rope.scaling.type", .string("linear")) }
        }
        defer { try? FileManager.default.removeItem(at: url) }
        let error = #expect(throws: ModelError.self) { try ModelLoader.loadModel(path: url.path, backend: CPUBackend(threads: 1)) }
        #expect(error?.file == url.path)
        #expect(error?.message.contains(key) == true, "\(error.map { "\($0)" } ?? "no error") should name \(key)")
    }

    @Test func ggufWithMoreOrFewerLayersThanDeclaredIsRefused() throws {
        let extra = try gguf { set(&$0, "llama.block_count", .uint32(1)) }
        defer { try? FileManager.default.removeItem(at: extra) }
        let e1 = #expect(throws: ModelError.self) { try ModelLoader.loadModel(path: extra.path, backend: CPUBackend(threads: 1)) }
        #expect(e1?.message.contains("`blk.1.") == true && e1?.message.contains("1 layer") == true, "\(e1.map { "\($0)" } ?? "")")
        let fewer = try gguf({ _ in }, keepLayers: 1)
        defer { try? FileManager.default.removeItem(at: fewer) }
        let e2 = #expect(throws: ModelError.self) { try ModelLoader.loadModel(path: fewer.path, backend: CPUBackend(threads: 1)) }
        #expect(e2?.message.contains("`blk.1.") == true && e2?.message.contains("missing") == true, "\(e2.map { "\($0)" } ?? "")")
    }

    @Test func hfDirectoryWithMoreLayersThanDeclaredIsRefused() throws {
        let dir = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.copyItem(at: Self.fixture.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        let config = try String(contentsOf: Self.fixture.appendingPathComponent("config.json"), encoding: .utf8)
            .replacingOccurrences(of: #""num_hidden_layers": 2"#, with: #""num_hidden_layers": 1"#)
        try config.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let error = #expect(throws: ModelError.self) { try ModelLoader.loadModel(path: dir.path, backend: CPUBackend(threads: 1)) }
        #expect(error?.message.contains("`model.layers.1.") == true && error?.message.contains("num_hidden_layers") == true,
                "\(error.map { "\($0)" } ?? "")")
        // The prepare stage's reader refuses it too.
        #expect(throws: ModelError.self) { try ModelPreparer.prepare(source: dir.path, into: dir.appendingPathComponent("out"), options: PrepareOptions()) }
    }
}
