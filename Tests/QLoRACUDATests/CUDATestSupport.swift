import Foundation
import QLoRACUDA

/// NVRTC for the tests: `scripts/fetch_cuda_toolchain.py` puts it in .cache/cuda/lib (`make test` runs it), or
/// wherever `CUDALibrarySearch` finds one. With QLORA_REQUIRE_NVRTC=1 (CI) a missing NVRTC fails the compile tests
/// instead of skipping them.
enum TestNVRTC {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static let search: CUDALibrarySearch = {
        var s = CUDALibrarySearch.standard()
        s.folders.insert(repositoryRoot.appendingPathComponent(".cache/cuda/lib").path, at: 0)
        return s
    }()

    static let library: Result<NVRTCLibrary, Error> = Result { try NVRTCLibrary.open(search) }

    static var required: Bool { ProcessInfo.processInfo.environment["QLORA_REQUIRE_NVRTC"] == "1" }

    /// Whether the compile tests run: NVRTC is there, or it is required (then they fail saying it is missing).
    static var runs: Bool { required || (try? library.get()) != nil }

    static func compiler(cache: URL? = nil) throws -> NVRTCCompiler {
        NVRTCCompiler(nvrtc: try library.get(), cacheDirectory: cache)
    }

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("qlora-cuda-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }
}
