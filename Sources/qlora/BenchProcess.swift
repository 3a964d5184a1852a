import Foundation

/// A benchmark's child process or peer that failed, with what it printed.
struct BenchFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `process` and parses the last line of its stdout as a JSON object (how every bench child and peer script
/// reports). `quiet` drops its stderr; otherwise it goes to ours (a peer's progress and warnings).
func runForJSON(_ process: Process, what: String, quiet: Bool = true) throws -> [String: Any] {
    let pipe = Pipe()
    process.standardOutput = pipe
    if quiet { process.standardError = FileHandle.nullDevice }
    do { try process.run() } catch { throw BenchFailure("\(what): cannot run \(process.executableURL?.path ?? "?"): \(error)") }
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0, let line = output.split(separator: 0x0A).last,
          let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else {
        throw BenchFailure("\(what) failed (exit \(process.terminationStatus)): \(String(decoding: output, as: UTF8.self))")
    }
    return object
}
