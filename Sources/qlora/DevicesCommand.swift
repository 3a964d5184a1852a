import ArgumentParser
import Foundation
import QLoRABackends
import QLoRACPU
import QLoRACUDA

struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List the compute devices and the kernels each uses (CPU: model, SIMD features, GEMM library and kernel set).",
        discussion: """
            The CPU's GEMMs run on OpenBLAS, loaded at the first GEMM. Its kernel set (core type) is chosen from \
            cpuid before OpenBLAS initialises: SkylakeX (Cooperlake with AVX512_BF16) on AVX-512 CPUs, Zen on AMD \
            AVX2 CPUs, Haswell on other AVX2+FMA CPUs, OpenBLAS's own detection otherwise; an OPENBLAS_CORETYPE set \
            in the environment is respected and reported as the user's choice. CUDA: the driver (libcuda.so.1) and \
            its GPUs, NVRTC and cuBLASLt, looked for in QLORA_CUDA_LIBRARY_PATH, the nvidia-* wheels of any \
            Python's site-packages and /usr/local/cuda, each with where it was found or why it was not. Exit status 1 \
            when OpenBLAS cannot be loaded.
            """)

    @Flag(help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let devices = [DeviceReport.cpu()]
        let backends = Backends.available().map { BackendReport(name: $0.name, details: $0.details, reason: nil) }
        let auto = try Backends.make(.auto)
        let cuda = CUDAProbe.run()
        let report = Report(devices: devices, cuda: cuda, backends: backends,
                            auto: BackendReport(name: auto.name, details: auto.details, reason: auto.reason))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            encoder.keyEncodingStrategy = .convertToSnakeCase
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            for device in devices { print(device.text) }
            for line in cuda.report { print(line) }
            print("backends: " + backends.map { "\($0.name) (\($0.details))" }.joined(separator: ", "))
            print("auto: \(auto.name) (\(auto.reason))")
        }
        if devices.contains(where: { $0.error != nil }) { throw ExitCode(1) }
    }

    struct Report: Encodable {
        var devices: [DeviceReport]
        /// What `CUDAProbe` found: driver, GPUs, NVRTC, cuBLASLt (each with its path and version, or why not).
        var cuda: CUDAProbe
        /// The backends `--backend` and the spec's `backend:` can name on this machine.
        var backends: [BackendReport]
        /// What `auto` picks here, and why.
        var auto: BackendReport
    }

    struct BackendReport: Encodable {
        var name: String
        var details: String
        var reason: String?
    }
}

/// One compute device and its kernels, as `qlora devices` lists them (GPUs are listed by CUDAProbe).
struct DeviceReport: Encodable {
    var kind: String
    var index: Int
    var name: String
    var cpu: CPUInfo?
    var gemm: GEMMKernel?
    var error: String?

    static func cpu() -> DeviceReport {
        let info = CPUInfo.current
        var report = DeviceReport(kind: "cpu", index: 0, name: info.brand.isEmpty ? "CPU" : info.brand, cpu: info)
        do { report.gemm = try GEMMKernel.current() } catch { report.error = "\(error)" }
        return report
    }

    var text: String {
        var lines = ["\(kind) \(index): \(cpu.map { "\($0.description), \($0.logicalCores) logical cores" } ?? name)"]
        if let cpu { lines.append("  features: " + (cpu.features.names.isEmpty ? "none detected" : cpu.features.names.joined(separator: " "))) }
        if let gemm {
            lines.append("  GEMM: \(gemm.implementation) \(gemm.version ?? "?"), \(gemm.coreName) kernels, \(gemm.threads) thread(s)")
            lines.append("        \(gemm.choiceDescription)")
            lines.append("        library \(gemm.library)")
            lines.append("        config \(gemm.config)")
            if gemm.isFallbackOnThisCPU { lines.append("  WARNING: \(gemm.coreName) is a pre-AVX2 fallback on a CPU with AVX2+FMA") }
        }
        if let error { lines.append("  GEMM: unavailable: \(error)") }
        return lines.joined(separator: "\n")
    }
}
