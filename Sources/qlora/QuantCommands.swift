import ArgumentParser
import Foundation
import QLoRACore
import QLoRAFormats
import QLoRAModel

extension FourBitType: ExpressibleByArgument {}
extension NestedRounding: ExpressibleByArgument {}
extension FloatStorage: ExpressibleByArgument {}

/// Quantization options shared by `quantize` and `prepare`.
struct FourBitArguments: ParsableArguments {
    @Option(help: "4-bit data type: nf4 or fp4.")
    var quantType: FourBitType = .nf4

    @Option(help: "Elements per block: 32, 64, 128, 256, 512, 1024, 2048 or 4096.")
    var blocksize = 64

    @Flag(inversion: .prefixedNo, help: "Double-quantize the block scales (8-bit, block 256).")
    var doubleQuant = true

    @Option(help: "Rounding of double-quantized scales: nearest (bitsandbytes CUDA) or bitsandbytes-cpu.")
    var nestedRounding: NestedRounding = .nearest

    func validate() throws {
        guard FourBitTensor.allowedBlocksizes.contains(blocksize) else {
            throw ValidationError("--blocksize must be one of \(FourBitTensor.allowedBlocksizes.map(String.init).joined(separator: ", "))")
        }
    }

    var options: FourBitOptions {
        FourBitOptions(type: quantType, blocksize: blocksize, doubleQuant: doubleQuant, nestedRounding: nestedRounding)
    }
}

struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Quantize the 2-D floating tensors of a safetensors file to bitsandbytes' 4-bit layout.",
        discussion: """
            Each selected tensor becomes the entries bitsandbytes' Linear4bit saves for it (packed U8 codes, block \
            scales, with double quant the nested scales, and the JSON quant state). Other tensors are copied \
            unchanged. Streams one tensor at a time (the loop the prepare stage uses); the output is written atomically.
            """)

    @Option(help: "Input .safetensors file.")
    var input: String

    @Option(help: "Output .safetensors file.")
    var output: String

    @Option(help: "Only quantize 2-D floating tensors whose name matches this regular expression.")
    var include: String?

    @OptionGroup var quant: FourBitArguments

    func run() throws {
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: input) } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let pattern: NSRegularExpression?
        do { pattern = try include.map { try NSRegularExpression(pattern: $0) } } catch {
            printError("error: --include: not a valid regular expression: \(include ?? "")")
            throw ExitCode(2)
        }
        func selected(_ t: SafetensorsTensorInfo) -> Bool {
            guard t.shape.count == 2, [.f32, .f16, .bf16, .f64].contains(t.dtype), !BitsAndBytesFormat.isAuxiliary(t.name) else { return false }
            guard let pattern else { return true }
            return pattern.firstMatch(in: t.name, range: NSRange(t.name.startIndex..., in: t.name)) != nil
        }
        let options = quant.options
        let items = file.tensors.map { t in
            let storage: FloatStorage = t.dtype == .bf16 ? .bfloat16 : t.dtype == .f16 ? .float16 : .float32
            return BitsAndBytesStreamQuantizer.Item(
                name: t.name, shape: t.shape,
                action: selected(t) ? .quantize(dtype: storage, load: { try file.floats(t) }) : .keepBytes(dtype: t.dtype, bytes: { file.data(t) }),
                release: { file.releasePages(t) })
        }
        do {
            let written = try BitsAndBytesStreamQuantizer.write(items, options: options, to: URL(fileURLWithPath: output),
                                                                metadata: file.metadata)
            let quantized = written.filter { $0.bitsPerParameter != nil }
            let params = quantized.reduce(0) { $0 + $1.parameters }
            let bits = quantized.reduce(0.0) { $0 + $1.bitsPerParameter! * Double($1.parameters) }
            print("quantized \(quantized.count) tensors (\(params) parameters) to \(options.type.rawValue), "
                + String(format: "%.3f bits/parameter", bits / Double(max(1, params))) + " → \(output)")
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors of a safetensors file or model directory: dtype, shape, bytes, and 4-bit quant states.")

    @Argument(help: "A .safetensors file or a directory with model.safetensors (or a sharded index).")
    var path: String

    @Flag(help: "Also list the auxiliary entries of 4-bit weights.")
    var all = false

    func run() throws {
        let checkpoint: SafetensorsCheckpoint
        do { checkpoint = try SafetensorsCheckpoint(path: path) } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        var totalBytes = 0, totalParams = 0, qParams = 0, qBits = 0.0, qBytes = 0
        var lines: [String] = []
        let names = checkpoint.names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        for name in names {
            guard let (_, info) = checkpoint.tensor(named: name) else { continue }
            totalBytes += info.byteCount
            let aux = BitsAndBytesFormat.isAuxiliary(name)
            if aux && !all { continue }
            let q: FourBitTensor?
            do { q = aux ? nil : try BitsAndBytesFormat.read(checkpoint, weightName: name) } catch {
                printError("error: \(error)")
                throw ExitCode(1)
            }
            if let q {
                qParams += q.count
                qBits += q.bitsPerParameter * Double(q.count)
                qBytes += q.storageBytes
                totalParams += q.count
                var state = "\(q.type.rawValue) block \(q.blocksize) → \(q.dtype.rawValue)"
                if case .nested(let n) = q.scales {
                    state += ", double quant (offset \(n.offset), \(n.absmax.count) nested scales of \(n.blocksize))"
                } else {
                    state += ", float32 scales"
                }
                lines.append(pad(name, 52) + " " + pad("4-bit", 6) + " " + pad("\(q.shape)", 16)
                    + String(format: " %10ld  %.3f bits/param  ", q.storageBytes, q.bitsPerParameter) + state)
            } else {
                if !aux { totalParams += info.elementCount }
                lines.append(pad(name, 52) + " " + pad(info.dtype.rawValue, 6) + " " + pad("\(info.shape)", 16)
                    + String(format: " %10ld", info.byteCount))
            }
        }
        lines.forEach { print($0) }
        print("")
        print("\(checkpoint.files.count) file(s), \(totalBytes) tensor bytes, \(totalParams) parameters")
        if qParams > 0 {
            print(String(format: "4-bit: %ld parameters in %ld bytes, %.4f bits/parameter (codes + scales)", qParams, qBytes,
                         qBits / Double(qParams)))
        }
    }
}

struct PrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Quantize a base model's projections to 4 bits into a directory transformers + bitsandbytes can load.",
        discussion: """
            The same work as the pipeline's prepare stage: config.json with quantization_config, model.safetensors in \
            bitsandbytes' layout (q/k/v/o/gate/up/down in 4 bits; embeddings, norms and lm_head in --dtype), and \
            the tokenizer files of an HF source. Streams one tensor at a time; prints a memory report.
            """)

    @Option(help: "An HF model directory or a .gguf file.")
    var model: String

    @Option(help: "Output directory.")
    var output: String

    @Option(help: "Storage dtype of the unquantized tensors: float32, bfloat16 or float16.")
    var dtype: FloatStorage = .float32

    @Option(help: "Compute dtype recorded for bitsandbytes (and the dtype 4-bit weights dequantize to).")
    var computeDtype: FloatStorage = .float32

    @OptionGroup var quant: FourBitArguments

    func run() throws {
        let options = PrepareOptions(quant: quant.options, keptDType: dtype, computeDType: computeDtype)
        let plain = !isTerminal(STDERR_FILENO)
        do {
            var lastPrinted = -1
            let report = try ModelPreparer.prepare(source: model, into: URL(fileURLWithPath: output), options: options) { done, total, _ in
                let percent = total == 0 ? 100 : done * 100 / total
                if percent / 10 != lastPrinted / 10 || (!plain && percent != lastPrinted) {
                    lastPrinted = percent
                    printError("prepare: \(done)/\(total) tensors (\(percent)%)")
                }
            }
            printPrepareReport(report)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}

func pad(_ s: String, _ width: Int) -> String {
    s.count >= width ? s : s.padding(toLength: width, withPad: " ", startingAt: 0)
}

func printPrepareReport(_ r: PrepareReport) {
    for c in r.components {
        print("  " + c.name.padding(toLength: 24, withPad: " ", startingAt: 0)
            + String(format: "%12ld params %12ld bytes  ", c.parameters, c.bytes) + c.dtype)
    }
    print(String(format: "4-bit part: %.4f bits/parameter; file %ld bytes (source %ld); %.2f s; peak RSS %.1f MB",
                 r.bitsPerQuantizedParameter, r.fileBytes, r.sourceBytes, r.seconds, Double(r.peakRSSBytes) / 1e6))
}
