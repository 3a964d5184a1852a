import Foundation
import QLoRAPipeline
import Testing

/// The fuzzing suite's corpora on every test run, without libFuzzer (docs/RELIABILITY.md): each seed in
/// `fuzz/corpus/<target>/` (written by scripts/make_fuzz_seeds.py) must read cleanly, so the fuzzer starts inside
/// each reader's happy path; each input in `fuzz/regressions/<target>/` once crashed, hung or blew up a reader and
/// must now only fail with an error (a crash here takes the test process down, which fails the run).
@Suite struct FuzzCorpusTests {
    static let fuzzRoot = repositoryRoot.appendingPathComponent("fuzz")

    static func files(_ kind: String, _ target: FuzzTarget) -> [URL] {
        let dir = fuzzRoot.appendingPathComponent(kind).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted().map { dir.appendingPathComponent($0) }
    }

    static func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-corpus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test(arguments: FuzzTarget.allCases)
    func seedsReadCleanly(_ target: FuzzTarget) throws {
        let seeds = Self.files("corpus", target)
        #expect(seeds.count >= 2, "fuzz/corpus/\(target.rawValue) needs seeds (scripts/make_fuzz_seeds.py)")
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        for seed in seeds {
            let bytes = try [UInt8](Data(contentsOf: seed))
            #expect(bytes.count <= target.maxLength, "\(seed.lastPathComponent) is longer than the target's max_len")
            #expect(throws: Never.self, "\(target.rawValue)/\(seed.lastPathComponent)") { try target.read(bytes, scratch: scratch) }
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func regressionsFailCleanly(_ target: FuzzTarget) throws {
        let scratch = try Self.scratch()
        defer { try? FileManager.default.removeItem(at: scratch) }
        for input in Self.files("regressions", target) {
            let start = Date()
            target.run(try [UInt8](Data(contentsOf: input)), scratch: scratch)
            #expect(Date().timeIntervalSince(start) < 10, "\(target.rawValue)/\(input.lastPathComponent) took too long")
        }
    }

    /// scripts/fuzz.sh runs every target, with the `-max_len` each declares (the script's table mirrors `maxLength`).
    @Test func theFuzzScriptKnowsEveryTargetAndItsMaxLength() throws {
        let script = try String(contentsOf: repositoryRoot.appendingPathComponent("scripts/fuzz.sh"), encoding: .utf8)
        let list = try #require(script.firstMatch(of: /TARGETS=\(([^)]*)\)/)).output.1
        #expect(Set(list.split(whereSeparator: \.isWhitespace).map(String.init)) == Set(FuzzTarget.allCases.map(\.rawValue)))
        let long = try #require(script.firstMatch(of: /\n\s*([a-z0-9|-]+)\) echo 65536/)).output.1.split(separator: "|").map(String.init)
        for target in FuzzTarget.allCases {
            #expect(target.maxLength == (long.contains(target.rawValue) ? 65536 : 16384), "\(target.rawValue)")
        }
    }

    /// Every target has a corpus folder and every corpus folder is a target (a renamed target leaves none behind).
    @Test func corpusFoldersMatchTheTargets() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: Self.fuzzRoot.appendingPathComponent("corpus").path)
        #expect(Set(names.filter { !$0.hasPrefix(".") }) == Set(FuzzTarget.allCases.map(\.rawValue)))
    }
}
