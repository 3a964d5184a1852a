import CCUDA
import Crypto
import Foundation

/// What NVRTC produces for one source: PTX (for a `compute_XY` target) or a CUBIN (for `sm_XY`), and its log (with
/// `--ptxas-options=-v`, ptxas's register and spill report per kernel).
public struct CompiledKernels: Sendable {
    public let family: String
    public let architecture: String
    /// PTX text or CUBIN bytes.
    public let image: [UInt8]
    public let log: String
    /// Whether the result came from the on-disk cache.
    public let cached: Bool

    public var ptx: String? { architecture.hasPrefix("compute_") ? String(decoding: image, as: UTF8.self) : nil }

    /// ptxas's report per kernel (empty unless compiled to a CUBIN with `--ptxas-options=-v`).
    public var resourceUsage: [KernelResourceUsage] { KernelResourceUsage.parse(log) }
}

/// One kernel's line in ptxas's `-v` report.
public struct KernelResourceUsage: Sendable, Equatable {
    public var kernel: String
    public var registers: Int
    public var spillStoreBytes: Int
    public var spillLoadBytes: Int

    public init(kernel: String, registers: Int, spillStoreBytes: Int, spillLoadBytes: Int) {
        self.kernel = kernel
        self.registers = registers
        self.spillStoreBytes = spillStoreBytes
        self.spillLoadBytes = spillLoadBytes
    }

    /// Parses `Compiling entry function 'name' …`, then `N bytes spill stores, M bytes spill loads` and
    /// `Used R registers` for it.
    public static func parse(_ log: String) -> [KernelResourceUsage] {
        var out: [KernelResourceUsage] = []
        for line in log.split(separator: "\n") {
            if let r = line.range(of: "Compiling entry function '") {
                let name = line[r.upperBound...].prefix { $0 != "'" }
                out.append(KernelResourceUsage(kernel: String(name), registers: 0, spillStoreBytes: 0, spillLoadBytes: 0))
            } else if !out.isEmpty, line.contains("bytes spill stores") {
                let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
                if numbers.count >= 2 {
                    out[out.count - 1].spillStoreBytes = numbers[numbers.count - 2]
                    out[out.count - 1].spillLoadBytes = numbers[numbers.count - 1]
                }
            } else if !out.isEmpty, let r = line.range(of: "Used ") {
                out[out.count - 1].registers = Int(line[r.upperBound...].prefix { $0.isNumber }) ?? 0
            }
        }
        return out
    }
}

/// Compiles kernel sources with NVRTC for one GPU architecture, caching results on disk under a key of the source,
/// its headers, the architecture, the options and NVRTC's version (so a changed kernel or compiler never reuses a
/// stale image). A compile error throws with NVRTC's log. Cache writes are atomic (temp file, then rename); a cache
/// that cannot be written is skipped, never fatal.
public final class NVRTCCompiler: @unchecked Sendable {
    public let nvrtc: NVRTCLibrary
    /// nil: no disk cache.
    public let cacheDirectory: URL?

    public init(nvrtc: NVRTCLibrary, cacheDirectory: URL? = NVRTCCompiler.defaultCacheDirectory()) {
        self.nvrtc = nvrtc
        self.cacheDirectory = cacheDirectory
    }

    /// `QLORA_KERNEL_CACHE`, else `$XDG_CACHE_HOME/qlora/kernels`, else `~/.cache/qlora/kernels`.
    public static func defaultCacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        if let dir = environment["QLORA_KERNEL_CACHE"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        if let xdg = environment["XDG_CACHE_HOME"], !xdg.isEmpty { return URL(fileURLWithPath: xdg).appendingPathComponent("qlora/kernels") }
        if let home = environment["HOME"], !home.isEmpty { return URL(fileURLWithPath: home).appendingPathComponent(".cache/qlora/kernels") }
        return nil
    }

    /// Compiles a family for `architecture` ("sm_90" → CUBIN, "compute_90" → PTX).
    public func compile(_ family: CUDAKernelFamily, architecture: String, verbose: Bool = false) throws -> CompiledKernels {
        try compile(source: family.source, name: family.fileName, architecture: architecture,
                    options: family.options + (verbose ? ["--ptxas-options=-v"] : []), headers: CUDAKernelHeaders.all)
    }

    /// Compiles any source (tests compile broken fixtures through here).
    public func compile(source: String, name: String, architecture: String, options: [String],
                        headers: [(name: String, text: String)] = CUDAKernelHeaders.all) throws -> CompiledKernels {
        let allOptions = ["--gpu-architecture=\(architecture)"] + options
        let key = cacheKey(source: source, headers: headers, options: allOptions)
        let family = (name as NSString).deletingPathExtension
        if let hit = readCache(key) {
            return CompiledKernels(family: family, architecture: architecture, image: hit.image, log: hit.log, cached: true)
        }
        let (image, log) = try nvrtc.compile(source: source, name: name, headers: headers, options: allOptions,
                                             cubin: architecture.hasPrefix("sm_"))
        writeCache(key, image: image, log: log)
        return CompiledKernels(family: family, architecture: architecture, image: image, log: log, cached: false)
    }

    func cacheKey(source: String, headers: [(name: String, text: String)], options: [String]) -> String {
        var h = SHA256()
        func add(_ s: String) {
            h.update(data: Data(s.utf8))
            h.update(data: Data([0]))
        }
        add("nvrtc \(nvrtc.version.major).\(nvrtc.version.minor)")
        add(source)
        for header in headers { add(header.name); add(header.text) }
        for option in options { add(option) }
        return h.finalize().map { String(format: "%02x", $0) }.joined()
    }

    private func readCache(_ key: String) -> (image: [UInt8], log: String)? {
        guard let dir = cacheDirectory,
              let image = try? Data(contentsOf: dir.appendingPathComponent("\(key).bin")),
              let log = try? String(contentsOf: dir.appendingPathComponent("\(key).log"), encoding: .utf8) else { return nil }
        return ([UInt8](image), log)
    }

    private func writeCache(_ key: String, image: [UInt8], log: String) {
        guard let dir = cacheDirectory else { return }
        let fm = FileManager.default
        guard (try? fm.createDirectory(at: dir, withIntermediateDirectories: true)) != nil else { return }
        // The log first: a reader needs both, and the image's rename is what makes the entry visible.
        for (suffix, data) in [("log", Data(log.utf8)), ("bin", Data(image))] {
            let final = dir.appendingPathComponent("\(key).\(suffix)")
            let temp = dir.appendingPathComponent("\(key).\(suffix).\(ProcessInfo.processInfo.processIdentifier).tmp")
            do {
                try data.write(to: temp)
                _ = try? fm.removeItem(at: final)
                try fm.moveItem(at: temp, to: final)
            } catch {
                try? fm.removeItem(at: temp)
                return
            }
        }
    }
}

extension NVRTCLibrary {
    /// One NVRTC compilation: the image (PTX text, or CUBIN when `cubin`) and the log; throws with the log on error.
    func compile(source: String, name: String, headers: [(name: String, text: String)], options: [String],
                 cubin: Bool) throws -> (image: [UInt8], log: String) {
        var program: qlora_nvrtcProgram?
        let created = withCStrings(headers.map(\.text)) { texts in
            withCStrings(headers.map(\.name)) { names in
                api.nvrtcCreateProgram(&program, source, name, Int32(headers.count), texts, names)
            }
        }
        try check(created, "nvrtcCreateProgram(\(name))")
        defer { _ = api.nvrtcDestroyProgram(&program) }
        let compiled = withCStrings(options) { api.nvrtcCompileProgram(program, Int32(options.count), $0) }
        var logSize = 0
        _ = api.nvrtcGetProgramLogSize(program, &logSize)
        var logBytes = [CChar](repeating: 0, count: max(1, logSize))
        _ = api.nvrtcGetProgramLog(program, &logBytes)
        let log = cString(logBytes)
        if compiled != 0 {
            throw CUDAError("NVRTC could not compile \(name) (\(options.joined(separator: " "))): "
                + "\(nvrtcErrorName(compiled))\n\(log)")
        }
        var size = 0
        var image: [UInt8]
        if cubin {
            try check(api.nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize(\(name))")
            image = [UInt8](repeating: 0, count: size)
            try image.withUnsafeMutableBytes { b in
                try check(api.nvrtcGetCUBIN(program, b.baseAddress!.assumingMemoryBound(to: CChar.self)), "nvrtcGetCUBIN(\(name))")
            }
        } else {
            try check(api.nvrtcGetPTXSize(program, &size), "nvrtcGetPTXSize(\(name))")
            image = [UInt8](repeating: 0, count: size)
            try image.withUnsafeMutableBytes { b in
                try check(api.nvrtcGetPTX(program, b.baseAddress!.assumingMemoryBound(to: CChar.self)), "nvrtcGetPTX(\(name))")
            }
            if image.last == 0 { image.removeLast() }
        }
        return (image, log)
    }

    func nvrtcErrorName(_ result: qlora_nvrtcResult) -> String {
        api.nvrtcGetErrorString(result).map { String(cString: $0) } ?? "NVRTC error \(result)"
    }

    func check(_ result: qlora_nvrtcResult, _ call: @autoclosure () -> String) throws {
        guard result != 0 else { return }
        throw CUDAError("\(call()): \(nvrtcErrorName(result))")
    }
}

/// Runs `body` with a C array of C strings (valid only inside `body`).
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
    let copies = strings.map { strdup($0) }
    defer { copies.forEach { free($0) } }
    let pointers = copies.map { UnsafePointer($0) }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
}

/// The text of a NUL-terminated C buffer.
func cString(_ buffer: [CChar]) -> String {
    let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self)
}
