/// The CUDA kernel sources (Sources/QLoRACUDA/Kernels, embedded in the binary as package resources, so a copied
/// `qlora` binary still has them), one per op family, and how each is compiled.
public enum CUDAKernelFamily: String, CaseIterable, Sendable {
    /// 4-bit dequantize (fp32 and bf16 out) and the decode GEMV. Exact: bit-identical with the CPU backend.
    case quant
    /// RMSNorm, RoPE, SwiGLU, residual and bias adds, scaling, embedding, bf16 casts.
    case elementwise
    /// Dropout, AdamW, the deterministic global norm. Exact.
    case optimizer
    /// Chunked cross-entropy.
    case loss
    /// Causal GQA attention over packed documents, forward (with logsumexp) and backward.
    case attention

    /// The source text.
    public var source: String {
        switch self {
        case .quant: String(decoding: PackageResources.quant_cu, as: UTF8.self)
        case .elementwise: String(decoding: PackageResources.elementwise_cu, as: UTF8.self)
        case .optimizer: String(decoding: PackageResources.optimizer_cu, as: UTF8.self)
        case .loss: String(decoding: PackageResources.loss_cu, as: UTF8.self)
        case .attention: String(decoding: PackageResources.attention_cu, as: UTF8.self)
        }
    }

    /// The file name NVRTC reports errors against.
    public var fileName: String { "\(rawValue).cu" }

    /// Families whose results must be bit-identical with the CPU backend: compiled with `--fmad=false`, and their
    /// PTX must contain no `fma` (Tests/QLoRACUDATests/KernelCompileTests.swift checks).
    public var isExact: Bool { self == .quant || self == .optimizer }

    /// NVRTC options beyond the architecture.
    public var options: [String] {
        ["--std=c++17", "-default-device"] + (isExact ? ["--fmad=false"] : [])
    }

    /// The kernels the source defines (`extern "C" __global__ void name(`), in source order.
    public var kernelNames: [String] {
        var names: [String] = []
        let marker = "extern \"C\" __global__ void "
        var rest = source[...]
        while let r = rest.range(of: marker) {
            let after = rest[r.upperBound...]
            if let paren = after.firstIndex(of: "(") { names.append(String(after[..<paren])) }
            rest = after
        }
        return names
    }
}

/// Headers every kernel source may include (given to NVRTC by name; the kernels include nothing else).
public enum CUDAKernelHeaders {
    public static let all: [(name: String, text: String)] = [
        ("qlora_math.h", String(decoding: PackageResources.qlora_math_h, as: UTF8.self)),
    ]
}
