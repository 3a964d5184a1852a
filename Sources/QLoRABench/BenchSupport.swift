import Foundation
import QLoRABackends
import QLoRACPU
import QLoRACore
import QLoRAModel

// What every benchmark shares: how a child process or peer script reports, timing, the GEMM line, loading a model.

/// A benchmark that cannot run or whose child or peer failed, with what it printed.
public struct BenchFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs `process` and parses the last line of its stdout as a JSON object (how every bench child and peer script
/// reports). `quiet` keeps its stderr out of ours (in a temporary file, whose last lines a failure quotes: a
/// traceback, an out-of-memory message); otherwise it goes to ours (a peer's progress and warnings).
func runForJSON(_ process: Process, what: String, quiet: Bool = true) throws -> [String: Any] {
    let pipe = Pipe()
    process.standardOutput = pipe
    var errors: (url: URL, handle: FileHandle)?
    if quiet {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qlora-bench-\(getpid())-\(UUID().uuidString).stderr")
        if FileManager.default.createFile(atPath: url.path, contents: nil), let handle = try? FileHandle(forWritingTo: url) {
            errors = (url, handle)
            process.standardError = handle
        } else {
            process.standardError = FileHandle.nullDevice
        }
    }
    defer {
        if let errors {
            try? errors.handle.close()
            try? FileManager.default.removeItem(at: errors.url)
        }
    }
    do { try process.run() } catch { throw BenchFailure("\(what): cannot run \(process.executableURL?.path ?? "?"): \(error)") }
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0, let line = output.split(separator: 0x0A).last,
          let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
        var message = "\(what) failed (exit \(process.terminationStatus)): \(String(decoding: output, as: UTF8.self))"
        if let errors, let data = try? Data(contentsOf: errors.url), !data.isEmpty {
            let tail = String(decoding: data, as: UTF8.self).split(separator: "\n").suffix(15).joined(separator: "\n")
            message += "\nits stderr ended with:\n" + tail
        }
        throw BenchFailure(message)
    }
    return object
}

/// The median wall time of `repeats` runs of `body` after one warm-up run, in seconds.
func medianSeconds(repeats: Int, _ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    return times.sorted()[times.count / 2]
}

/// The line every bench prints near its header: the GEMM library and kernel set in use, and who chose it.
public func printGEMMKernelLine() {
    do { print("GEMM: " + (try GEMMKernel.current()).summary) } catch { print("GEMM: unavailable: \(error)") }
}

/// A model and its tokenizer on the chosen backend, its dense projections quantized in memory when `quantize` is set.
func loadBenchModel(_ path: String, backend choice: BackendChoice = .auto, threads: Int?, tokenizer: String? = nil,
                    quantize: FourBitOptions? = nil) throws -> LoadedModel {
    let backend = try Backends.make(choice, threads: threads).backend
    let loaded = try ModelLoader.load(path: path, tokenizer: tokenizer, backend: backend)
    return quantize.map { loaded.quantized($0) } ?? loaded
}
