import Foundation

/// What this machine has for CUDA, found without side effects beyond loading the libraries: the driver and its GPUs,
/// NVRTC and cuBLASLt (where, which version), or why each is missing. `qlora devices` prints it; the backend factory
/// uses it to say why `auto` runs on the CPU and why `backend: cuda` cannot run.
public struct CUDAProbe: Sendable, Encodable {
    public struct Library: Sendable, Encodable {
        public var path: String?
        public var version: String?
        /// Why it was not found (nil when found).
        public var problem: String?
    }

    public var driver: Library
    public var devices: [CUDADriver.Device]
    public var nvrtc: Library
    public var cublasLt: Library

    enum CodingKeys: String, CodingKey { case driver, devices = "gpus", nvrtc, cublasLt = "cublaslt" }

    /// Whether a GPU can be used at all (a driver that initialized and at least one device).
    public var hasGPU: Bool { driver.problem == nil && !devices.isEmpty }

    /// One line on why there is no usable GPU, or nil.
    public var whyNoGPU: String? {
        if let problem = driver.problem { return problem }
        if devices.isEmpty { return "the CUDA driver \(driver.version ?? "") sees no GPU" }
        return nil
    }

    /// Looks for everything (each part independently, so a missing driver still reports the libraries); with
    /// `libraries: false` only for the driver and its GPUs (cheap: what choosing a backend needs).
    public static func run(_ search: CUDALibrarySearch = .standard(), libraries: Bool = true) -> CUDAProbe {
        var probe = CUDAProbe(driver: Library(), devices: [], nvrtc: Library(), cublasLt: Library())
        do {
            let driver = try CUDADriver.open(search)
            probe.driver.path = driver.path
            probe.driver.version = try driver.version()
            probe.devices = try driver.devices()
        } catch {
            probe.driver.problem = "\(error)"
        }
        guard libraries else { return probe }
        do {
            let nvrtc = try NVRTCLibrary.open(search)
            probe.nvrtc = Library(path: nvrtc.path, version: "\(nvrtc.version.major).\(nvrtc.version.minor)", problem: nil)
        } catch {
            probe.nvrtc.problem = "\(error)"
        }
        do {
            let lt = try CuBLASLtLibrary.open(search)
            let v = lt.version
            probe.cublasLt = Library(path: lt.path, version: "\(v / 10000).\(v / 100 % 100).\(v % 100)", problem: nil)
        } catch {
            probe.cublasLt.problem = "\(error)"
        }
        return probe
    }

    /// Lines for `qlora devices`.
    public var report: [String] {
        var lines: [String] = []
        if let problem = driver.problem {
            lines.append("CUDA driver: none (\(problem))")
        } else {
            lines.append("CUDA driver: \(driver.version ?? "?") (\(driver.path ?? "?")), \(devices.count) GPU\(devices.count == 1 ? "" : "s")")
            for d in devices {
                lines.append("  GPU \(d.index): \(d.name), compute capability \(d.computeCapability), "
                    + String(format: "%.1f GiB", Double(d.memoryBytes) / Double(1 << 30)) + ", \(d.multiprocessors) SMs")
            }
        }
        for (label, lib) in [("NVRTC", nvrtc), ("cuBLASLt", cublasLt)] {
            if let path = lib.path { lines.append("\(label): \(lib.version ?? "?") (\(path))") }
            else { lines.append("\(label): none (\(lib.problem ?? "not found"))") }
        }
        return lines
    }
}
