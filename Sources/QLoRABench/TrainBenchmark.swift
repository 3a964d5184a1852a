import Foundation
import QLoRABackends
import QLoRACore
import QLoRACPU
import QLoRAModel
import QLoRAPipeline
import QLoRATraining

/// `qlora bench train`: QLoRA training-step tokens/s and peak RSS, ours next to transformers + peft + bitsandbytes, with GFLOP/s vs the sgemm ceiling. The command (Sources/qlora/) sets the options and calls `run`.
public struct TrainBenchmark: Sendable {
    public var model: String = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    public var peerModel: String = "models/SmolLM2-135M-Instruct"
    public var python: String = ".venv-torch/bin/python"
    public var noPeer: Bool = false
    public var seq: Int = 256
    public var batch: Int = 4
    public var steps: Int = 3
    public var threads: Int?
    public var checkpointing: String = "both"
    public var backend: BackendChoice = .auto
    /// A published shape (`ModelShape.presets`) with random NF4 weights instead of `model` (`RandomQLoRAWeights`);
    /// the peer builds the same shape with random weights instead of loading `peerModel`.
    public var modelShape: String?
    /// The preset `modelShape` names (nil without one, or for an unknown name, which `validate` refuses).
    var shape: ModelShape? { modelShape.flatMap(ModelShape.preset) }
    /// Overrides the shape's number of blocks (a short dry run of a large shape).
    public var layers: Int?
    public var rank: Int = 16
    /// Untimed steps before the timed ones.
    public var warmup: Int = 1
    /// When set, AdamW's moments are paged under this many MiB (on CUDA the budget is device memory, the rest in pinned
    /// host memory; on the CPU a state file in a temporary folder).
    public var pagedBudgetMiB: Int?
    /// What our GEMMs read (nil: the backend's default, bf16 on CUDA).
    public var precision: ComputePrecision?
    /// The precision our side runs in, for the table.
    var ourPrecision: ComputePrecision { precision ?? backend.defaultPrecision }
    /// Where the peer runs: "cpu" (fp32 compute) or "cuda" (bf16 compute, the QLoRA recipe).
    public var peerDevice: String = "cpu"
    /// The peer's bases: "nf4" (bitsandbytes NF4 + double quant; paged AdamW on CUDA) and "bf16" (plain LoRA on a
    /// bf16 base, CUDA only).
    public var peers: [String] = ["nf4"]
    public var child: Bool = false

    public init() {}

    public func validate() throws {
        guard ["on", "off", "both"].contains(checkpointing) else { throw BenchFailure("--checkpointing must be on, off or both") }
        guard seq > 1, batch > 0, steps > 0, warmup >= 0, rank > 0 else {
            throw BenchFailure("--seq > 1, --batch > 0, --steps > 0, --warmup >= 0 and --rank > 0")
        }
        if let modelShape, shape == nil {
            throw BenchFailure("--model-shape \(modelShape): not one of \(ModelShape.presets.map(\.name).joined(separator: ", "))")
        }
        if let layers, layers < 1 { throw BenchFailure("--layers must be at least 1") }
        if layers != nil, modelShape == nil { throw BenchFailure("--layers needs --model-shape") }
        if let pagedBudgetMiB, pagedBudgetMiB < 0 { throw BenchFailure("--paged-budget must be at least 0 MiB") }
        guard ["cpu", "cuda"].contains(peerDevice) else { throw BenchFailure("--peer-device must be cpu or cuda") }
        for p in peers where !["nf4", "bf16"].contains(p) { throw BenchFailure("--peers: \(p) is not nf4 or bf16") }
        if peers.contains("bf16"), peerDevice != "cuda" { throw BenchFailure("--peers bf16 runs on --peer-device cuda only") }
    }

    public func run() throws {
        let threads = self.threads ?? ProcessInfo.processInfo.activeProcessorCount
        if child { return try runChild(threads: threads, checkpointing: checkpointing == "on") }
        let settings = checkpointing == "both" ? [true, false] : [checkpointing == "on"]
        let loadStart = loadAverage()
        print(String(format: "train benchmark: seq %d × batch %d, LoRA r=%d, %d thread(s), %d warm-up + median of %d steps; load average %@ at start",
                     seq, batch, rank, threads, warmup, steps, loadStart))
        if let modelShape, let shape {
            let c = RandomQLoRAWeights.config(shape, layers: layers)
            print("model: \(modelShape) shape with random NF4 weights (\(c.layers) blocks, hidden \(c.hiddenSize), vocabulary \(c.vocabSize)); "
                + "the peer builds the same shape with random weights")
        }
        // Our configurations first, each in its own child: the backend is made there, never here (a device
        // backend's context would otherwise hold device memory beside the child's).
        var rows: [(name: String, r: [String: Any])] = []
        for on in settings {
            let name = "qlora  NF4+DQ \(ourPrecision.rawValue)\(pagedBudgetMiB == nil ? "" : " paged"), checkpointing \(on ? "on " : "off")"
            do { rows.append((name, try runOurs(threads: threads, checkpointing: on))) } catch {
                print("\(name): failed: \(error)")
            }
        }
        guard !rows.isEmpty else { throw BenchFailure("none of our configurations ran (above)") }
        if let summary = rows.first?.r["backend"] as? String { print("our backend: \(summary)") }

        // The ceiling is the CPU's sgemm: a device backend's GFLOP/s are printed without a share of it.
        let onCPU = rows.first?.r["device_backend"] as? Bool != true
        let ceiling = onCPU ? sgemmCeiling(threads: threads) : .nan
        if onCPU {
            print(String(format: "sgemm ceiling (2048³ through CPUBackend.matmulTransposed, median of 5): %.1f GFLOP/s", ceiling))
            printGEMMKernelLine()
        }
        var peerRows: [(name: String, r: [String: Any])] = []
        if !noPeer {
            for base in peers {
                for on in settings {
                    let what = base == "bf16" ? "bf16 LoRA" : peerDevice == "cuda" ? "NF4+DQ bf16 paged" : "NF4+DQ fp32"
                    let name = "peer   \(what), checkpointing \(on ? "on " : "off")"
                    if let r = runPeer(threads: threads, checkpointing: on, base: base) { peerRows.append((name, r)) }
                }
            }
        }
        // The same FLOP count for both sides (it depends only on the shapes and the checkpointing setting).
        let flops = rows.first.flatMap { $0.r["flops_per_step_no_recompute"] as? Double }
        let recompute = rows.first.flatMap { $0.r["flops_recompute"] as? Double } ?? 0

        print("")
        let onDevice = (rows + peerRows).contains { $0.r["peak_device_bytes"] != nil }
        print("configuration                            tokens/s   step s   peak RSS train peak    GFLOP/s of ceiling"
            + (onDevice ? "  peak device" : ""))
        for (name, r) in rows + peerRows {
            let tps = r["tokens_per_s"] as? Double ?? 0
            let stepSeconds = Double(seq * batch) / max(tps, 1e-9)
            let on = r["gradient_checkpointing"] as? Bool ?? false
            let f = flops.map { $0 + (on ? recompute : 0) }
            let gflops = f.map { $0 / stepSeconds / 1e9 }
            let peak = (r["peak_rss_bytes"] as? NSNumber)?.int64Value ?? 0
            let trainPeak = (r["train_peak_rss_bytes"] as? NSNumber)?.int64Value
            let cells: [String] = [formatBytes(peak), trainPeak.map(formatBytes) ?? "-", gflops.map { String(format: "%.1f", $0) } ?? "-",
                                   gflops.flatMap { ceiling.isNaN ? nil : String(format: "%.0f%%", $0 / ceiling * 100) } ?? "-"]
            var line = name.padding(toLength: 40, withPad: " ", startingAt: 0) + String(format: "%8.1f %8.2f", tps, stepSeconds)
            for cell in cells { line += String(repeating: " ", count: max(1, 11 - cell.count)) + cell }
            if onDevice {
                let device = (r["peak_device_bytes"] as? NSNumber).map { formatBytes($0.int64Value) } ?? "-"
                line += String(repeating: " ", count: max(1, 13 - device.count)) + device
            }
            print(line)
        }
        for on in settings {
            let tag = "checkpointing \(on ? "on " : "off")"
            guard let o = rows.first(where: { $0.name.hasSuffix(tag) })?.r, let p = peerRows.first(where: { $0.name.hasSuffix(tag) })?.r,
                  let ot = o["tokens_per_s"] as? Double, let pt = p["tokens_per_s"] as? Double,
                  let orss = (o["peak_rss_bytes"] as? NSNumber)?.doubleValue, let prss = (p["peak_rss_bytes"] as? NSNumber)?.doubleValue
            else { continue }
            print(String(format: "%@: ours / first peer tokens/s %.2fx, peak RSS %.2fx", tag, ot / pt, orss / prss))
        }
        let bestPeer = peerRows.compactMap { $0.r["tokens_per_s"] as? Double }.max()
        let bestOurs = rows.compactMap { $0.r["tokens_per_s"] as? Double }.max()
        if let bestPeer, let bestOurs {
            print(String(format: "best vs best: %.2fx (goals: fp32 on the CPU ≥ 1.3× and ≥ 85%% of the ceiling; bf16 on a GPU at 8B ≥ 2.5× the NF4 peer, ≥ 1.2× the bf16 one)", bestOurs / bestPeer))
        }
        for (name, r) in rows + peerRows {
            if let runs = r["step_s_runs"] as? [Double], let losses = r["losses"] as? [Double] {
                print("\(name.trimmingCharacters(in: .whitespaces)): steps \(runs.map { String(format: "%.2f", $0) }.joined(separator: " ")) s; "
                    + "losses \(losses.map { String(format: "%.3f", $0) }.joined(separator: " "))")
            }
        }
        for (name, r) in rows {
            guard let parts = r["profile"] as? [String: Double], let tps = r["tokens_per_s"] as? Double,
                  let runs = r["step_s_runs"] as? [Double], !runs.isEmpty else { continue }
            let mean = runs.reduce(0, +) / Double(runs.count)
            print("")
            print("where the time goes, \(name.trimmingCharacters(in: .whitespaces)) (mean step \(String(format: "%.2f", mean)) s, median \(String(format: "%.2f", Double(seq * batch) / tps)) s):")
            var rest = mean
            for part in StepProfile.Part.allCases {
                guard let sec = parts[part.rawValue] else { continue }
                rest -= sec
                print(part.rawValue.padding(toLength: 48, withPad: " ", startingAt: 0) + String(format: "%8.3f s  %5.1f%%", sec, sec / mean * 100))
            }
            print("other (allocation, copies, gradient zeroing)".padding(toLength: 48, withPad: " ", startingAt: 0)
                + String(format: "%8.3f s  %5.1f%%", rest, rest / mean * 100))
        }
        print("load average \(loadStart) at start, \(loadAverage()) at end (1/5/15 min; the machine is shared)")
    }

    // MARK: Parent side

    private func sgemmCeiling(threads: Int) -> Double {
        let cpu = CPUBackend(threads: threads)
        let n = 2048
        var rng = SeededGenerator(seed: 3)
        let a = (0..<n * n).map { _ in Float(rng.next() >> 40) / Float(1 << 24) - 0.5 }
        let b = (0..<n * n).map { _ in Float(rng.next() >> 40) / Float(1 << 24) - 0.5 }
        var c = [Float](repeating: 0, count: n * n)
        let seconds = medianSeconds(repeats: 5) { cpu.matmulTransposed(a, b, &c, m: n, n: n, k: n, accumulate: false) }
        return 2 * Double(n) * Double(n) * Double(n) / seconds / 1e9
    }

    private func runOurs(threads: Int, checkpointing: Bool) throws -> [String: Any] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        var arguments = ["bench", "train", "--child", "--model", model, "--seq", "\(seq)", "--batch", "\(batch)",
                         "--steps", "\(steps)", "--warmup", "\(warmup)", "--rank", "\(rank)", "--threads", "\(threads)",
                         "--checkpointing", checkpointing ? "on" : "off", "--backend", backend.rawValue]
        if let modelShape { arguments += ["--model-shape", modelShape] }
        if let layers { arguments += ["--layers", "\(layers)"] }
        if let pagedBudgetMiB { arguments += ["--paged-budget", "\(pagedBudgetMiB)"] }
        if let precision { arguments += ["--precision", precision.rawValue] }
        process.arguments = arguments
        return try runForJSON(process, what: "child")
    }

    private func runPeer(threads: Int, checkpointing: Bool, base: String) -> [String: Any]? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        var arguments = ["scripts/reference/train_peer.py", shape.map(Self.peerShape) ?? peerModel,
                         "--gradient-checkpointing", checkpointing ? "on" : "off", "--threads", "\(threads)", "--seq", "\(seq)",
                         "--batch", "\(batch)", "--steps", "\(steps)", "--warmup", "\(warmup)", "--rank", "\(rank)",
                         "--device", peerDevice, "--base", base]
        if let layers { arguments += ["--layers", "\(layers)"] }
        process.arguments = arguments
        do { return try runForJSON(process, what: "peer") } catch {
            print("peer (\(base), checkpointing \(checkpointing ? "on" : "off")): \(error) "
                + "(set up .venv-torch with scripts/reference/setup_torch_venv.sh, or pass --python / --no-peer)")
            return nil
        }
    }

    /// The peer's `shape:` argument: the fields of `shape` it builds its random model from.
    static func peerShape(_ shape: ModelShape) -> String {
        "shape:hidden=\(shape.hidden),intermediate=\(shape.intermediate),layers=\(shape.layers),heads=\(shape.heads),"
            + "kv_heads=\(shape.kvHeads),head_dim=\(shape.headDim),vocab=\(shape.vocab),tied=\(shape.tiedEmbeddings ? 1 : 0)"
    }

    private func loadAverage() -> String {
        var values = [Double](repeating: 0, count: 3)
        let n = getloadavg(&values, 3)
        return n == 3 ? values.map { String(format: "%.2f", $0) }.joined(separator: " ") : "?"
    }

    // MARK: Child side

    private func runChild(threads: Int, checkpointing: Bool) throws {
        let made = try Backends.make(self.backend, threads: threads, precision: precision)
        let backend = made.backend
        let t0 = Date()
        let config: LlamaConfig, weights: LlamaWeights
        if let shape {
            config = RandomQLoRAWeights.config(shape, layers: layers)
            weights = RandomQLoRAWeights.make(config, seed: 7)
        } else {
            // The fp32 model goes out of scope once quantized: only the 4-bit base (plus fp32 embedding and norms) stays.
            let base = try ModelLoader.loadModel(path: model, backend: backend)
            config = base.config
            weights = base.weights.quantized(FourBitOptions())
        }
        let lora = LoRAConfig(rank: rank, alpha: Double(2 * rank), dropout: 0.05)
        var rng = SeededGenerator(seed: 1)
        let network = try LlamaModel(config: config, weights: weights, backend: backend)
            .withAdapter(LoRAWeights.peftInit(config, lora, rng: &rng), lora: lora)
        network.gradientCheckpointing = checkpointing
        let parameters = network.parameters!, gradients = AdapterTensors(zerosLike: parameters)
        let adam = AdamW.Parameters(learningRate: 2e-4, weightDecay: 0.01)
        var optimizer: AdamW
        var pagedFolder: URL?
        if let pagedBudgetMiB {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qlora-bench-paged-\(getpid())")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            pagedFolder = folder
            optimizer = try AdamW(adam, for: parameters, pagedAt: folder.appendingPathComponent("adamw.state").path,
                                  budgetBytes: pagedBudgetMiB << 20)
        } else {
            optimizer = AdamW(adam, for: parameters)
        }
        defer { if let pagedFolder { try? FileManager.default.removeItem(at: pagedFolder) } }
        let sequences = (0..<batch).map { _ in (0..<seq).map { _ in Int32(3 + Int(rng.next() % UInt64(config.vocabSize - 3))) } }
        let data = TrainingBatch(sequences: sequences, labels: sequences)
        let counted = data.countedTargets
        let setupSeconds = Date().timeIntervalSince(t0)
        let rssAfterSetup = ResourceUsage.currentRSSBytes
        let peakAfterSetup = ResourceUsage.peakRSSBytes
        let device = backend as? any DeviceMemoryReporting
        backend.synchronize()
        let deviceAfterSetup = device?.deviceMemory.inUse
        device?.resetDeviceMemoryPeak()  // as the peer resets torch's: the steps' peak, from the weights up
        // Reset VmHWM to the current RSS, so that it measures the training steps alone from here on.
        let resetHWM = (try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)) != nil

        var losses: [Double] = [], times: [Double] = []
        let profile = StepProfile()
        network.profile = profile
        for step in 0..<(warmup + steps) {
            if step == warmup { profile.reset() }  // the warm-up steps are not profiled
            let started = DispatchTime.now().uptimeNanoseconds
            gradients.zero()
            let loss = network.lossAndGradients(data, gradScale: 1 / Float(counted), dropoutSeed: UInt64(step) &+ 1, into: gradients)
            profile.measure(.optimizer) {
                _ = clipGradientNorm(gradients, maxNorm: 0.3)
                optimizer.update(parameters, gradients: gradients)
            }
            backend.synchronize()  // a device backend's AdamW kernels are part of the step
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            losses.append(loss.sum / Double(loss.count))
            if step >= warmup { times.append(seconds) }
        }
        let trainPeak = ResourceUsage.peakRSSBytes
        let median = times.sorted()[times.count / 2]
        let flops = Self.stepFLOPs(config, lora: lora, seq: seq, batch: batch)
        var result: [String: Any] = [
            "tokens_per_s": Double(seq * batch) / median,
            "tokens_per_s_best": Double(seq * batch) / times.min()!,
            "peak_rss_bytes": max(trainPeak, peakAfterSetup),
            "rss_after_setup_bytes": rssAfterSetup,
            "gradient_checkpointing": checkpointing,
            "step_s_runs": times,
            "losses": losses,
            "setup_s": setupSeconds,
            "threads": threads,
            "backend": made.summary,
            "device_backend": backend is any DeviceMemoryReporting,
            "flops_per_step_no_recompute": flops.forward + flops.backward,
            "flops_recompute": flops.recompute,
        ]
        if resetHWM { result["train_peak_rss_bytes"] = trainPeak }
        if let device, let deviceAfterSetup {
            backend.synchronize()
            result["peak_device_bytes"] = device.deviceMemory.peak
            result["device_after_setup_bytes"] = deviceAfterSetup
        }
        // Seconds per step of each part (mean over the timed steps).
        result["profile"] = Dictionary(uniqueKeysWithValues: profile.nanoseconds.map { ($0.key.rawValue, Double($0.value) / 1e9 / Double(times.count)) })
        let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
    }

    /// The FLOP count of one step described in the help text: forward, backward (no weight gradients of the frozen
    /// base), and the blocks' forward again when checkpointing.
    static func stepFLOPs(_ c: LlamaConfig, lora: LoRAConfig, seq: Int, batch: Int) -> (forward: Double, backward: Double, recompute: Double) {
        let h = Double(c.hiddenSize)
        let q = Double(c.heads * c.headDim), r = Double(lora.rank)
        let p = Projection.allCases.reduce(0.0) { acc, x in acc + Double(x.shape(c).out * x.shape(c).in) }
        let pr = lora.targets.reduce(0.0) { acc, x in acc + r * Double(x.shape(c).in + x.shape(c).out) }
        let t = Double(seq), tokens = t * Double(batch), layers = Double(c.layers)
        let attentionForward = 2 * 2 * q * t * (t + 1) / 2 * Double(batch)  // QKᵀ and PV over the causal triangle
        let blocksForward = layers * ((2 * p + 2 * pr) * tokens + attentionForward)
        let head = 2 * h * Double(c.vocabSize) * tokens
        let blocksBackward = layers * ((2 * p + 4 * pr) * tokens + 2 * attentionForward)
        return (blocksForward + head, blocksBackward + head, blocksForward)
    }
}

