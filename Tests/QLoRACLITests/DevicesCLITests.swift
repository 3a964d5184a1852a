import Foundation
import Testing

/// `qlora devices`: the CPU, its GEMM kernel set and who chose it, with and without a user's OPENBLAS_CORETYPE.
@Suite struct DevicesCLITests {
    /// Runs the binary with `OPENBLAS_CORETYPE` set to `coreType` (or removed) and parses its JSON.
    private func devices(coreType: String?) throws -> (status: Int32, cpu: [String: Any]) {
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = ["devices", "--json"]
        process.currentDirectoryURL = CLI.root
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_CORETYPE"] = coreType
        process.environment = env
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let list = object?["devices"] as? [[String: Any]] ?? []
        return (process.terminationStatus, list.first { $0["kind"] as? String == "cpu" } ?? [:])
    }

    @Test func reportsTheKernelAndHonoursTheUsersCoreType() throws {
        let auto = try devices(coreType: nil)
        #expect(auto.status == 0)
        let gemm = try #require(auto.cpu["gemm"] as? [String: Any])
        let features = auto.cpu["cpu"].flatMap { ($0 as? [String: Any])?["features"] as? [String] } ?? []
        #expect(gemm["implementation"] as? String == "OpenBLAS")
        if features.contains("avx2") && features.contains("fma") {
            #expect(gemm["choice"] as? String == "cpuid")
            #expect(!["Prescott", "Core2", "Nehalem", "Sandybridge"].contains(gemm["core_name"] as? String ?? "?"))
        }

        let user = try devices(coreType: "Prescott")
        #expect(user.status == 0)
        let userGemm = try #require(user.cpu["gemm"] as? [String: Any])
        #expect(userGemm["choice"] as? String == "user-environment")
        #expect(userGemm["requested"] as? String == "Prescott")
        #expect(userGemm["core_name"] as? String == "Prescott")

        let text = try CLI.run(["devices"])
        #expect(text.status == 0)
        #expect(text.stdout.contains("cpu 0: ") && text.stdout.contains("  GEMM: OpenBLAS "))
        #expect(text.stdout.contains("backends: cpu (") && text.stdout.contains(", reference ("), "\(text.stdout)")
        // CI has no GPU: `auto` says why it runs on the CPU, and the CUDA lines say what was looked for.
        #expect(text.stdout.contains("\nCUDA driver: ") && text.stdout.contains("\nNVRTC: ") && text.stdout.contains("\ncuBLASLt: "),
                "\(text.stdout)")
        if text.stdout.contains("CUDA driver: none (") {
            #expect(text.stdout.contains("auto: cpu (no CUDA GPU: "), "\(text.stdout)")
        }
    }

    @Test func benchOpsChecksEveryOpAndCUDARefusesWithoutAGPU() throws {
        let ops = try CLI.run(["bench", "ops", "--backend", "cpu", "--against", "reference"])
        #expect(ops.status == 0, "\(ops.stdout)\(ops.stderr)")
        #expect(ops.stdout.contains("adamW ") && ops.stdout.contains("all 39 checks passed"), "\(ops.stdout)")
        let cuda = try CLI.run(["bench", "ops", "--backend", "cuda"])
        if cuda.stderr.contains("no usable GPU") {
            #expect(cuda.status != 0)
            #expect(cuda.stderr.contains("backend cuda: no usable GPU: "), "\(cuda.stderr)")
        }
    }
}
