import QLoRABackends
import QLoRACore

/// What a compute backend can actually do, for the spec keys whose values depend on it. Validation refuses a
/// value outside these sets at its key (file:line), rather than accepting it and training something else.
///
/// The CPU backends compute in float32; the CUDA backend adds bfloat16 (bf16 GEMM operands, fp32 accumulation). Both
/// have 32-bit AdamW, paged or not. fp16 compute and 8-bit AdamW exist nowhere yet.
public struct BackendCapabilities: Sendable, Equatable {
    /// Name used in messages (`cpu`).
    public var name: String
    /// `quantization.compute_dtype` values this backend computes in.
    public var computeDtypes: [FloatType]
    /// `training.optimizer` values this backend implements.
    public var optimizers: [OptimizerKind]

    public init(name: String, computeDtypes: [FloatType], optimizers: [OptimizerKind]) {
        self.name = name
        self.computeDtypes = computeDtypes
        self.optimizers = optimizers
    }

    /// The CPU backend (OpenBLAS + AVX2 kernels): float32 compute; AdamW 32-bit in memory or paged.
    public static let cpu = BackendCapabilities(name: "cpu", computeDtypes: [.float32],
                                                optimizers: [.pagedAdamW32bit, .adamW32bit])

    /// The CUDA backend: float32 (no TF32) or bfloat16 GEMMs; AdamW 32-bit, paged or not.
    public static let cuda = BackendCapabilities(name: "cuda", computeDtypes: [.float32, .bfloat16],
                                                 optimizers: [.pagedAdamW32bit, .adamW32bit])
}

extension JobSpec {
    /// The capabilities of the backend `backend:` selects: `cuda`'s, or the CPU's (`cpu`, `reference`, which computes
    /// what `cpu` does, and `auto`, which resolves to `cpu` in this build).
    public var backendCapabilities: BackendCapabilities {
        if backend == .cuda { return .cuda }
        var c = BackendCapabilities.cpu
        c.name = backend == .auto ? "cpu" : backend.rawValue
        return c
    }

    /// The precision `quantization.compute_dtype` asks the backend's GEMMs for. The key defaults to float32 on every
    /// backend (as `BitsAndBytesConfig` does): a spec means the same training wherever it runs, and the QLoRA recipe
    /// on a GPU says `compute_dtype: bfloat16`. (float16 is refused by validation before a backend is made.)
    public var computePrecision: ComputePrecision {
        quantizationOrDefault.computeDtype == .bfloat16 ? .bf16 : .fp32
    }
}
