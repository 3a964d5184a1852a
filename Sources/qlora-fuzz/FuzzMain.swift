// The fuzzing harness: one binary for every `FuzzTarget` (Sources/QLoRAPipeline/Fuzz/FuzzTarget.swift).
//
// Built by `make fuzz` with `-sanitize=fuzzer,address -DQLORA_LIBFUZZER`, it is a libFuzzer binary: the target comes
// from QLORA_FUZZ_TARGET (scripts/fuzz.sh sets it), the rest of the command line is libFuzzer's. Built plainly (as
// `swift build` does), it replays files instead: `qlora-fuzz TARGET FILE...` runs each file once through TARGET,
// which is how a crash libFuzzer found is reproduced under a debugger. docs/RELIABILITY.md has the details.
import Foundation
import QLoRAPipeline

/// The process's scratch directory (one per fuzzing process; libFuzzer runs inputs one at a time).
private func makeScratch() -> URL {
    let base = ProcessInfo.processInfo.environment["QLORA_FUZZ_SCRATCH"] ?? NSTemporaryDirectory()
    let url = URL(fileURLWithPath: base).appendingPathComponent("qlora-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

#if QLORA_LIBFUZZER
// SwiftPM links an executable with `--defsym main=qlora_fuzz_main` and libFuzzer brings a `main` of its own, so the
// entry point is defined here under that name and hands over to libFuzzer's driver (linked with lld: gold fails
// on the two mains). Swift traps are deadly signals to libFuzzer: it saves the input and exits.

/// libFuzzer's entry point for programs that have their own `main`.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

nonisolated(unsafe) private var selected: FuzzTarget?
nonisolated(unsafe) private var scratch = URL(fileURLWithPath: "/")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    selected?.run(bytes, scratch: scratch)
    return 0
}

@_cdecl("qlora_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    let name = ProcessInfo.processInfo.environment["QLORA_FUZZ_TARGET"] ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("QLORA_FUZZ_TARGET must be one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        return 2
    }
    selected = target
    scratch = makeScratch()
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments, fuzzerTestOneInput)
}
#else
@main
struct Replay {
    static func main() {
        let args = CommandLine.arguments.dropFirst()
        guard let name = args.first, let target = FuzzTarget(rawValue: name) else {
            print("usage: qlora-fuzz TARGET FILE...   (targets: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")))")
            print("Replays each FILE through TARGET; `make fuzz` builds the libFuzzer version (docs/RELIABILITY.md).")
            exit(2)
        }
        let scratch = makeScratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        for file in args.dropFirst() {
            guard let data = FileManager.default.contents(atPath: file) else { print("\(file): cannot read"); exit(1) }
            let start = Date()
            target.run(Array(data), scratch: scratch)
            print("\(file): ok (\(String(format: "%.3f", Date().timeIntervalSince(start))) s)")
        }
    }
}
#endif
