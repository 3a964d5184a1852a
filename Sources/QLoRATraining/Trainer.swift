import Foundation
import QLoRACore
import QLoRADistributed
import QLoRAFormats
import QLoRAModel

/// What the trainer needs besides the model.
public struct TrainerOptions: Sendable {
    public var schedule: LearningRateSchedule
    public var maxSteps: Int
    public var batchSize: Int
    public var gradientAccumulation: Int
    /// Global-norm clipping threshold (0 disables).
    public var maxGradNorm: Double
    public var adam: AdamW.Parameters
    /// Paged optimizer: scratch file for the moments and the resident budget (nil path: arrays in memory).
    public var pagedStatePath: String?
    public var pagedBudgetBytes: Int?
    public var saveEvery: Int
    public var seed: UInt64

    public init(schedule: LearningRateSchedule, maxSteps: Int, batchSize: Int, gradientAccumulation: Int, maxGradNorm: Double,
                adam: AdamW.Parameters, pagedStatePath: String? = nil, pagedBudgetBytes: Int? = nil, saveEvery: Int, seed: UInt64) {
        self.schedule = schedule
        self.maxSteps = maxSteps
        self.batchSize = max(1, batchSize)
        self.gradientAccumulation = max(1, gradientAccumulation)
        self.maxGradNorm = maxGradNorm
        self.adam = adam
        self.pagedStatePath = pagedStatePath
        self.pagedBudgetBytes = pagedBudgetBytes
        self.saveEvery = max(1, saveEvery)
        self.seed = seed
    }
}

/// The training sequences (a tokenize-stage `TokenFile`) and the order they are visited in.
///
/// Epoch `e` visits every sequence once, in `baseOrder` (the tokenize stage's length-grouped order) when
/// given, else in a Fisher-Yates shuffle seeded by `(seed, e)`. The position is a plain cursor (epoch,
/// index), so a resumed run continues with exactly the sequences the uninterrupted run would have used.
public struct TrainingData: @unchecked Sendable {
    public let reader: TokenFile.Reader
    public let baseOrder: [Int]?
    public let seed: UInt64

    public init(reader: TokenFile.Reader, baseOrder: [Int]?, seed: UInt64) {
        self.reader = reader
        self.baseOrder = baseOrder
        self.seed = seed
    }

    public var count: Int { reader.sequenceCount }

    public func order(epoch: Int) -> [Int] {
        if let baseOrder { return baseOrder }
        var order = Array(0..<count)
        var rng = SeededGenerator(seed: seed &+ 0x9E37_79B9 &* UInt64(epoch + 1))
        rng.shuffle(&order)
        return order
    }

    /// Sequences laid end to end as one micro-batch (document ids kept distinct across sequences).
    public func batch(_ sequences: [Int]) -> TrainingBatch {
        var tokens: [Int32] = [], targets: [Int32] = [], positions: [Int32] = [], documents: [Int32] = []
        for (k, seq) in sequences.enumerated() {
            let r = rows(seq, documentBase: Int32(k * 1_000_000))
            tokens += r.tokens
            targets += r.targets
            positions += r.positions
            documents += r.documents
        }
        return TrainingBatch(tokens: tokens, targets: targets, positions: positions, documents: documents)
    }

    /// One sequence as model rows: tokens, next-token targets (a target counts when the tokenize stage marked
    /// that token as trained and it lies in the same document), RoPE positions restarting at every document,
    /// and document ids.
    func rows(_ index: Int, documentBase: Int32) -> (tokens: [Int32], targets: [Int32], positions: [Int32], documents: [Int32]) {
        let s = reader.sequence(index)
        let n = s.ids.count
        var documents = [Int32](repeating: 0, count: n), positions = [Int32](repeating: 0, count: n)
        var doc = documentBase - 1, start = 0
        let starts = Set(s.documentStarts)
        for t in 0..<n {
            if starts.contains(t) || t == 0 {
                doc += 1
                start = t
            }
            documents[t] = doc
            positions[t] = Int32(t - start)
        }
        var targets = [Int32](repeating: CrossEntropy.ignoreIndex, count: n)
        for t in 0..<(n - 1) where s.labels[t + 1] && documents[t + 1] == documents[t] {
            targets[t] = Int32(s.ids[t + 1])
        }
        return (s.ids.map { Int32($0) }, targets, positions, documents)
    }
}

/// One optimizer step's record (a line of metrics.jsonl).
public struct StepMetrics: Sendable, Equatable {
    public var step: Int
    public var loss: Double
    public var learningRate: Double
    public var gradNorm: Double
    public var tokens: Int
    public var tokensPerSecond: Double
    public var rssBytes: Int

    public var jsonLine: String {
        let object = JSONValue.object(JSONObject([
            ("step", .number(Double(step))), ("loss", .number(loss)), ("lr", .number(learningRate)),
            ("grad_norm", .number(gradNorm)), ("tokens", .number(Double(tokens))),
            ("tokens_per_s", .number((tokensPerSecond * 10).rounded() / 10)), ("rss_bytes", .number(Double(rssBytes))),
        ]))
        return JSONWriter.string(object)
    }
}

/// Runs optimizer steps over an adapted `LlamaModel` (its `lora` pairs are the parameters), saving resumable
/// checkpoints.
///
/// Step `k` (0-based): `gradientAccumulation` micro-batches of `batchSize` sequences from the data cursor; the
/// loss is the mean over all counted targets of the step (each micro-batch's gradient is scaled by 1/N, N the
/// step's counted targets, as transformers ≥ 4.46 normalizes accumulated batches); global-norm clipping;
/// AdamW with the schedule's rate for step `k`. LoRA dropout masks are seeded by `(seed, k, micro-batch)`.
/// Everything a later step depends on (adapters, moments, update count, cursor, metrics so far) is in the
/// checkpoint, and every reduction runs in a fixed order, so a run stopped at any step and resumed on the
/// same backend and thread count produces byte-identical adapters and the same losses.
///
/// The step's gradient is `((g₀ + g₁) + g₂) + …` over its micro-batches in order, each `gᵢ` computed on its own
/// (the first straight into the accumulator). Data parallel over `collective` (docs/DISTRIBUTED.md), rank `r` of
/// `W` computes micro-batches `r·A/W ..< (r+1)·A/W` and the same sum is formed along the chain of ranks: rank `r`
/// receives the prefix sum from `r − 1`, adds its own micro-batches in order, passes it on, and the last rank
/// broadcasts the total. The additions are exactly those of the single process, so the losses, adapters and
/// moments are bit-identical for every world size (and a checkpoint of `N` ranks resumes on `M`). Every rank holds
/// the same adapters and moments; rank 0 alone writes checkpoints.
public final class Trainer {
    public let model: LlamaModel
    /// The model's parameters and their gradient accumulators, on the model's backend.
    let parameters: AdapterTensors
    let gradients: AdapterTensors
    public let data: TrainingData
    public let options: TrainerOptions
    public let checkpoints: CheckpointStore
    public let collective: any Collective
    public private(set) var optimizer: AdamW
    /// Per-micro-batch gradient buffers (allocated on first use).
    private var scratch: [AdapterTensors] = []
    public private(set) var step = 0
    public private(set) var epoch = 0
    public private(set) var index = 0
    public private(set) var metrics: [StepMetrics] = []

    public init(model: LlamaModel, data: TrainingData, options: TrainerOptions, checkpoints: CheckpointStore,
                collective: any Collective = SingleProcess()) throws {
        guard let parameters = model.parameters else { throw TrainerError("the model has no adapter to train (LlamaModel.withAdapter)") }
        self.model = model
        self.parameters = parameters
        gradients = AdapterTensors(zerosLike: parameters)
        self.data = data
        self.options = options
        self.checkpoints = checkpoints
        self.collective = collective
        if let path = options.pagedStatePath {
            optimizer = try AdamW(options.adam, for: parameters, pagedAt: path, budgetBytes: options.pagedBudgetBytes)
        } else {
            optimizer = AdamW(options.adam, for: parameters)
        }
    }

    // MARK: checkpoints

    /// Restores the newest valid checkpoint whose identity matches; returns what happened, for the log. Rank 0
    /// reads the checkpoint and sends the state to the others, so only one process touches the files.
    public func resume(identity: String) throws -> [String] {
        let notes = collective.isWriter ? try restoreNewest(identity: identity) : []
        try synchronize()
        return notes
    }

    /// Rank 0's cursor, update count, adapters and moments copied to every rank.
    func synchronize() throws {
        guard collective.size > 1 else { return }
        var counters: [Int64] = [Int64(step), Int64(optimizer.step), Int64(epoch), Int64(index)]
        try collective.broadcast(&counters, root: 0)
        try broadcastTensors(parameters, root: 0)
        var m = optimizer.m, v = optimizer.v
        for k in m.indices {
            try collective.broadcast(&m[k], root: 0)
            try collective.broadcast(&v[k], root: 0)
        }
        if !collective.isWriter {
            optimizer.restore(step: Int(counters[1]), m: m, v: v)
            (step, epoch, index) = (Int(counters[0]), Int(counters[2]), Int(counters[3]))
        }
    }

    private func restoreNewest(identity: String) throws -> [String] {
        var notes: [String] = []
        var (entry, skipped) = checkpoints.latest()
        while true {
            for s in skipped {
                notes.append("checkpoint \(s.url.lastPathComponent) is unusable (\(s.reason)); falling back to an older one")
            }
            guard let e = entry else { break }
            do {
                try load(e.url, identity: identity)
                notes.append("resumed from \(e.url.lastPathComponent) (step \(step))")
                return notes
            } catch {
                notes.append("checkpoint \(e.url.lastPathComponent) cannot be used: \(error)")
                try? FileManager.default.removeItem(at: e.url)
                (entry, skipped) = checkpoints.latest()
            }
        }
        return notes
    }

    func load(_ url: URL, identity: String) throws {
        let stateBytes = try Data(contentsOf: url.appendingPathComponent("state.json"))
        guard let state = try JSONParser.parse(Array(stateBytes)).objectValue else { throw TrainerError("state.json is not an object") }
        guard state["identity"]?.stringValue == identity else {
            throw TrainerError("it belongs to a different configuration or data")
        }
        let adapter = try SafetensorsFile(path: url.appendingPathComponent("adapter.safetensors").path)
        let optimizerFile = try SafetensorsFile(path: url.appendingPathComponent("optimizer.safetensors").path)
        let names = parameters.tensorNames
        var restored = parameters.download()
        var i = 0
        var failure: String?
        restored.forEachTensor { values in
            let name = names[i].name
            if let v = (try? adapter.floats(named: name)) ?? nil, v.count == values.count { values = v } else {
                failure = failure ?? "adapter tensor \(name) is missing or has the wrong size"
            }
            i += 1
        }
        if let failure { throw TrainerError(failure) }
        var m: [[Float]] = [], v: [[Float]] = []
        for entry in names {
            guard let mk = try optimizerFile.floats(named: entry.name + ".exp_avg"),
                  let vk = try optimizerFile.floats(named: entry.name + ".exp_avg_sq"),
                  mk.count == entry.shape.reduce(1, *), vk.count == mk.count else {
                throw TrainerError("optimizer state for \(entry.name) is missing or has the wrong size")
            }
            m.append(mk)
            v.append(vk)
        }
        guard let s = state["step"]?.numberValue, let os = state["optimizer_step"]?.numberValue,
              let e = state["epoch"]?.numberValue, let ix = state["index"]?.numberValue,
              let lines = state["metrics"]?.arrayValue else { throw TrainerError("state.json lacks step/epoch/index/metrics") }
        parameters.write(restored)
        optimizer.restore(step: Int(os), m: m, v: v)
        step = Int(s)
        epoch = Int(e)
        index = Int(ix)
        metrics = lines.compactMap { line in
            guard let o = line.objectValue else { return nil }
            func d(_ k: String) -> Double { o[k]?.numberValue ?? 0 }
            return StepMetrics(step: Int(d("step")), loss: d("loss"), learningRate: d("lr"), gradNorm: d("grad_norm"),
                               tokens: Int(d("tokens")), tokensPerSecond: d("tokens_per_s"), rssBytes: Int(d("rss_bytes")))
        }
    }

    /// Saves the current state as the checkpoint of `step` (rank 0; the others hold the same state).
    public func save(identity: String) throws {
        guard collective.isWriter else { return }
        let names = parameters.tensorNames
        let values = parameters.download().tensors
        let adapter = try SafetensorsWriter.serialize(floats: names.enumerated().map { (name: $1.name, shape: $1.shape, values: values[$0]) })
        let m = optimizer.m, v = optimizer.v
        var moments: [SafetensorsWriter.FloatTensor] = []
        for (k, entry) in names.enumerated() {
            moments.append((name: entry.name + ".exp_avg", shape: entry.shape, values: m[k]))
            moments.append((name: entry.name + ".exp_avg_sq", shape: entry.shape, values: v[k]))
        }
        let optimizerBytes = try SafetensorsWriter.serialize(floats: moments)
        let state = JSONValue.object(JSONObject([
            ("format", .number(1)), ("identity", .string(identity)), ("step", .number(Double(step))),
            ("optimizer_step", .number(Double(optimizer.step))), ("epoch", .number(Double(epoch))),
            ("index", .number(Double(index))), ("seed", .string(String(options.seed))),
            ("metrics", .array(metrics.map { (try? JSONParser.parse($0.jsonLine)) ?? .null })),
        ]))
        try checkpoints.save(step: step, files: [
            "adapter.safetensors": Array(adapter), "optimizer.safetensors": Array(optimizerBytes),
            "state.json": JSONWriter.encode(state) + [UInt8(ascii: "\n")],
        ])
    }

    // MARK: steps

    /// Fills `gradients` with the step's gradient, `((g₀ + g₁) + …)` over the micro-batches that have rows (none
    /// when no target counts), and returns the summed loss in the same order; identical on every rank.
    func accumulateGradients(_ batches: [TrainingBatch], counted: Int) throws -> Double {
        let active = counted > 0 ? batches.indices.filter { batches[$0].rows > 0 } : []
        let size = collective.size, rank = collective.rank
        let mine = active.filter { $0 >= rank * batches.count / size && $0 < (rank + 1) * batches.count / size }
        func compute(_ micro: Int, into target: AdapterTensors) -> Double {
            let seed = options.seed &* 0x2545_F491_4F6C_DD1D &+ UInt64(step) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(micro)
            return model.lossAndGradients(batches[micro], gradScale: 1 / Float(counted), dropoutSeed: seed, into: target).sum
        }
        func buffer(_ k: Int) -> AdapterTensors {
            while scratch.count <= k { scratch.append(AdapterTensors(zerosLike: gradients)) }
            scratch[k].zero()
            return scratch[k]
        }
        func add(_ part: AdapterTensors) {
            for (t, p) in zip(gradients.tensors, part.tensors) { gradients.backend.add(t, p, count: t.count) }
        }
        gradients.zero()
        var loss = 0.0
        var started = false  // whether `gradients` holds a first term yet
        if rank == 0 {
            // The chain's head (and the whole sum in one process): accumulate as the micro-batches come.
            for micro in mine {
                if started {
                    let part = buffer(0)
                    loss += compute(micro, into: part)
                    add(part)
                } else {
                    loss += compute(micro, into: gradients)
                    started = true
                }
            }
            if size == 1 { return loss }
        } else {
            // Compute this rank's terms while the ranks before it compute theirs, then add them to their prefix.
            var parts: [(AdapterTensors, Double)] = []
            for (k, micro) in mine.enumerated() {
                let part = buffer(k)
                parts.append((part, compute(micro, into: part)))
            }
            var header: [Double] = [0, 0]
            try collective.receive(&header, from: rank - 1)
            (loss, started) = (header[0], header[1] != 0)
            if started { try receiveTensors(from: rank - 1) }
            for (part, partLoss) in parts {
                loss += partLoss
                if started { add(part) } else {
                    for (t, p) in zip(gradients.tensors, part.tensors) { gradients.backend.copy(p, to: t) }
                    started = true
                }
            }
        }
        var header: [Double] = [loss, started ? 1 : 0]
        if rank < size - 1 {
            try collective.send(header, to: rank + 1)
            if started { try sendTensors(to: rank + 1) }
        }
        // The last rank holds the total: every rank takes it (an empty sum stays the zeros every rank has).
        try collective.broadcast(&header, root: size - 1)
        if header[1] != 0 { try broadcastTensors(gradients, root: size - 1) }
        return header[0]
    }

    private func sendTensors(to rank: Int) throws {
        for t in gradients.tensors { try collective.send(gradients.backend.download(t), to: rank) }
    }

    private func receiveTensors(from rank: Int) throws {
        for t in gradients.tensors {
            var values = [Float](repeating: 0, count: t.count)
            try collective.receive(&values, from: rank)
            values.withUnsafeBufferPointer { gradients.backend.write($0, into: t) }
        }
    }

    private func broadcastTensors(_ tensors: AdapterTensors, root: Int) throws {
        for t in tensors.tensors {
            var values = collective.rank == root ? tensors.backend.download(t) : [Float](repeating: 0, count: t.count)
            try collective.broadcast(&values, root: root)
            if collective.rank != root { values.withUnsafeBufferPointer { tensors.backend.write($0, into: t) } }
        }
    }

    /// The next micro-batch's sequence indices, advancing the cursor (a new epoch starts when one runs out).
    func nextSequences(_ n: Int) -> [Int] {
        var out: [Int] = []
        var order = data.order(epoch: epoch)
        while out.count < n {
            if index >= order.count {
                epoch += 1
                index = 0
                order = data.order(epoch: epoch)
                if order.isEmpty { break }
            }
            out.append(order[index])
            index += 1
        }
        return out
    }

    /// Runs steps until `options.maxSteps` (or until `cancellation` is requested, checked before every step); saves
    /// every `saveEvery` steps, at a stop, and at the end. `onStep` sees each step's metrics. Returns true when all
    /// steps are done.
    @discardableResult
    public func run(identity: String, cancellation: Cancellation = Cancellation(),
                    onStep: (StepMetrics) throws -> Void = { _ in }) throws -> Bool {
        try cancellation.polling { try steps(identity: identity, cancellation: cancellation, onStep: onStep) }
    }

    private func steps(identity: String, cancellation: Cancellation, onStep: (StepMetrics) throws -> Void) throws -> Bool {
        while step < options.maxSteps {
            // Every rank stops at the same step (a stop request reaches the ranks at slightly different times).
            if try collective.any(cancellation.isRequested) {
                try save(identity: identity)
                return false
            }
            let started = DispatchTime.now().uptimeNanoseconds
            var batches: [TrainingBatch] = []
            for _ in 0..<options.gradientAccumulation { batches.append(data.batch(nextSequences(options.batchSize))) }
            let counted = batches.reduce(0) { $0 + $1.countedTargets }
            let lossSum = try accumulateGradients(batches, counted: counted)
            let norm = options.maxGradNorm > 0 ? clipGradientNorm(gradients, maxNorm: options.maxGradNorm) : gradientNorm(gradients)
            let loss = counted > 0 ? lossSum / Double(counted) : 0
            if !loss.isFinite || !norm.isFinite {
                // Fail before the update: the adapters and moments stay finite and nothing is saved, so
                // the newest checkpoint (every `saveEvery` steps) is the one a rerun resumes from.
                let what = loss.isFinite ? "gradient norm (\(norm))" : "loss (\(loss))"
                throw TrainerError(
                    "non-finite \(what) at step \(step + 1); the adapters were not updated and no checkpoint was "
                        + "written for this step (the newest checkpoint is kept, so a rerun resumes from it); "
                        + "lower the learning rate or check the data and the model for NaN/inf values")
            }
            let lr = options.schedule.learningRate(step)
            optimizer.update(parameters, gradients: gradients, learningRate: lr)
            step += 1
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            let tokens = batches.reduce(0) { $0 + $1.rows }
            let m = StepMetrics(step: step, loss: loss, learningRate: lr, gradNorm: norm,
                                tokens: tokens, tokensPerSecond: Double(tokens) / max(seconds, 1e-9),
                                rssBytes: ResourceUsage.currentRSSBytes)
            metrics.append(m)
            try onStep(m)
            if step % options.saveEvery == 0 || step == options.maxSteps { try save(identity: identity) }
        }
        return true
    }
}

public struct TrainerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}
