import Foundation
import Testing
import QLoRACPU

/// The OpenBLAS core type qlora picks from cpuid, on synthetic CPUs and on this one.
@Suite struct GEMMKernelTests {
    static let sse: CPUFeatures = [.sse2, .sse3, .ssse3, .sse4_1, .sse4_2]
    static let avx: CPUFeatures = sse.union([.avx, .f16c])
    static let avx2: CPUFeatures = avx.union([.fma, .avx2])
    static let avx512: CPUFeatures = avx2.union([.avx512f, .avx512cd, .avx512bw, .avx512dq, .avx512vl, .avx512VNNI])

    @Test func sapphireRapidsGetsAVX512Kernels() {
        // Family 6 model 0x8F; Emerald Rapids (0xCF) and Granite Rapids (0xAD), which OpenBLAS 0.3.21 does not
        // know and runs on Prescott kernels, have the same features.
        let spr = Self.avx512.union([.avx512BF16, .avx512FP16, .avxVNNI, .amxTile, .amxBF16, .amxINT8])
        for model in [0x8F, 0xCF, 0xAD] {
            #expect(OpenBLASCoreType.choose(features: spr, vendor: "GenuineIntel", family: 6, model: model) == "Cooperlake")
        }
    }

    @Test func zen4AndZen5GetAVX512Kernels() {
        let zen4 = Self.avx512.union([.avx512BF16])
        #expect(OpenBLASCoreType.choose(features: zen4, vendor: "AuthenticAMD", family: 0x19, model: 0x11) == "Cooperlake")
        #expect(OpenBLASCoreType.choose(features: zen4, vendor: "AuthenticAMD", family: 0x1A, model: 0x02) == "Cooperlake")
    }

    @Test func skylakeServerGetsSkylakeX() {
        #expect(OpenBLASCoreType.choose(features: Self.avx512, vendor: "GenuineIntel", family: 6, model: 0x55) == "SkylakeX")
    }

    @Test func avx2CPUsGetHaswellKernels() {
        #expect(OpenBLASCoreType.choose(features: Self.avx2, vendor: "GenuineIntel", family: 6, model: 0x3C) == "Haswell")
        #expect(OpenBLASCoreType.choose(features: Self.avx2, vendor: "AuthenticAMD", family: 0x19, model: 0x01) == "Zen")  // Zen 3
        #expect(OpenBLASCoreType.choose(features: Self.avx2, vendor: "AuthenticAMD", family: 0x17, model: 0x31) == "Zen")  // Zen 2
        #expect(OpenBLASCoreType.choose(features: Self.avx2, vendor: "HygonGenuine", family: 0x18, model: 0x01) == "Zen")
        // Alder Lake and later client cores: AVX-512 fused off, AVX-VNNI instead.
        #expect(OpenBLASCoreType.choose(features: Self.avx2.union(.avxVNNI), vendor: "GenuineIntel", family: 6, model: 0x97) == "Haswell")
        // A VM or OS that does not enable the ZMM state: the AVX-512 bits are not set, AVX2 kernels it is.
        #expect(OpenBLASCoreType.choose(features: Self.avx2.union(.avx512DisabledByOS), vendor: "GenuineIntel") == "Haswell")
        // Knights Landing: AVX-512F and CD without BW/DQ/VL, which the SkylakeX kernels need.
        #expect(OpenBLASCoreType.choose(features: Self.avx2.union([.avx512f, .avx512cd]), vendor: "GenuineIntel") == "Haswell")
    }

    @Test func olderCPUsAreLeftToOpenBLAS() {
        #expect(OpenBLASCoreType.choose(features: Self.sse, vendor: "GenuineIntel", family: 6, model: 0x17) == nil)  // Penryn
        #expect(OpenBLASCoreType.choose(features: Self.avx, vendor: "GenuineIntel", family: 6, model: 0x2A) == nil)  // Sandy Bridge
        #expect(OpenBLASCoreType.choose(features: Self.avx.union(.avx2), vendor: "CentaurHauls") == nil)  // AVX2 without FMA
        #expect(OpenBLASCoreType.choose(features: [], vendor: "") == nil)
    }

    @Test func fallbackNames() {
        for name in ["Prescott", "PRESCOTT", "Core2", "Katmai", "Northwood", "Penryn", "Dunnington", "Nehalem", "Atom", "generic"] {
            #expect(OpenBLASCoreType.isPreAVX2(name), "\(name)")
        }
        for name in ["Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"] { #expect(!OpenBLASCoreType.isPreAVX2(name), "\(name)") }
    }

    @Test func featuresRoundTripThroughJSON() throws {
        let features = Self.avx512.union([.avx512BF16, .amxTile])
        let decoded = try JSONDecoder().decode(CPUFeatures.self, from: JSONEncoder().encode(features))
        #expect(decoded == features)
        #expect(features.names.contains("avx512_bf16") && features.names.contains("amx_tile"))
    }

    /// On this machine: the kernel set in use is never a pre-AVX2 fallback when the CPU has AVX2+FMA, and it is
    /// the one the chooser names (unless the user set OPENBLAS_CORETYPE, which is respected and reported).
    @Test func thisCPUNeverRunsAFallbackWithAVX2() throws {
        let cpu = CPUInfo.current
        let kernel = try GEMMKernel.current()
        #expect(kernel.implementation == "OpenBLAS" && kernel.library.contains("openblas"), "\(kernel.library)")
        #expect(!kernel.coreName.isEmpty && kernel.config.contains("OpenBLAS"))
        if let user = ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] {
            #expect(kernel.choice == .userEnvironment && kernel.requested == user)
            return
        }
        // The variable was set only for OpenBLAS's initialisation: the environment is as the user left it.
        #expect(getenv("OPENBLAS_CORETYPE") == nil)
        #expect(kernel.choice != .preloaded, "OpenBLAS was loaded before qlora chose its kernels")
        guard cpu.features.isSuperset(of: [.avx, .avx2, .fma]) else { return }
        #expect(!OpenBLASCoreType.isPreAVX2(kernel.coreName), "\(kernel.coreName) on \(cpu.description)")
        #expect(!kernel.isFallbackOnThisCPU)
        let expected = OpenBLASCoreType.choose(features: cpu.features, vendor: cpu.vendor, family: cpu.family, model: cpu.model)
        #expect(kernel.choice == .cpuid && kernel.requested == expected)
        #expect(kernel.coreName.lowercased() == expected?.lowercased())
        #expect(kernel.summary.contains("\(kernel.coreName) kernels: chosen by qlora from cpuid"))
    }

    @Test func configureComesTooLateOnceLoaded() throws {
        let before = try GEMMKernel.current()
        #expect(GEMMKernel.configure(.named("Prescott")) == false)
        let after = try GEMMKernel.current()
        #expect(after.coreName == before.coreName && after.choice == before.choice)
    }
}
