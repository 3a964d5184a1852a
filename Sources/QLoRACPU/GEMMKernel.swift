import COpenBLAS
import Foundation

/// This machine's CPU as cpuid describes it (x86-64; elsewhere the vendor and features are empty).
public struct CPUInfo: Sendable, Codable, Equatable, CustomStringConvertible {
    public var vendor: String
    public var brand: String
    public var family: Int
    public var model: Int
    public var stepping: Int
    public var features: CPUFeatures
    public var logicalCores: Int

    /// Identified once per process (cpuid + xgetbv).
    public static let current: CPUInfo = {
        let info = qlora_cpu_identify()!.pointee
        return CPUInfo(vendor: withUnsafeBytes(of: info.vendor) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) },
                       brand: withUnsafeBytes(of: info.brand) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) },
                       family: Int(info.family), model: Int(info.model), stepping: Int(info.stepping),
                       features: CPUFeatures(rawValue: info.features),
                       logicalCores: ProcessInfo.processInfo.activeProcessorCount)
    }()

    /// "AMD EPYC 7B13 (AuthenticAMD family 0x19 model 0x1)".
    public var description: String {
        let name = brand.isEmpty ? "unknown CPU" : brand
        return vendor.isEmpty ? name : name + " (\(vendor) family 0x\(String(family, radix: 16)) model 0x\(String(model, radix: 16)))"
    }
}

/// SIMD features usable by this process: the CPU has them and the OS saves their registers (XCR0). The bits are
/// COpenBLAS's QLoRACPUFeature values.
public struct CPUFeatures: OptionSet, Sendable, Hashable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    private init(_ bit: QLoRACPUFeature) { rawValue = UInt64(bit.rawValue) }

    public static let sse2 = CPUFeatures(QLoRACPUFeatureSSE2)
    public static let sse3 = CPUFeatures(QLoRACPUFeatureSSE3)
    public static let ssse3 = CPUFeatures(QLoRACPUFeatureSSSE3)
    public static let sse4_1 = CPUFeatures(QLoRACPUFeatureSSE41)
    public static let sse4_2 = CPUFeatures(QLoRACPUFeatureSSE42)
    public static let avx = CPUFeatures(QLoRACPUFeatureAVX)
    public static let f16c = CPUFeatures(QLoRACPUFeatureF16C)
    public static let fma = CPUFeatures(QLoRACPUFeatureFMA)
    public static let avx2 = CPUFeatures(QLoRACPUFeatureAVX2)
    public static let avxVNNI = CPUFeatures(QLoRACPUFeatureAVXVNNI)
    public static let avx512f = CPUFeatures(QLoRACPUFeatureAVX512F)
    public static let avx512cd = CPUFeatures(QLoRACPUFeatureAVX512CD)
    public static let avx512bw = CPUFeatures(QLoRACPUFeatureAVX512BW)
    public static let avx512dq = CPUFeatures(QLoRACPUFeatureAVX512DQ)
    public static let avx512vl = CPUFeatures(QLoRACPUFeatureAVX512VL)
    public static let avx512VNNI = CPUFeatures(QLoRACPUFeatureAVX512VNNI)
    public static let avx512BF16 = CPUFeatures(QLoRACPUFeatureAVX512BF16)
    public static let avx512FP16 = CPUFeatures(QLoRACPUFeatureAVX512FP16)
    public static let amxTile = CPUFeatures(QLoRACPUFeatureAMXTile)
    public static let amxBF16 = CPUFeatures(QLoRACPUFeatureAMXBF16)
    public static let amxINT8 = CPUFeatures(QLoRACPUFeatureAMXINT8)
    /// The CPU has AVX-512F but the OS does not enable its register state: no AVX-512 bit is set.
    public static let avx512DisabledByOS = CPUFeatures(QLoRACPUFeatureAVX512DisabledByOS)

    /// Names as Linux's /proc/cpuinfo spells them, in a fixed order.
    public static let names: [(CPUFeatures, String)] = [
        (.sse2, "sse2"), (.sse3, "sse3"), (.ssse3, "ssse3"), (.sse4_1, "sse4_1"), (.sse4_2, "sse4_2"), (.avx, "avx"),
        (.f16c, "f16c"), (.fma, "fma"), (.avx2, "avx2"), (.avxVNNI, "avx_vnni"), (.avx512f, "avx512f"),
        (.avx512cd, "avx512cd"), (.avx512bw, "avx512bw"), (.avx512dq, "avx512dq"), (.avx512vl, "avx512vl"),
        (.avx512VNNI, "avx512_vnni"), (.avx512BF16, "avx512_bf16"), (.avx512FP16, "avx512_fp16"),
        (.amxTile, "amx_tile"), (.amxBF16, "amx_bf16"), (.amxINT8, "amx_int8"),
        (.avx512DisabledByOS, "avx512-disabled-by-os"),
    ]

    public var names: [String] { Self.names.filter { contains($0.0) }.map(\.1) }

    public init(names: [String]) throws {
        var set: CPUFeatures = []
        for name in names {
            guard let entry = Self.names.first(where: { $0.1 == name }) else { throw CocoaError(.coderInvalidValue) }
            set.insert(entry.0)
        }
        self = set
    }
}

extension CPUFeatures: Codable {
    public init(from decoder: Decoder) throws { try self.init(names: try [String](from: decoder)) }
    public func encode(to encoder: Encoder) throws { try names.encode(to: encoder) }
}

/// Which OpenBLAS core type (kernel set) suits a CPU.
public enum OpenBLASCoreType {
    /// The core type qlora sets for OpenBLAS on a CPU with these features, or nil where OpenBLAS's own detection
    /// is as good (no AVX2+FMA). AVX-512 (F, CD, BW, DQ, VL) → "SkylakeX", or "Cooperlake" with AVX512_BF16 (the
    /// same sgemm kernels plus native bf16 sbgemm); AVX2+FMA → "Zen" on AMD/Hygon (OpenBLAS's Haswell sgemm
    /// kernels with its Zen blocking), "Haswell" elsewhere. The rules live in Sources/COpenBLAS/shim.c, which
    /// applies them before OpenBLAS loads; this calls them.
    public static func choose(features: CPUFeatures, vendor: String, family: Int = 0, model: Int = 0) -> String? {
        vendor.withCString { v in
            qlora_openblas_choose_coretype(features.rawValue, v, UInt32(truncatingIfNeeded: family),
                                           UInt32(truncatingIfNeeded: model)).map { String(cString: $0) }
        }
    }

    /// OpenBLAS's x86-64 core names for pre-AVX2 CPUs: on a CPU with AVX2 each of them is a slow fallback
    /// (Prescott is what 0.3.21 uses for a CPU model it does not know).
    public static let preAVX2: Set<String> = [
        "unknown", "generic", "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn",
        "dunnington", "nehalem", "athlon", "opteron", "opteron_sse3", "barcelona", "nano", "bobcat", "sandybridge",
        "bulldozer", "piledriver", "steamroller", "excavator",
    ]

    /// True for a core name whose kernels need no more than SSE/AVX (see `preAVX2`).
    public static func isPreAVX2(_ coreName: String) -> Bool { preAVX2.contains(coreName.lowercased()) }
}

/// The GEMM library and kernels in use by `CPUBackend`, and how they were chosen.
public struct GEMMKernel: Sendable, Codable, Equatable {
    /// Who decided the OpenBLAS core type.
    public enum Choice: String, Sendable, Codable {
        /// qlora chose it from cpuid before OpenBLAS initialised.
        case cpuid
        /// The user's OPENBLAS_CORETYPE, left untouched.
        case userEnvironment = "user-environment"
        /// OpenBLAS's own detection (no qlora rule for this CPU, or a caller asked for it).
        case openBLAS = "openblas"
        /// A caller named it (`GEMMKernel.configure(.named)`).
        case caller
        /// OpenBLAS was already loaded in the process before qlora could choose.
        case preloaded
    }

    /// How the loader sets the core type: a caller's option, applied at the first GEMM.
    public enum Selection: Sendable, Equatable {
        /// From cpuid (`OpenBLASCoreType.choose`), unless the user set OPENBLAS_CORETYPE. The default.
        case automatic
        /// Whatever OpenBLAS's constructor picks (its tables, or OPENBLAS_CORETYPE).
        case openBLASDefault
        /// This OpenBLAS core name, unless the user set OPENBLAS_CORETYPE.
        case named(String)
    }

    public var library: String
    /// "OpenBLAS", the only backend library so far.
    public var implementation: String
    /// `openblas_get_corename()`: the kernel set in use, e.g. "Haswell", "SkylakeX".
    public var coreName: String
    /// `openblas_get_config()`: version and build options.
    public var config: String
    /// The core type qlora asked for (or the user's value); nil when OpenBLAS detected it itself.
    public var requested: String?
    public var choice: Choice
    /// OpenBLAS's thread count now (`openblas_get_num_threads()`).
    public var threads: Int

    /// Sets how the core type is chosen. It applies only before the first GEMM in the process (returns false
    /// when OpenBLAS is already loaded). Without a call the selection is `.automatic`.
    @discardableResult
    public static func configure(_ selection: Selection) -> Bool {
        switch selection {
        case .automatic: qlora_openblas_configure(Int32(QLoRAOpenBLASCoreTypeAutomatic.rawValue), nil) == 1
        case .openBLASDefault: qlora_openblas_configure(Int32(QLoRAOpenBLASCoreTypeLibraryDefault.rawValue), nil) == 1
        case .named(let name): qlora_openblas_configure(Int32(QLoRAOpenBLASCoreTypeNamed.rawValue), name) == 1
        }
    }

    /// Loads OpenBLAS when not yet loaded and describes it; throws (naming what was tried) when it cannot load.
    public static func current() throws -> GEMMKernel {
        let api = qlora_openblas_load()!.pointee
        guard api.loaded == 1 else {
            throw GEMMKernelError(message: "cannot load OpenBLAS (tried \(String(cString: api.library))): \(String(cString: api.error))")
        }
        let choice: Choice
        switch UInt32(api.source) {
        case QLoRAOpenBLASCoreTypeFromCPUID.rawValue: choice = .cpuid
        case QLoRAOpenBLASCoreTypeFromUserEnv.rawValue: choice = .userEnvironment
        case QLoRAOpenBLASCoreTypeFromCaller.rawValue: choice = .caller
        case QLoRAOpenBLASCoreTypeFromPreloaded.rawValue: choice = .preloaded
        default: choice = .openBLAS
        }
        return GEMMKernel(library: String(cString: api.library), implementation: "OpenBLAS",
                          coreName: api.get_corename?().map { String(cString: $0) } ?? "?",
                          config: api.get_config?().map { String(cString: $0) }?.trimmingCharacters(in: .whitespaces) ?? "?",
                          requested: api.requested.map { String(cString: $0) }, choice: choice,
                          threads: Int(api.get_num_threads?() ?? 0))
    }

    /// The OpenBLAS version from the config string ("0.3.21"), or nil.
    public var version: String? {
        let words = config.split(separator: " ")
        guard let i = words.firstIndex(of: "OpenBLAS"), i + 1 < words.count else { return nil }
        return String(words[i + 1])
    }

    /// True when the kernel set is a pre-AVX2 one while this CPU has AVX2 and FMA.
    public var isFallbackOnThisCPU: Bool {
        CPUInfo.current.features.isSuperset(of: [.avx2, .fma]) && OpenBLASCoreType.isPreAVX2(coreName)
    }

    /// How the kernel was chosen, in words.
    public var choiceDescription: String {
        let asked = requested ?? "?"
        let got = requested.map { $0.caseInsensitiveCompare(coreName) == .orderedSame } ?? true
            ? "" : "; OpenBLAS uses \(coreName) instead (not a DYNAMIC_ARCH build, or an unknown name)"
        switch choice {
        case .cpuid: return "chosen by qlora from cpuid (OPENBLAS_CORETYPE=\(asked) for OpenBLAS's initialisation only)" + got
        case .userEnvironment: return "the user's choice (OPENBLAS_CORETYPE=\(asked) in the environment)" + got
        case .caller: return "named by the caller (\(asked))" + got
        case .openBLAS: return "OpenBLAS's own cpuid detection"
        case .preloaded: return "OpenBLAS's own detection: the library was already loaded before qlora could choose"
        }
    }

    /// One line for benches: "OpenBLAS 0.3.21, Zen kernels: chosen by qlora from cpuid (...); 2 thread(s); /usr/lib/...".
    public var summary: String {
        var text = "\(implementation) \(version ?? "?"), \(coreName) kernels: \(choiceDescription); \(threads) thread(s); \(library)"
        if isFallbackOnThisCPU { text += " — WARNING: a pre-AVX2 fallback on a CPU with AVX2+FMA" }
        return text
    }
}

public struct GEMMKernelError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
