import Foundation
import QLoRACUDA
import Testing

/// Every CUDA kernel compiles with NVRTC for the GPUs users fine-tune on (sm_80: A100, sm_90: H100), without a GPU:
/// ptxas reports every kernel and no spills; the exact families' PTX has no fused multiply-add; a broken kernel fails
/// with NVRTC's log; the on-disk cache returns the same image and misses when anything in the key changes.
@Suite(.enabled(if: TestNVRTC.runs, "NVRTC not found (python3 scripts/fetch_cuda_toolchain.py); QLORA_REQUIRE_NVRTC=1 makes this fail"))
struct KernelCompileTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let family: CUDAKernelFamily
        let arch: String
        var testDescription: String { "\(family.rawValue) \(arch)" }
    }

    static let cases = CUDAKernelFamily.allCases.flatMap { f in ["sm_80", "sm_90"].map { Case(family: f, arch: $0) } }

    @Test(arguments: cases)
    func compilesToCUBINWithEveryKernelAndNoSpills(_ c: Case) throws {
        let compiled = try TestNVRTC.compiler().compile(c.family, architecture: c.arch, verbose: true)
        #expect(compiled.image.count > 1000)
        #expect(Array(compiled.image.prefix(4)) == [0x7F, 0x45, 0x4C, 0x46], "a CUBIN is an ELF file")
        let usage = compiled.resourceUsage
        #expect(Set(usage.map(\.kernel)) == Set(c.family.kernelNames), "ptxas report:\n\(compiled.log)")
        #expect(!c.family.kernelNames.isEmpty)
        for u in usage {
            #expect(u.spillStoreBytes == 0 && u.spillLoadBytes == 0, "\(u.kernel) spills: \(u)")
            #expect(u.registers > 0 && u.registers <= 128, "\(u.kernel): \(u.registers) registers")
        }
    }

    @Test(arguments: CUDAKernelFamily.allCases.filter(\.isExact), ["compute_80", "compute_90"])
    func exactFamiliesHaveNoFusedMultiplyAdd(_ family: CUDAKernelFamily, _ arch: String) throws {
        let ptx = try #require(try TestNVRTC.compiler().compile(family, architecture: arch).ptx)
        #expect(ptx.contains(".entry"))
        let fused = ptx.split(separator: "\n").filter { $0.contains("fma.") }
        #expect(fused.isEmpty, "fma in \(family.rawValue): \(fused.prefix(3))")
    }

    @Test func theFMACheckCanFail() throws {
        // The same check on a family compiled with contraction allowed finds fused multiply-adds, so the check above
        // is not vacuous.
        let ptx = try #require(try TestNVRTC.compiler().compile(.attention, architecture: "compute_90").ptx)
        #expect(ptx.contains("fma."))
    }

    @Test func aBrokenKernelFailsWithTheNVRTCLog() throws {
        let url = TestNVRTC.repositoryRoot.appendingPathComponent("Tests/QLoRACUDATests/Fixtures/broken.cu")
        let source = try String(contentsOf: url, encoding: .utf8)
        let error = try #require(throws: CUDAError.self) {
            try TestNVRTC.compiler().compile(source: source, name: "broken.cu", architecture: "sm_90", options: ["--std=c++17"])
        }
        #expect(error.description.contains("broken.cu"))
        #expect(error.description.contains("not_declared_anywhere"))
        #expect(error.description.contains("NVRTC_ERROR_COMPILATION"))
    }

    @Test func theCacheReturnsTheSameImageAndMissesOnAnyChange() throws {
        let dir = try TestNVRTC.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let compiler = try TestNVRTC.compiler(cache: dir)
        let first = try compiler.compile(.optimizer, architecture: "sm_90")
        let second = try compiler.compile(.optimizer, architecture: "sm_90")
        #expect(!first.cached && second.cached)
        #expect(first.image == second.image)
        #expect(try !compiler.compile(.optimizer, architecture: "sm_80").cached)
        #expect(try !compiler.compile(.optimizer, architecture: "sm_90", verbose: true).cached)
        let edited = CUDAKernelFamily.optimizer.source + "\n// edited\n"
        #expect(try !compiler.compile(source: edited, name: "optimizer.cu", architecture: "sm_90",
                                      options: CUDAKernelFamily.optimizer.options).cached)
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(!files.contains { $0.hasSuffix(".tmp") })
    }

    @Test func nvrtcIsTheWheelsCUDA13() throws {
        let nvrtc = try TestNVRTC.library.get()
        #expect(nvrtc.version.major >= 12)
    }
}

/// ptxas's `-v` report parsing, on a captured log (no NVRTC needed).
@Suite struct KernelResourceUsageTests {
    @Test func parsesRegistersAndSpillsPerKernel() {
        let log = """
            ptxas info    : 0 bytes gmem
            ptxas info    : Compiling entry function 'ql_a' for 'sm_90'
            ptxas info    : Function properties for ql_a
                0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
            ptxas info    : Used 18 registers, used 0 barriers, 388 bytes cmem[0]
            ptxas info    : Compiling entry function 'ql_b' for 'sm_90'
            ptxas info    : Function properties for ql_b
                16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads
            ptxas info    : Used 255 registers
            """
        #expect(KernelResourceUsage.parse(log) == [
            KernelResourceUsage(kernel: "ql_a", registers: 18, spillStoreBytes: 0, spillLoadBytes: 0),
            KernelResourceUsage(kernel: "ql_b", registers: 255, spillStoreBytes: 8, spillLoadBytes: 12),
        ])
    }

    @Test func everyFamilyDeclaresItsKernels() {
        #expect(CUDAKernelFamily.quant.kernelNames == ["ql_dequant4_f32", "ql_dequant4_bf16", "ql_gemv4_f32"])
        #expect(CUDAKernelFamily.allCases.allSatisfy { !$0.kernelNames.isEmpty })
    }
}
