import CCUDA
import Foundation

/// An error from CUDA, NVRTC or cuBLASLt, or from finding them: it names the call (or the library) and CUDA's own
/// error name and text.
public struct CUDAError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where the CUDA libraries are looked for, in order, and what was found. Nothing CUDA is linked: the driver, NVRTC and
/// cuBLASLt are opened at run time (Sources/CCUDA), so the same binary runs on machines with and without a GPU.
///
/// - The driver, `libcuda.so.1`, comes with the NVIDIA driver (the container toolkit mounts it into containers): it is
///   opened by name (the loader's path), then from the usual driver folders.
/// - NVRTC and cuBLASLt come from the `nvidia-cuda-nvrtc` / `nvidia-cublas` wheels or a CUDA toolkit, CUDA 13 first,
///   then 12: from the folders in `QLORA_CUDA_LIBRARY_PATH` (colon-separated), the wheels' `nvidia/cu13/lib`,
///   `nvidia/cuda_nvrtc/lib` and `nvidia/cublas/lib` inside any Python's site-packages (system, user, `VIRTUAL_ENV`,
///   conda), `/usr/local/cuda/lib64`, then by name.
public struct CUDALibrarySearch: Sendable {
    /// Folders tried for NVRTC and cuBLASLt, in order (after them, the bare sonames).
    public var folders: [String]
    /// Candidates for the driver, in order.
    public var driverCandidates: [String]

    public init(folders: [String], driverCandidates: [String] = CUDALibrarySearch.defaultDriverCandidates) {
        self.folders = folders
        self.driverCandidates = driverCandidates
    }

    public static let defaultDriverCandidates = [
        "libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib64/libcuda.so.1", "/usr/local/nvidia/lib64/libcuda.so.1",
        "/usr/lib/wsl/lib/libcuda.so.1",
    ]

    /// The default search, from the environment (`QLORA_CUDA_LIBRARY_PATH`, `VIRTUAL_ENV`, `HOME`, `CONDA_PREFIX`).
    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> CUDALibrarySearch {
        var folders: [String] = (environment["QLORA_CUDA_LIBRARY_PATH"] ?? "").split(separator: ":").map(String.init)
        var sitePackages: [String] = []
        func pythons(under root: String, _ leaf: String) {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root) else { return }
            for e in entries.sorted(by: >) where e.hasPrefix("python3") { sitePackages.append("\(root)/\(e)/\(leaf)") }
        }
        if let venv = environment["VIRTUAL_ENV"] { pythons(under: "\(venv)/lib", "site-packages") }
        if let conda = environment["CONDA_PREFIX"] { pythons(under: "\(conda)/lib", "site-packages") }
        if let home = environment["HOME"] { pythons(under: "\(home)/.local/lib", "site-packages") }
        pythons(under: "/usr/local/lib", "dist-packages")
        pythons(under: "/usr/local/lib", "site-packages")
        sitePackages.append("/usr/lib/python3/dist-packages")
        pythons(under: "/opt/conda/lib", "site-packages")
        for site in sitePackages {
            for sub in ["nvidia/cu13/lib", "nvidia/cuda_nvrtc/lib", "nvidia/cublas/lib"] { folders.append("\(site)/\(sub)") }
        }
        folders += ["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib"]
        return CUDALibrarySearch(folders: folders)
    }

    /// Paths to try for a library with these sonames: every folder × soname that exists, then the bare sonames.
    func candidates(_ sonames: [String]) -> [String] {
        var out: [String] = []
        for folder in folders {
            for name in sonames where FileManager.default.fileExists(atPath: "\(folder)/\(name)") { out.append("\(folder)/\(name)") }
        }
        return out + sonames
    }
}

/// NVRTC, opened from the first place `CUDALibrarySearch` finds it.
public final class NVRTCLibrary: @unchecked Sendable {
    let api: qlora_nvrtc
    /// The library file that was opened.
    public let path: String
    /// NVRTC's version (major, minor).
    public let version: (major: Int, minor: Int)

    private init(api: qlora_nvrtc, path: String) {
        self.api = api
        self.path = path
        var major: Int32 = 0, minor: Int32 = 0
        _ = api.nvrtcVersion(&major, &minor)
        version = (Int(major), Int(minor))
    }

    /// Opens NVRTC (13, then 12), loading its builtins library from the same folder first.
    public static func open(_ search: CUDALibrarySearch = .standard()) throws -> NVRTCLibrary {
        var tried: [String] = []
        for path in search.candidates(["libnvrtc.so.13", "libnvrtc.so.12"]) {
            let folder = (path as NSString).deletingLastPathComponent
            let builtins = folder.isEmpty ? nil : Self.builtins(in: folder, for: path)
            var api = qlora_nvrtc()
            var error = [CChar](repeating: 0, count: 1024)
            let rc = builtins.withOptionalCString { b in qlora_cuda_open_nvrtc(path, b, &api, &error, error.count) }
            if rc == 0 { return NVRTCLibrary(api: api, path: path) }
            tried.append(cString(error))
        }
        throw CUDAError("NVRTC not found (install the nvidia-cuda-nvrtc wheel or a CUDA toolkit, or set QLORA_CUDA_LIBRARY_PATH); tried: "
            + tried.joined(separator: "; "))
    }

    /// `libnvrtc-builtins.so.<major>.<minor>` beside `library` (libnvrtc opens it by bare name).
    static func builtins(in folder: String, for library: String) -> String? {
        let major = library.hasSuffix(".13") ? "13" : "12"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return entries.filter { $0.hasPrefix("libnvrtc-builtins.so.\(major).") }.sorted().last.map { "\(folder)/\($0)" }
    }
}

/// The CUDA driver API, opened from `libcuda.so.1`.
public final class CUDADriver: @unchecked Sendable {
    let api: qlora_cuda_driver
    public let path: String

    private init(api: qlora_cuda_driver, path: String) {
        self.api = api
        self.path = path
    }

    /// Opens the driver and initializes it (`cuInit`). Throws when there is no driver or it cannot initialize (no GPU,
    /// a driver/library mismatch), with what was tried.
    public static func open(_ search: CUDALibrarySearch = .standard()) throws -> CUDADriver {
        var tried: [String] = []
        for path in search.driverCandidates {
            var api = qlora_cuda_driver()
            var error = [CChar](repeating: 0, count: 1024)
            if qlora_cuda_open_driver(path, &api, &error, error.count) == 0 {
                let driver = CUDADriver(api: api, path: path)
                try driver.check(api.cuInit(0), "cuInit")
                return driver
            }
            tried.append(cString(error))
        }
        throw CUDAError("no CUDA driver: " + (tried.first ?? "libcuda.so.1 not found"))
    }

    /// Throws a `CUDAError` naming `call` and CUDA's error name and text unless `result` is CUDA_SUCCESS.
    func check(_ result: qlora_CUresult, _ call: @autoclosure () -> String) throws {
        guard result != 0 else { return }
        var name: UnsafePointer<CChar>?, text: UnsafePointer<CChar>?
        _ = api.cuGetErrorName(result, &name)
        _ = api.cuGetErrorString(result, &text)
        throw CUDAError("\(call()): \(name.map { String(cString: $0) } ?? "CUDA error \(result)")"
            + (text.map { " (\(String(cString: $0)))" } ?? ""))
    }

    /// The driver's CUDA version ("13.0").
    public func version() throws -> String {
        var v: Int32 = 0
        try check(api.cuDriverGetVersion(&v), "cuDriverGetVersion")
        return "\(v / 1000).\(v % 1000 / 10)"
    }

    /// One GPU as the driver describes it.
    public struct Device: Sendable, Encodable {
        public var index: Int
        public var name: String
        public var computeCapability: String
        public var memoryBytes: Int
        public var multiprocessors: Int
    }

    /// Every GPU the driver sees.
    public func devices() throws -> [Device] {
        var count: Int32 = 0
        try check(api.cuDeviceGetCount(&count), "cuDeviceGetCount")
        return try (0..<Int(count)).map { i in
            var device: qlora_CUdevice = 0
            try check(api.cuDeviceGet(&device, Int32(i)), "cuDeviceGet(\(i))")
            var name = [CChar](repeating: 0, count: 256)
            try check(api.cuDeviceGetName(&name, Int32(name.count), device), "cuDeviceGetName(\(i))")
            var bytes = 0
            try check(api.cuDeviceTotalMem(&bytes, device), "cuDeviceTotalMem_v2(\(i))")
            func attribute(_ a: Int32) throws -> Int {
                var v: Int32 = 0
                try check(api.cuDeviceGetAttribute(&v, a, device), "cuDeviceGetAttribute(\(a), \(i))")
                return Int(v)
            }
            let major = try attribute(Int32(QLORA_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR))
            let minor = try attribute(Int32(QLORA_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR))
            return Device(index: i, name: cString(name), computeCapability: "\(major).\(minor)", memoryBytes: bytes,
                          multiprocessors: try attribute(Int32(QLORA_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)))
        }
    }
}

/// cuBLASLt, opened from the first place `CUDALibrarySearch` finds it.
public final class CuBLASLtLibrary: @unchecked Sendable {
    let api: qlora_cublaslt
    public let path: String
    public let version: Int

    private init(api: qlora_cublaslt, path: String) {
        self.api = api
        self.path = path
        version = Int(api.cublasLtGetVersion())
    }

    public static func open(_ search: CUDALibrarySearch = .standard()) throws -> CuBLASLtLibrary {
        var tried: [String] = []
        for path in search.candidates(["libcublasLt.so.13", "libcublasLt.so.12"]) {
            var api = qlora_cublaslt()
            var error = [CChar](repeating: 0, count: 1024)
            if qlora_cuda_open_cublaslt(path, &api, &error, error.count) == 0 { return CuBLASLtLibrary(api: api, path: path) }
            tried.append(cString(error))
        }
        throw CUDAError("cuBLASLt not found (install the nvidia-cublas wheel or a CUDA toolkit, or set QLORA_CUDA_LIBRARY_PATH); tried: "
            + tried.joined(separator: "; "))
    }
}

extension Optional where Wrapped == String {
    func withOptionalCString<R>(_ body: (UnsafePointer<CChar>?) -> R) -> R {
        switch self {
        case .some(let s): return s.withCString { body($0) }
        case .none: return body(nil)
        }
    }
}
