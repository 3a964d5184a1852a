import Foundation
import QLoRACPU
import QLoRAModel
import QLoRAPipeline

/// `qlora bench forward`: Prefill and decode tokens/s of the fp32 forward pass, next to transformers (same threads), with GFLOP/s. The command (Sources/qlora/) sets the options and calls `run`.
public struct ForwardBenchmark: Sendable {
    public var model: String = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    public var peerModel: String = "models/SmolLM2-135M-Instruct"
    public var promptTokens: Int = 128
    public var decodeTokens: Int = 32
    public var threads: Int?
    public var python: String = ".venv-torch/bin/python"
    public var noPeer: Bool = false

    public init() {}

    public func run() throws {
        let threads = self.threads ?? ProcessInfo.processInfo.activeProcessorCount
        let loaded = try loadBenchModel(model, threads: threads)
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let m = loaded.model, c = m.config
        print(String(format: "model %@: %d layers, hidden %d, load %.2f s, peak RSS after load %@", model, c.layers, c.hiddenSize,
                     loaded.loadSeconds, formatBytes(Int64(usage.ru_maxrss) * 1024)))
        printGEMMKernelLine()
        let prompt = (0..<promptTokens).map { ($0 * 7919 + 13) % c.vocabSize }
        var prefill: [Double] = []
        for _ in 0..<6 {
            var cache = KVCache(config: c, capacity: promptTokens + decodeTokens)
            let t0 = Date()
            _ = m.forward(prompt, cache: &cache)
            prefill.append(Date().timeIntervalSince(t0))
        }
        let prefillTime = prefill.dropFirst().sorted()[prefill.count / 2 - 1]
        var cache = KVCache(config: c, capacity: promptTokens + decodeTokens)
        _ = m.forward(prompt, cache: &cache)
        let t0 = Date()
        var next = 1
        for _ in 0..<decodeTokens {
            let logits = m.forward([next], cache: &cache)
            next = logits.indices.max { logits[$0] < logits[$1] }!
        }
        let decodeTime = Date().timeIntervalSince(t0)
        let h = Double(c.hiddenSize), kv = Double(c.kvHeads * c.headDim), q = Double(c.heads * c.headDim), f = Double(c.intermediateSize)
        let linearPerToken = 2 * Double(c.layers) * (h * q + 2 * h * kv + q * h + 3 * h * f)
        let t = Double(promptTokens)
        let attention = 2 * Double(c.layers) * 2 * q * t * (t + 1) / 2
        let flops = linearPerToken * t + attention + 2 * h * Double(c.vocabSize)
        let gflops = flops / prefillTime / 1e9
        print(String(format: "qlora      prefill %4d tokens: %8.1f tokens/s (%.1f GFLOP/s, %.0f%% of a 195 GFLOP/s sgemm ceiling)",
                     promptTokens, t / prefillTime, gflops, gflops / 195 * 100))
        print(String(format: "qlora      decode  %4d tokens: %8.1f tokens/s", decodeTokens, Double(decodeTokens) / decodeTime))
        guard !noPeer else { return }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["scripts/reference/forward_peer.py", peerModel, "--threads", "\(threads)",
                             "--prompt-tokens", "\(promptTokens)", "--decode-tokens", "\(decodeTokens)"]
        let report: [String: Any]
        do { report = try runForJSON(process, what: "peer", quiet: false) } catch {
            print("\(error) (set up .venv-torch with scripts/reference/setup_torch_venv.sh)")
            return
        }
        guard let p = report["prefill_tokens_per_s"] as? Double, let d = report["decode_tokens_per_s"] as? Double else {
            print("peer: no prefill/decode figures in \(report)")
            return
        }
        print(String(format: "transformers prefill %4d tokens: %8.1f tokens/s (fp32, %d threads, %@)", promptTokens, p, threads,
                     (report["attn"] as? String) ?? "?"))
        print(String(format: "transformers decode  %4d tokens: %8.1f tokens/s", decodeTokens, d))
        print(String(format: "speedup: prefill %.2fx, decode %.2fx", t / prefillTime / p, Double(decodeTokens) / decodeTime / d))
    }
}
