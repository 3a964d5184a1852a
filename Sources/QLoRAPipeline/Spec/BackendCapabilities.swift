import QLoRABackends

/// What a compute backend can actually do, for the spec keys whose values depend on it. Validation refuses a
/// value outside these sets at its key (file:line), rather than accepting it and training something else.
///
/// Today there is one backend, the CPU one: it computes in float32 and has 32-bit AdamW (paged or not).
/// bf16/fp16 compute and 8-bit AdamW arrive with the CUDA backend, which will add its own `BackendCapabilities`
/// value; validation then asks the backend the spec selects.
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
}

extension JobSpec {
    /// The capabilities of the backend `backend:` selects. Every backend of this build (`cpu`, and `reference`,
    /// which computes what `cpu` does) has the CPU's, and `auto` resolves to `cpu`.
    public var backendCapabilities: BackendCapabilities {
        var c = BackendCapabilities.cpu
        c.name = backend == .auto ? "cpu" : backend.rawValue
        return c
    }
}
