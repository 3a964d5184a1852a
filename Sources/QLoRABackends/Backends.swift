import Foundation
import QLoRACore
import QLoRACPU
import QLoRACUDA

/// Which backend computes: the spec's top-level `backend:` key and every computing command's `--backend`.
public enum BackendChoice: String, CaseIterable, Codable, Sendable {
    /// The best backend available on this machine (today: `cpu`; it says why not CUDA).
    case auto
    /// `CPUBackend`: OpenBLAS sgemm plus the SIMD, threaded kernels of Sources/CQLoRAKernels.
    case cpu
    /// `ReferenceBackend`: the scalar definition of every op; slow, for checking the others.
    case reference
    /// `CUDABackend` (Sources/QLoRACUDA) on GPU 0: only when asked for by name until it has passed the GPU check on a
    /// GPU (docs/CUDA.md); without a usable GPU it fails with what was found.
    case cuda

    /// What the backend's GEMMs read when no precision is asked for: bf16 on CUDA (the paper's compute dtype), fp32 on
    /// the CPU backends (their only precision).
    public var defaultPrecision: ComputePrecision { self == .cuda ? .bf16 : .fp32 }
}

/// A backend that cannot run here, with why.
public struct BackendUnavailable: Error, CustomStringConvertible {
    public let description: String
}

/// A backend chosen for a run, with what to tell the user and record in manifests.
public struct BackendSelection: Sendable {
    public let backend: any Backend
    /// The backend that runs: `cpu` or `reference` (never `auto`).
    public let name: String
    /// What was asked for.
    public let choice: BackendChoice
    /// Why this backend, for `auto` (e.g. "no CUDA GPU: no CUDA driver: …"); empty when chosen explicitly.
    public let reason: String
    /// One line about the backend (threads, GEMM kernel).
    public let details: String
    /// What its GEMMs read.
    public var precision: ComputePrecision = .fp32

    /// "cpu (auto: …; 2 threads)".
    public var summary: String {
        var s = name
        var extra: [String] = []
        if choice == .auto { extra.append("auto" + (reason.isEmpty ? "" : ": \(reason)")) }
        if !details.isEmpty { extra.append(details) }
        if !extra.isEmpty { s += " (" + extra.joined(separator: "; ") + ")" }
        return s
    }
}

/// The one place that knows every backend: makes the one a choice names, and lists those available (the
/// conformance suites run on each). A new backend adds its module to Package.swift and a case here.
public enum Backends {
    /// The backend for `choice`, with `threads` worker threads (default: every core), its GEMMs in `precision` (nil:
    /// the backend's default, bf16 on CUDA and fp32 elsewhere). A host backend asked for bf16 throws: it computes in
    /// fp32 only, and running fp32 under a bf16 label would be a different training than the one asked for.
    public static func make(_ choice: BackendChoice, threads: Int? = nil, precision: ComputePrecision? = nil) throws -> BackendSelection {
        let threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        if choice != .cuda, let precision, precision != .fp32 {
            throw BackendUnavailable(description: "backend \(choice == .auto ? "auto (cpu here)" : choice.rawValue) computes in fp32 only; "
                                     + "\(precision.rawValue) compute needs the CUDA backend (backend: cuda)")
        }
        switch choice {
        case .auto:
            let cpu = try make(.cpu, threads: threads)
            let probe = CUDAProbe.run(libraries: false)
            let reason = probe.whyNoGPU.map { "no CUDA GPU: \($0)" }
                ?? "\(probe.devices.count) CUDA GPU(s) found; the CUDA backend is not yet verified on a GPU, so it runs only when "
                + "asked for (backend: cuda; docs/CUDA.md)"
            return BackendSelection(backend: cpu.backend, name: cpu.name, choice: .auto, reason: reason, details: cpu.details)
        case .cuda:
            let probe = CUDAProbe.run(libraries: false)
            if let why = probe.whyNoGPU { throw BackendUnavailable(description: "backend cuda: no usable GPU: \(why)") }
            do {
                let context = try CUDAContext(device: 0)
                let d = context.deviceInfo
                let precision = precision ?? choice.defaultPrecision
                var selection = BackendSelection(
                    backend: CUDABackend(context: context, precision: precision), name: "cuda", choice: .cuda, reason: "",
                    details: "\(d.name), \(context.architecture), driver \(probe.driver.version ?? "?"), "
                        + "\(precision == .bf16 ? "bf16 GEMMs with fp32 accumulation" : "fp32 compute (no TF32)")")
                selection.precision = precision
                return selection
            } catch {
                throw BackendUnavailable(description: "backend cuda: \(error)")
            }
        case .cpu:
            return BackendSelection(backend: CPUBackend(threads: threads), name: "cpu", choice: .cpu, reason: "",
                                    details: "\(threads) thread\(threads == 1 ? "" : "s")")
        case .reference:
            return BackendSelection(backend: ReferenceBackend(threads: threads), name: "reference", choice: .reference, reason: "",
                                    details: "scalar definitions, \(threads) thread\(threads == 1 ? "" : "s")")
        }
    }

    /// Every backend this machine can run, by name (for conformance tests and `qlora devices`).
    public static func available(threads: Int? = nil) -> [BackendSelection] {
        [BackendChoice.cpu, .reference].compactMap { try? make($0, threads: threads) }
    }
}
