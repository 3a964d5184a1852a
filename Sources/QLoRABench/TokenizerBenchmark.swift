import Foundation
import QLoRAFormats
import QLoRATokenizer

/// `qlora bench tokenizer`: Tokens/s on a text corpus (one input per line) for us and for HF tokenizers, 1 thread and all threads, with an id-by-id comparison. The command (Sources/qlora/) sets the options and calls `run`.
public struct TokenizerBenchmark: Sendable {
    public var tokenizer: String = "assets/smollm2/tokenizer.json"
    public var corpus: String = ".cache/tokenizer-corpus.txt"
    public var python: String = ".venv-ref/bin/python"
    public var noPeer: Bool = false

    public init() {}

    public func run() throws {
        let tok = try Tokenizer.load(path: tokenizer)
        guard let text = try? String(contentsOfFile: corpus, encoding: .utf8) else {
            throw BenchFailure("cannot read the corpus \(corpus) (make it with scripts/reference/make_tokenizer_corpus.py)")
        }
        var lines = text.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        let bytes = text.utf8.count

        var t0 = Date()
        var single: [[Int]] = []
        single.reserveCapacity(lines.count)
        for line in lines { single.append(tok.encode(line, addSpecialTokens: false)) }
        let oneThread = Date().timeIntervalSince(t0)
        t0 = Date()
        let batch = tok.encodeBatch(lines, addSpecialTokens: false)
        let allThreads = Date().timeIntervalSince(t0)
        precondition(batch == single, "batch and single-thread encodings differ")
        let tokens = single.reduce(0) { $0 + $1.count }
        print(String(format: "corpus %@: %d lines, %.1f MB, %d tokens", corpus, lines.count, Double(bytes) / 1e6, tokens))
        print(row("qlora, 1 thread", tokens, oneThread))
        print(row("qlora, \(ProcessInfo.processInfo.activeProcessorCount) threads (encodeBatch)", tokens, allThreads))
        guard !noPeer else { return }

        let out = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("peer-ids-\(UUID().uuidString).jsonl")
        defer { try? FileManager.default.removeItem(at: out) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["scripts/reference/tokenizer_peer.py", tokenizerJSONForPeer(), corpus, out.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        do { try process.run() } catch {
            print("peer: cannot run \(python) (\(error)); set up .venv-ref with scripts/reference/setup_venv.sh")
            return
        }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0,
              let report = try? JSONSerialization.jsonObject(with: output.split(separator: 0x0A).last.map { Data($0) } ?? Data()) as? [String: Any],
              let s1 = report["seconds_1thread"] as? Double, let sN = report["seconds_all_threads"] as? Double else {
            print("peer: failed (exit \(process.terminationStatus)): \(String(decoding: output, as: UTF8.self))")
            return
        }
        print(row("HF tokenizers, 1 thread", tokens, s1))
        print(row("HF tokenizers, all threads (encode_batch)", tokens, sN))
        print(String(format: "speed vs HF: %.2fx (1 thread), %.2fx (all threads)", s1 / oneThread, sN / allThreads))
        // Id-by-id comparison.
        let peerLines = (try String(contentsOf: out, encoding: .utf8)).split(separator: "\n", omittingEmptySubsequences: false)
        var mismatches = 0
        var firstMismatch: Int?
        for (i, ours) in single.enumerated() {
            let theirs = i < peerLines.count ? String(peerLines[i]) : ""
            if "[" + ours.map(String.init).joined(separator: ", ") + "]" != theirs
                && "[" + ours.map(String.init).joined(separator: ",") + "]" != theirs {
                mismatches += 1
                if firstMismatch == nil { firstMismatch = i }
            }
        }
        print("id equality with HF: \(lines.count - mismatches)/\(lines.count) lines identical"
              + (firstMismatch.map { "; first mismatch at line \($0 + 1): \(lines[$0].prefix(80).debugDescription)" } ?? ""))
        if mismatches > 0 { throw BenchFailure("\(mismatches) lines tokenize differently from Hugging Face") }
    }

    /// The peer needs a tokenizer.json; for a directory use the file inside.
    private func tokenizerJSONForPeer() -> String {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: tokenizer, isDirectory: &isDirectory), isDirectory.boolValue {
            return URL(fileURLWithPath: tokenizer).appendingPathComponent("tokenizer.json").path
        }
        return tokenizer
    }

    private func row(_ name: String, _ tokens: Int, _ seconds: Double) -> String {
        name.padding(toLength: 44, withPad: " ", startingAt: 0)
            + String(format: "%8.3f s  %12.0f tokens/s", seconds, Double(tokens) / seconds)
    }
}
