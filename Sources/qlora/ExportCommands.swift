import ArgumentParser
import Foundation
import QLoRABackends
import QLoRAFormats
import QLoRAPipeline

extension MergedExport.DType: ExpressibleByArgument {}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a trained adapter: merged into an HF checkpoint, or as a llama.cpp LoRA GGUF.",
        subcommands: [ExportMergedCommand.self, ExportGGUFLoRACommand.self])
}

struct ExportMergedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merged",
        abstract: "Merge a PEFT adapter into its base (W + s·B·A) and write an HF checkpoint transformers loads as is.",
        discussion: """
            The base is an HF directory, a GGUF file or a prepared 4-bit directory (NF4 weights are dequantized with \
            their stored scales: the weights the adapter was trained against). Writes config.json (torch_dtype = \
            --dtype, no quantization_config), model.safetensors with HF names, the tokenizer files, and \
            fidelity.json: max |Δlogit| and KL between the unmerged adapter on the base (fp32) and the export loaded \
            back from disk, over a few prompts. Streams one tensor at a time; the directory appears only when complete.

            Exit status: 0 success, 1 the export failed, 2 bad arguments.
            """)

    @Option(help: "The base model: HF directory, .gguf file or prepared 4-bit directory.")
    var model: String

    @Option(help: "The PEFT adapter directory (adapter_config.json + adapter_model.safetensors) or a qlora package archive.")
    var adapter: String

    @Option(help: "The checkpoint directory to create.")
    var out: String

    @Option(help: "Storage dtype of every tensor: bf16, fp16 or fp32.")
    var dtype: MergedExport.DType = .bf16

    @Option(help: "Tokenizer for the fidelity prompts (its files are copied when it is a directory); default: the model's.")
    var tokenizer: String?

    @Option(help: "Fidelity prompts: a text file, one prompt per line (default: four built-in prompts).")
    var prompts: String?

    @Flag(help: "Skip the fidelity measurement (it loads the base and then the export).")
    var noFidelity = false

    @Flag(help: "Replace --out if it exists.")
    var force = false

    @Option(help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(help: "Backend of the fidelity check: auto, cpu, reference or cuda.")
    var backend: BackendChoice = .auto

    func run() throws {
        var promptList: [String]?
        if let prompts {
            guard let text = try? String(contentsOfFile: prompts, encoding: .utf8) else {
                printError("error: cannot read --prompts \(prompts)")
                throw ExitCode(2)
            }
            promptList = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
            if promptList!.isEmpty {
                printError("error: --prompts \(prompts) has no prompts")
                throw ExitCode(2)
            }
        }
        let opened = try openAdapter(adapter)
        defer { opened.close() }
        let parameters = MergedExport.Parameters(
            model: model, adapter: opened.directory, output: URL(fileURLWithPath: out), dtype: dtype,
            tokenizer: tokenizer, prompts: promptList, fidelity: !noFidelity, force: force)
        let backend = try Backends.make(self.backend, threads: threads).backend
        do {
            var lastPercent = -1
            let report = try MergedExport.run(parameters, backend: backend) { event in
                switch event {
                case .tensor(let done, let total, _):
                    let percent = total == 0 ? 100 : done * 100 / total
                    if percent / 10 != lastPercent / 10 {
                        lastPercent = percent
                        printError("export: \(done)/\(total) tensors (\(percent)%)")
                    }
                case .fidelity(let what):
                    printError("fidelity: \(what)")
                }
            }
            print(String(format: "wrote %@: %ld tensors (%ld projections merged), model.safetensors %ld bytes (%@); %.1f s, peak RSS %.0f MB",
                         report.output.path, report.tensors, report.mergedProjections, report.modelBytes, dtype.torchName,
                         report.seconds, Double(report.peakRSSBytes) / 1e6))
            if let f = report.fidelity {
                print(f.summary)
                for p in f.prompts {
                    print("  " + pad("\"\(p.label.replacingOccurrences(of: "\n", with: " "))\"", 44)
                        + String(format: "%3ld tokens  max |Δlogit| %.3g  mean KL %.3g  top-1 %.0f%%",
                                 p.tokens, p.maxAbsLogitDiff, p.meanKL, 100 * p.top1Agreement))
                }
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}

struct ExportGGUFLoRACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gguf-lora",
        abstract: "Write a PEFT adapter as a llama.cpp LoRA adapter GGUF (llama-cli --lora FILE).",
        discussion: """
            Tensors blk.N.<attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down>.weight.lora_a/.lora_b, \
            general.type = adapter, adapter.lora.alpha. For the llama architecture the lora_b rows of attn_q and \
            attn_k are permuted as llama.cpp's converter permutes the base's Q/K rows, which needs the base's head \
            counts: pass --base (the base GGUF, whose tensors are also checked against the adapter, or an HF \
            directory).

            Exit status: 0 success, 1 the export failed, 2 bad arguments.
            """)

    @Option(help: "The PEFT adapter directory or a qlora package archive.")
    var adapter: String

    @Option(help: "The .gguf file to write.")
    var out: String

    @Option(help: "The base model (.gguf, HF or prepared directory); default: adapter_config's base_model_name_or_path if local.")
    var base: String?

    @Option(help: "Tensor type: f32, f16 or bf16.")
    var outtype: String = "f32"

    func run() throws {
        let type: GGUFTensorType
        switch outtype.lowercased() {
        case "f32": type = .f32
        case "f16": type = .f16
        case "bf16": type = .bf16
        default:
            printError("error: --outtype must be f32, f16 or bf16")
            throw ExitCode(2)
        }
        let opened = try openAdapter(adapter)
        defer { opened.close() }
        do {
            let r = try GGUFLoRAExport.run(.init(adapter: opened.directory, output: URL(fileURLWithPath: out),
                                                 base: base, type: type))
            for note in r.notes { printError("note: \(note)") }
            print("wrote \(r.output.path): \(r.tensors) tensors, architecture \(r.architecture), rank \(r.rank), "
                + "adapter.lora.alpha \(r.alpha), \(type)" + (r.permutedQK ? ", attn_q/attn_k lora_b rows permuted" : "")
                + (r.base.map { ", checked against \($0)" } ?? ""))
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}

/// An adapter directory, or a package archive unpacked safely and verified (exit 1 naming the problem otherwise).
func openAdapter(_ path: String) throws -> AdapterPackage.Opened {
    do {
        let opened = try AdapterPackage.open(path: path)
        if FileManager.default.fileExists(atPath: opened.directory.appendingPathComponent(AdapterManifest.fileName).path) {
            do { _ = try AdapterVerifier.verify(directory: opened.directory, source: path) } catch {
                opened.close()
                throw error
            }
        }
        return opened
    } catch {
        printError("error: \(error)")
        throw ExitCode(1)
    }
}
