import Foundation
import QLoRABackends
import QLoRACUDA
import Testing

/// Finding CUDA: on a machine without a driver (CI), `auto` runs on the CPU and says why, and `cuda` fails with a
/// clear message naming what is missing; on a machine with one, the probe lists its GPUs.
@Suite struct CUDAAvailabilityTests {
    @Test func autoSaysWhyItRunsOnTheCPUAndCUDARefusesClearly() throws {
        let probe = CUDAProbe.run(libraries: false)
        let auto = try Backends.make(.auto, threads: 1)
        #expect(auto.name == "cpu")
        let error = try #require(throws: BackendUnavailable.self) { try Backends.make(.cuda) }
        if let why = probe.whyNoGPU {
            #expect(auto.reason == "no CUDA GPU: \(why)")
            #expect(error.description.hasPrefix("backend cuda: no usable GPU: "))
            #expect(why.contains("libcuda.so.1") || why.contains("no GPU") || why.contains("cuInit"))
        } else {
            #expect(!probe.devices.isEmpty)
            #expect(error.description.contains(probe.devices[0].name))
        }
    }

    @Test func aMissingDriverIsReportedWithWhatWasTried() {
        let search = CUDALibrarySearch(folders: ["/nonexistent"], driverCandidates: ["/nonexistent/libcuda.so.1"])
        let probe = CUDAProbe.run(search)
        #expect(!probe.hasGPU)
        #expect(probe.driver.problem?.contains("/nonexistent/libcuda.so.1") == true)
        #expect(probe.report.first?.hasPrefix("CUDA driver: none (no CUDA driver: /nonexistent/libcuda.so.1") == true)
    }

    @Test func nvrtcIsFoundInAWheelFolderWithItsBuiltins() throws {
        guard (try? TestNVRTC.library.get()) != nil else { return }
        let folder = TestNVRTC.repositoryRoot.appendingPathComponent(".cache/cuda/lib").path
        guard FileManager.default.fileExists(atPath: folder + "/libnvrtc.so.13") else { return }
        let probe = CUDAProbe.run(CUDALibrarySearch(folders: [folder], driverCandidates: []))
        #expect(probe.nvrtc.path == folder + "/libnvrtc.so.13")
        #expect(probe.nvrtc.version?.hasPrefix("13.") == true)
        #expect(probe.cublasLt.problem?.contains("cuBLASLt not found") == true)
    }

    @Test func searchFoldersFollowTheEnvironment() {
        let s = CUDALibrarySearch.standard(environment: ["QLORA_CUDA_LIBRARY_PATH": "/a:/b", "VIRTUAL_ENV": "/nonexistent-venv"])
        #expect(Array(s.folders.prefix(2)) == ["/a", "/b"])
        #expect(s.folders.contains("/usr/local/cuda/lib64"))
    }
}
