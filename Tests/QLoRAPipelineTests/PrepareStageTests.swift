import Foundation
import Testing
@testable import QLoRAFormats
@testable import QLoRAPipeline

@Suite struct PrepareStageTests {
    static let tinyModel = repositoryRoot.appendingPathComponent("Tests/QLoRAModelTests/Fixtures/gqa_tied").path

    private func run(_ spec: JobSpec) throws -> EventLog {
        let log = EventLog()
        _ = try Pipeline.run(spec: spec, options: .init()) { log.append($0) }
        return log
    }

    @Test func prepareWritesABitsAndBytesCheckpointAndIsReused() throws {
        try withTemporaryDirectory { dir in
            let yaml = """
                name: p
                run_dir: run
                model:
                  path: \(Self.tinyModel)
                quantization:
                  quant_type: nf4
                  blocksize: 64
                  double_quant: true
                """
            let spec = try loadSpec(yaml, in: dir)
            #expect(try run(spec).decisions == ["prepare:ran:not run yet"])
            #expect(try run(spec).decisions == ["prepare:skipped"])
            let runDir = RunDirectory(url: dir.appendingPathComponent("run"))
            let manifest = try #require(runDir.manifest(.prepare))
            #expect(manifest.outputs.map(\.path) == ["memory.json", "model/config.json", "model/model.safetensors"])
            #expect(manifest.inputs.map { URL(fileURLWithPath: $0.path).lastPathComponent } == ["config.json", "model.safetensors"])
            let memory = try JSONParser.parse(Array(try Data(contentsOf: runDir.stageURL(.prepare).appendingPathComponent("memory.json"))))
            let bits = try #require(memory.objectValue?["bits_per_quantized_parameter"]?.numberValue)
            #expect(bits > 4.12 && bits < 4.15)
            // A different block size re-quantizes.
            let spec2 = try loadSpec(yaml.replacingOccurrences(of: "blocksize: 64", with: "blocksize: 128"), in: dir)
            #expect(try run(spec2).decisions == ["prepare:ran:configuration or inputs changed"])
        }
    }

    @Test func quantizationWithoutAModelIsASpecError() throws {
        _ = try withTemporaryDirectory { dir in
            #expect(throws: SpecErrors.self) { _ = try loadSpec("name: q\nquantization: {blocksize: 64}\n", in: dir) }
        }
    }
}
