import Foundation
import QLoRABackends
import QLoRACPU
import QLoRACore
import QLoRAModel

/// `qlora bench generate`: Prefill and greedy decode tokens/s of the 4-bit model (NF4 + double quant), next to llama.cpp on the same GGUF and threads. The command (Sources/qlora/) sets the options and calls `run`.
public struct GenerateBenchmark: Sendable {
    public var model: String = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    public var tokenizer: String?
    public var peerModel: String?
    public var quantize: String = "nf4"
    public var prompt: String = "Write a short story about a robot who learns to paint."
    public var decodeTokens: Int = 128
    public var threads: Int?
    public var backend: BackendChoice = .auto
    public var `repeat`: Int = 3
    public var python: String = ".venv-llama/bin/python"
    public var noPeer: Bool = false

    public init() {}

    public func validate() throws {
        guard decodeTokens > 0, self.repeat > 0 else { throw BenchFailure("--decode-tokens and --repeat must be > 0") }
        guard ["nf4", "fp4", "none"].contains(quantize) else { throw BenchFailure("--quantize must be nf4, fp4 or none") }
    }

    public func run() throws {
        let threads = self.threads ?? ProcessInfo.processInfo.activeProcessorCount
        let options = FourBitType(rawValue: quantize).map { FourBitOptions(type: $0) }
        let loaded = try loadBenchModel(model, backend: backend, threads: threads, tokenizer: tokenizer, quantize: options)
        let m = loaded.model, c = m.config
        let ids = try loaded.promptIDs(prompt, chat: true)
        let fourBit = m.weights.layers.flatMap { $0.projections.map(\.weight) }.filter(\.isQuantized).count
        print(String(format: "model %@: %d layers, hidden %d, vocab %d; %d of %d projections 4-bit (%@), %d threads, %@",
                     model, c.layers, c.hiddenSize, c.vocabSize, fourBit, 7 * c.layers, quantize, threads, FourBitKernels.path))
        print("our backend: \(try Backends.make(backend, threads: threads).summary)")
        printGEMMKernelLine()

        // Timed runs: prefill of the prompt, then decodeTokens greedy steps (the argmax included).
        var prefill: [Double] = [], decode: [Double] = []
        var generated: [Int] = []
        for _ in 0..<(self.repeat + 1) {
            var cache = KVCache(config: c, capacity: ids.count + decodeTokens + 1)
            let t0 = Date()
            var logits = m.forward(ids, cache: &cache)
            let t1 = Date()
            var out: [Int] = []
            for _ in 0..<decodeTokens {
                let next = Self.argmax(logits)
                out.append(next)
                logits = m.forward([next], cache: &cache)
            }
            let t2 = Date()
            prefill.append(t1.timeIntervalSince(t0))
            decode.append(t2.timeIntervalSince(t1))
            generated = out
        }
        // The first run warms caches and page-faults buffers; medians of the rest.
        let prefillTime = Self.median(Array(prefill.dropFirst())), decodeTime = Self.median(Array(decode.dropFirst()))
        let ourDecode = Double(decodeTokens) / decodeTime
        print(String(format: "qlora      prefill %4d tokens: %8.1f tokens/s (%.1f ms)", ids.count, Double(ids.count) / prefillTime,
                     prefillTime * 1e3))
        print(String(format: "qlora      decode  %4d tokens: %8.1f tokens/s (%.2f ms/token)", decodeTokens, ourDecode,
                     decodeTime / Double(decodeTokens) * 1e3))
        let split = opSplit(m, context: ids.count + decodeTokens / 2)
        let perToken = decodeTime / Double(decodeTokens)
        print(String(format: "  per decode token: 4-bit/dense linears %.2f ms, LM head %.2f ms, rest (attention, norms, RoPE, SwiGLU, "
                     + "dispatch) %.2f ms", split.linears * 1e3, split.head * 1e3, max(0, perToken - split.linears - split.head) * 1e3))
        let text = loaded.tokenizer.decode(Array(generated.prefix(24)), skipSpecialTokens: true)
        print("  greedy output starts: \(text.debugDescription)")

        guard !noPeer else { return }
        let gguf = peerModel ?? (model.hasSuffix(".gguf") ? model : nil)
        guard let gguf else {
            print("peer: --model is not a .gguf; pass --peer-model")
            return
        }
        guard FileManager.default.fileExists(atPath: "scripts/peers/llama_cpp_generate.py") else {
            print("peer: scripts/peers/llama_cpp_generate.py not found (run from the repository root)")
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["scripts/peers/llama_cpp_generate.py", gguf, "--threads", "\(threads)",
                             "--prompt-ids", ids.map(String.init).joined(separator: ","),
                             "--decode-tokens", "\(decodeTokens)", "--repeat", "\(self.repeat)"]
        let report: [String: Any]
        do { report = try runForJSON(process, what: "peer", quiet: false) } catch {
            print("\(error) (set up .venv-llama with scripts/peers/setup_llama_venv.sh)")
            return
        }
        guard let p = report["prefill_tokens_per_s"] as? Double, let d = report["decode_tokens_per_s"] as? Double else {
            print("peer: no prefill/decode figures in \(report)")
            return
        }
        print(String(format: "llama.cpp  prefill %4d tokens: %8.1f tokens/s (%@ weights as in the GGUF, llama-cpp-python %@)",
                     ids.count, p, (report["weights"] as? String) ?? "?", (report["version"] as? String) ?? "?"))
        print(String(format: "llama.cpp  decode  %4d tokens: %8.1f tokens/s (%.2f ms/token)", decodeTokens, d, 1e3 / d))
        if let theirs = report["generated"] as? [Int] {
            let same = zip(theirs, generated).prefix { $0 == $1 }.count
            print("  greedy ids agree with ours for the first \(same) of \(min(theirs.count, generated.count)) tokens "
                  + "(NF4 vs Q4_1 weights: they need not agree all the way)")
        }
        print(String(format: "ratio qlora / llama.cpp: prefill %.2f, decode %.2f", Double(ids.count) / prefillTime / p, ourDecode / d))
    }

    static func argmax(_ logits: [Float]) -> Int {
        var best = 0
        for i in 1..<logits.count where logits[i] > logits[best] { best = i }
        return best
    }

    static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Seconds per decode token spent in the projections (every layer's 7, one row each) and in the LM head,
    /// timed alone on the model's own weights (median of 5 passes).
    private func opSplit(_ m: LlamaModel, context: Int) -> (linears: Double, head: Double) {
        let c = m.config, b = m.backend
        let widest = max(c.hiddenSize, c.heads * c.headDim, c.intermediateSize)
        let x = b.upload((0..<widest).map { Float(($0 * 37) % 19) / 19 - 0.5 }, shape: [1, widest])
        let y = b.allocate([1, max(widest, c.vocabSize)], .f32)
        var linears: [Double] = [], head: [Double] = []
        for _ in 0..<5 {
            let t0 = Date()
            for l in 0..<c.layers {
                for p in Projection.allCases {
                    let w = m.linear(p, layer: l).base
                    b.linear(x.reshaped([1, w.shape[1]]), w, y.reshaped([1, w.shape[0]]), rows: 1, accumulate: false)
                }
            }
            b.synchronize()
            let t1 = Date()
            m.headLogits(x.reshaped([1, c.hiddenSize]), rows: 1, decoding: true, into: y.reshaped([1, c.vocabSize]))
            b.synchronize()
            let t2 = Date()
            linears.append(t1.timeIntervalSince(t0))
            head.append(t2.timeIntervalSince(t1))
        }
        return (Self.median(linears), Self.median(head))
    }
}
