import ArgumentParser
import QLoRABackends
import QLoRABench
import QLoRACore
import QLoRAPipeline

struct TrainBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "QLoRA training-step tokens/s and peak RSS, ours next to transformers + peft + bitsandbytes, with GFLOP/s vs the sgemm ceiling.",
        discussion: """
            Setup on both sides: SmolLM2-135M-Instruct (or --model-shape: a published shape with random weights, \
            Sources/QLoRABench/RandomQLoRAWeights.swift), NF4 + double quant base (block 64), fp32 compute, LoRA \
            r=--rank (16) alpha=2·r dropout 0.05 on all seven projections, --batch sequences of --seq random token ids \
            (fixed seed), every token trained; one step = forward + backward + global-norm clip (0.3) + AdamW (lr 2e-4, \
            weight decay 0.01). Gradient checkpointing on and off. --warmup (1) untimed steps, then the median of \
            --steps steps; tokens/s = batch·seq / median step time. On a device backend each step ends with a \
            synchronize, and "peak device" is the most device memory qlora's allocations held (the cuBLASLt workspace \
            included); the peer's is torch.cuda.max_memory_allocated.

            On CUDA (--peer-device cuda) the peer is the QLoRA recipe as the paper's code runs it: bf16 compute on the \
            NF4 + double quant base with bitsandbytes' paged AdamW (--peers nf4), and plain LoRA on a bf16 base \
            (--peers bf16). Our CUDA backend computes in fp32 (docs/CUDA.md), so the two sides differ in compute dtype \
            there; the table says which is which.

            Ours: the GGUF is loaded, quantized in memory (FourBitOptions()), and trained as an adapted LlamaModel; each \
            configuration runs in a child process (`bench train --child`), so its peak RSS (VmHWM) is its own. \
            "train peak" is VmHWM reset (/proc/self/clear_refs) after setup, i.e. the training steps' own peak. \
            Peer: scripts/reference/train_peer.py run with --python on the fp32 HF copy (--peer-model), one process \
            per configuration (it sets support_avx512bf16_for_cpu = False on every Linear4bit; see its docstring).

            Ceiling: median of 5 products 2048×2048×2048 through CPUBackend.matmulTransposed (OpenBLAS sgemm, \
            --threads threads), measured in the same run.

            FLOPs per step, counted as executed (T = seq, B = batch, L layers, H hidden, V vocabulary, q = heads·head_dim, \
            P = Σ out·in of one layer's seven frozen projections, Pr = Σ r·(in+out) of its adapters):
              attention forward  A = L·B·4·q·T(T+1)/2   (QKᵀ and PV over the causal triangle)
              forward   F = L·B·T·(2P + 2Pr) + A + 2·H·V·B·T
              backward  D = L·B·T·(2P + 4Pr) + 2A + 2·H·V·B·T   (dx through every frozen weight and lm_head, no \
            weight gradients for them; dx, dA and dB through the adapters; attention dQ, dK, dV and dP: 2× its forward)
              checkpointing adds the blocks' forward once more: R = L·B·T·(2P + 2Pr) + A
            GFLOP/s = (F + D [+ R]) / median step time; the peer's GFLOP/s uses the same count.
            """)

    @Option(help: "Our model: a .gguf file or HF directory (quantized to NF4 + double quant in memory).")
    var model: String = TrainBenchmark().model

    @Option(help: "HF model directory (fp32) for the peer.")
    var peerModel: String = TrainBenchmark().peerModel

    @Option(help: "Python with torch + transformers + peft + bitsandbytes.")
    var python: String = TrainBenchmark().python

    @Flag(help: "Skip the peer.")
    var noPeer = false

    @Option(help: "Tokens per sequence.")
    var seq: Int = TrainBenchmark().seq

    @Option(help: "Sequences per step.")
    var batch: Int = TrainBenchmark().batch

    @Option(help: "Timed steps (median reported), after one warm-up step.")
    var steps: Int = TrainBenchmark().steps

    @Option(help: "Threads (default: all cores); the peer uses the same number.")
    var threads: Int?

    @Option(help: "Gradient checkpointing settings to run: on, off or both.")
    var checkpointing: String = TrainBenchmark().checkpointing

    @Option(help: "Our backend: auto, cpu, reference or cuda.")
    var backend: BackendChoice = TrainBenchmark().backend

    @Option(help: "A published shape with random NF4 weights instead of --model (no file; the peer builds the same shape): \(ModelShape.presets.map(\.name).joined(separator: ", ")).")
    var modelShape: String?

    @Option(help: "With --model-shape: this many blocks instead of the shape's (a short run of a large shape).")
    var layers: Int?

    @Option(help: "LoRA rank (alpha = 2·rank).")
    var rank: Int = TrainBenchmark().rank

    @Option(help: "Untimed warm-up steps.")
    var warmup: Int = TrainBenchmark().warmup

    @Option(help: "Page AdamW's moments under this many MiB (on CUDA: device memory, the rest in pinned host memory; elsewhere a state file in a temporary folder).")
    var pagedBudget: Int?

    @Option(help: "What our GEMMs read: fp32 or bf16 (default: bf16 on cuda, fp32 elsewhere, the only precision there).")
    var precision: ComputePrecision?

    @Option(help: "The peer's device: cpu (fp32 compute) or cuda (bf16 compute, paged AdamW: the QLoRA recipe).")
    var peerDevice: String = TrainBenchmark().peerDevice

    @Option(help: "The peer's bases, comma-separated: nf4 (bitsandbytes NF4 + double quant), bf16 (plain LoRA on a bf16 base; cuda only).")
    var peers: String = TrainBenchmark().peers.joined(separator: ",")

    @Flag(help: .hidden)
    var child = false

    func validate() throws {
        do { try benchmark.validate() } catch { throw ValidationError("\(error)") }
    }

    func run() throws { try benchmark.run() }

    var benchmark: TrainBenchmark {
        var b = TrainBenchmark()
        b.model = model
        b.peerModel = peerModel
        b.python = python
        b.noPeer = noPeer
        b.seq = seq
        b.batch = batch
        b.steps = steps
        b.threads = threads
        b.checkpointing = checkpointing
        b.backend = backend
        b.precision = precision
        b.modelShape = modelShape
        b.layers = layers
        b.rank = rank
        b.warmup = warmup
        b.pagedBudgetMiB = pagedBudget
        b.peerDevice = peerDevice
        b.peers = peers.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        b.child = child
        return b
    }
}
