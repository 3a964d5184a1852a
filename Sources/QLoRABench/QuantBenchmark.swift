import Foundation
import QLoRACore
import QLoRACPU
import QLoRAFormats
import QLoRAModel

/// `qlora bench nf4`: NF4 dequantization GB/s next to memcpy, and the 4-bit linear forward/backward next to fp32 sgemm. The command (Sources/qlora/) sets the options and calls `run`.
public struct NF4Benchmark: Sendable {
    public var tokens: Int = 1024
    public var threads: Int?
    public var repeats: Int = 7

    public init() {}

    public func run() throws {
        let threads = self.threads ?? ProcessInfo.processInfo.activeProcessorCount
        let cpu = CPUBackend(threads: threads)
        var rng = SeededGenerator(seed: 1)
        func normal(_ n: Int, scale: Float) -> [Float] {
            (0..<n).map { _ in
                let u = Double(rng.next() >> 11) / Double(1 << 53), v = Double(rng.next() >> 11) / Double(1 << 53)
                return Float((-2 * Foundation.log(max(u, 1e-300))).squareRoot() * Foundation.cos(2 * .pi * v)) * scale
            }
        }
        print("threads \(threads), dequant path \(FourBitKernels.path)")
        printGEMMKernelLine()

        // Dequantization throughput.
        let side = 4096
        let big = FourBitQuantizer.quantize(normal(side * side, scale: 0.02), shape: [side, side])
        let scales = big.scales(ofBlocks: 0..<big.blockCount)
        let out = UnsafeMutablePointer<Float>.allocate(capacity: side * side)
        let src = UnsafeMutablePointer<Float>.allocate(capacity: side * side)
        src.initialize(repeating: 1, count: side * side)
        defer {
            out.deallocate()
            src.deallocate()
        }
        let bytes = Double(side * side * 4)
        for t in Set([1, threads]).sorted() {
            let dq = medianSeconds(repeats: repeats) {
                FourBitKernels.dequantizeRows(big, scales: scales, codebook: big.type.codebook, rows: 0..<side, columns: 0..<side,
                                              into: out, threads: t)
            }
            print(String(format: "dequantize NF4 → fp32, %ld thread(s): %6.2f GB/s of fp32 output (%.1f ms for %ld×%ld)", t,
                         bytes / dq / 1e9, dq * 1e3, side, side))
        }
        let copy = medianSeconds(repeats: repeats) { out.update(from: src, count: side * side) }
        print(String(format: "memcpy of the same fp32 bytes:         %6.2f GB/s (%.1f ms)", bytes / copy / 1e9, copy * 1e3))

        // The seven projections of SmolLM2-135M (hidden 576, 9 heads / 3 kv heads of 64, intermediate 1536).
        let shapes: [(String, Int, Int)] = [("q_proj", 576, 576), ("k_proj", 192, 576), ("v_proj", 192, 576), ("o_proj", 576, 576),
                                            ("gate_proj", 1536, 576), ("up_proj", 1536, 576), ("down_proj", 576, 1536)]
        let m = tokens
        print("\nlinear at \(m) tokens (ms, median of \(repeats)):")
        print("  shape             fwd fp32   fwd nf4   ratio    bwd fp32   bwd nf4   ratio")
        var totals = (ff: 0.0, fq: 0.0, bf: 0.0, bq: 0.0)
        for (name, n, k) in shapes {
            let dense = normal(n * k, scale: 0.02)
            let q = FourBitQuantizer.quantize(dense, shape: [n, k])
            let deq = FourBitQuantizer.dequantizeReference(q)
            let x = normal(m * k, scale: 1), dy = normal(m * n, scale: 1)
            var y = [Float](repeating: 0, count: m * n), dx = [Float](repeating: 0, count: m * k)
            let ff = medianSeconds(repeats: repeats) { cpu.matmulTransposed(x, deq, &y, m: m, n: n, k: k, accumulate: false) }
            let fq = medianSeconds(repeats: repeats) { cpu.linear(x, q, &y, rows: m, accumulate: false) }
            let bf = medianSeconds(repeats: repeats) { cpu.matmul(dy, deq, &dx, m: m, n: k, k: n, accumulate: false) }
            let bq = medianSeconds(repeats: repeats) { cpu.linearBackwardInput(dy, q, &dx, rows: m, accumulate: false) }
            totals.ff += ff
            totals.fq += fq
            totals.bf += bf
            totals.bq += bq
            print("  " + "\(name) \(n)×\(k)".padding(toLength: 18, withPad: " ", startingAt: 0)
                + String(format: "%8.3f  %8.3f  %5.2fx   %8.3f  %8.3f  %5.2fx", ff * 1e3, fq * 1e3, fq / ff, bf * 1e3, bq * 1e3, bq / bf))
        }
        let flops = shapes.reduce(0.0) { $0 + 2 * Double(m * $1.1 * $1.2) }
        print(String(format: "  all seven         %8.3f  %8.3f  %5.2fx   %8.3f  %8.3f  %5.2fx", totals.ff * 1e3, totals.fq * 1e3,
                     totals.fq / totals.ff, totals.bf * 1e3, totals.bq * 1e3, totals.bq / totals.bf))
        print(String(format: "  GFLOP/s: fwd fp32 %.1f, fwd nf4 %.1f, bwd fp32 %.1f, bwd nf4 %.1f (goal: nf4 ≤ 1.25× fp32)",
                     flops / totals.ff / 1e9, flops / totals.fq / 1e9, flops / totals.bf / 1e9, flops / totals.bq / 1e9))
    }
}

/// `qlora bench perplexity`: Mean NLL / perplexity of a model on fixed passages: fp32 vs NF4+DQ vs NF4 vs FP4+DQ, side by side. The command (Sources/qlora/) sets the options and calls `run`.
public struct PerplexityBenchmark: Sendable {
    public var model: String = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    public var text: String = "datasets/fetched/lambada.jsonl"
    public var passages: Int = 100
    public var threads: Int?

    public init() {}

    public func run() throws {
        let loaded = try loadBenchModel(model, threads: threads)
        let lines: [String]
        do { lines = try String(contentsOfFile: text, encoding: .utf8).split(separator: "\n").map(String.init) } catch {
            throw BenchFailure("\(text): \(error) (run `python3 scripts/fetch_datasets.py`)")
        }
        var sequences: [[Int]] = []
        for (i, line) in lines.prefix(passages).enumerated() {
            guard let value = try? JSONParser.parse(line), let t = value.objectValue?["text"]?.stringValue else {
                throw BenchFailure("\(text):\(i + 1): no `text` field")
            }
            sequences.append(loaded.tokenizer.encode(t, addSpecialTokens: true))
        }
        let tokens = sequences.reduce(0) { $0 + $1.count - 1 }
        print("\(sequences.count) passages, \(tokens) predicted tokens, model \(model)")
        printGEMMKernelLine()
        let m = loaded.model
        let variants: [(String, FourBitOptions?)] = [
            ("fp32", nil),
            ("nf4 + double quant", FourBitOptions(type: .nf4, doubleQuant: true)),
            ("nf4", FourBitOptions(type: .nf4, doubleQuant: false)),
            ("fp4 + double quant", FourBitOptions(type: .fp4, doubleQuant: true)),
        ]
        var baseline = Double.nan
        for (name, options) in variants {
            let weights = options.map { m.weights.quantized($0) } ?? m.weights
            let model = LlamaModel(config: m.config, weights: weights, backend: m.backend)
            let t0 = Date()
            var total = 0.0
            for s in sequences where s.count > 1 { total += model.meanNLL(s) * Double(s.count - 1) }
            let nll = total / Double(tokens)
            if options == nil { baseline = nll }
            let bits = options == nil ? 32.0 : weights.layers.flatMap { $0.projections }.reduce(0.0) { acc, p in
                if case .fourBit(let t) = p.weight { return acc + t.bitsPerParameter * Double(t.count) }
                return acc
            } / Double(weights.layers.flatMap { $0.projections }.reduce(0) { $0 + $1.weight.count })
            print(name.padding(toLength: 20, withPad: " ", startingAt: 0)
                + String(format: " mean NLL %.5f  perplexity %8.3f  Δ vs fp32 %+.5f  (%.3f bits/param in the projections, %.1f s)",
                         nll, Foundation.exp(nll), nll - baseline, bits, Date().timeIntervalSince(t0)))
        }
    }
}

/// `qlora bench prepare`: Peak RSS and time of preparing a synthetic model of ≥ 2 GB fp32, against the streaming bound. The command (Sources/qlora/) sets the options and calls `run`.
public struct PrepareBenchmark: Sendable {
    public var dir: String = ".cache/bench/synthetic-llama-2gb"
    public var layers: Int = 8

    public init() {}

    public func run() throws {
        let source = URL(fileURLWithPath: dir)
        let config = LlamaConfig(hiddenSize: 2048, intermediateSize: 5632, layers: layers, heads: 16, kvHeads: 16, vocabSize: 32000,
                                 maxPositions: 2048, rmsNormEps: 1e-5, ropeTheta: 10000, tieWordEmbeddings: false,
                                 bosTokenID: 1, eosTokenIDs: [2])
        let h = config.hiddenSize, f = config.intermediateSize
        var tensors: [(String, [Int])] = [("model.embed_tokens.weight", [config.vocabSize, h])]
        for i in 0..<layers {
            let p = "model.layers.\(i)."
            tensors += [(p + "input_layernorm.weight", [h]), (p + "self_attn.q_proj.weight", [h, h]), (p + "self_attn.k_proj.weight", [h, h]),
                        (p + "self_attn.v_proj.weight", [h, h]), (p + "self_attn.o_proj.weight", [h, h]),
                        (p + "post_attention_layernorm.weight", [h]), (p + "mlp.gate_proj.weight", [f, h]),
                        (p + "mlp.up_proj.weight", [f, h]), (p + "mlp.down_proj.weight", [h, f])]
        }
        tensors += [("model.norm.weight", [h]), ("lm_head.weight", [config.vocabSize, h])]
        let modelFile = source.appendingPathComponent("model.safetensors")
        if !FileManager.default.fileExists(atPath: modelFile.path) {
            try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
            print("generating \(modelFile.path) …")
            let writer = try SafetensorsStreamWriter(url: modelFile, fixed: tensors.map { ($0.0, .f32, $0.1) })
            var rng = SeededGenerator(seed: 7)
            for (name, shape) in tensors {
                let n = shape.reduce(1, *)
                let scale: Float = shape.count == 1 ? 0 : 0.02
                let values = (0..<n).map { _ in
                    shape.count == 1 ? 1 : (Float(Int64(rng.next() >> 40) - (1 << 23)) / Float(1 << 23)) * scale * 1.7
                }
                try writer.write(name, floats: values)
            }
            try writer.finish(trailing: [:])
            var bytes: [UInt8] = []
            JSONWriter.write(config.hfConfigJSON(dtype: "float32"), into: &bytes)
            try AtomicFile.write(Data(bytes), to: source.appendingPathComponent("config.json"))
        }
        let sourceBytes = (try FileManager.default.attributesOfItem(atPath: modelFile.path)[.size] as? Int) ?? 0
        let layerBytes = 4 * (4 * h * h + 3 * h * f + 2 * h)
        let output = source.deletingLastPathComponent().appendingPathComponent(source.lastPathComponent + "-prepared")
        try? FileManager.default.removeItem(at: output)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = ["prepare", "--model", source.path, "--output", output.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BenchFailure("prepare failed: \(text)")
        }
        print(text, terminator: "")
        let prepared = (try FileManager.default.attributesOfItem(atPath: output.appendingPathComponent("model.safetensors").path)[.size] as? Int) ?? 0
        // The child reports its own peak RSS (VmHWM) on the last line.
        let rss = text.split(separator: "\n").last.flatMap { line -> Double? in
            guard let r = line.range(of: "peak RSS ") else { return nil }
            return Double(line[r.upperBound...].split(separator: " ").first ?? "")
        }.map { $0 * 1e6 } ?? 0
        let bound = Double(prepared + layerBytes + 64 << 20)
        print(String(format: "source %.2f GB fp32 → prepared %.1f MB; peak RSS %.1f MB; bound (prepared + one layer fp32 %.1f MB + 64 MB) %.1f MB: %@",
                     Double(sourceBytes) / 1e9, Double(prepared) / 1e6, rss / 1e6, Double(layerBytes) / 1e6, bound / 1e6,
                     rss > 0 && rss <= bound ? "within" : "EXCEEDED"))
        try? FileManager.default.removeItem(at: output)
    }
}
