import CZlib
import Foundation
import Testing
@testable import QLoRAFormats
@testable import QLoRAPipeline

/// Runs a spec with only a dataset section and returns the ingest directory.
private func ingest(_ files: [(String, DatasetFormat)], in dir: URL, extra: String = "") throws -> (URL, Pipeline.Result) {
    var yaml = "name: t\nrun_dir: run\ndataset:\n  files:\n"
    for (path, format) in files { yaml += "    - {path: \(path), format: \(format.rawValue)}\n" }
    yaml += extra
    let spec = try loadSpec(yaml, in: dir)
    let result = try Pipeline.run(spec: spec)
    return (dir.appendingPathComponent("run/ingest"), result)
}

private func stats(_ ingestDir: URL) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(contentsOf: ingestDir.appendingPathComponent("stats.json"))) as! [String: Any]
}

@Suite struct IngestTests {
    @Test func badRowsAreRejectedWithFileLineAndExactCounts() throws {
        try withTemporaryDirectory { dir in
            var bytes = Array(#"{"instruction":"a","output":"b"}"#.utf8) + [10]
            bytes += Array(#"{"instruction":""#.utf8) + [0xFF, 0xFE] + Array(#"","output":"b"}"#.utf8) + [10]
            bytes += Array(#"{"instruction":5,"output":"b"}"#.utf8) + [10]
            bytes += [10]
            bytes += Array(#"{"instruction":"c","output":"d"}"#.utf8) + [10]
            bytes += Array(#"{"instruction":"e","outp"#.utf8)
            try writeBytes(bytes, to: dir.appendingPathComponent("bad.jsonl"))
            let (out, result) = try ingest([("bad.jsonl", .alpaca)], in: dir, extra: "  max_rejected_fraction: 0.9\n")
            #expect(result.succeeded)
            let rejected = try readLines(out.appendingPathComponent("rejected.jsonl")).map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
            #expect(rejected.map { $0["line"] as! Int } == [2, 3, 6])
            #expect(rejected.map { $0["reason"] as! String } == ["invalid_utf8", "wrong_type", "truncated_line"])
            #expect(rejected.allSatisfy { $0["file"] as? String == "bad.jsonl" })
            #expect(rejected[0]["detail"] as? String == "invalid UTF-8 at column 17")
            let s = try stats(out)
            #expect(s["rows"] as? Int == 5)
            #expect(s["accepted"] as? Int == 2)
            #expect(s["rejected"] as? Int == 3)
            #expect(s["blank_lines"] as? Int == 1)
            #expect(s["rejected_by_reason"] as? [String: Int] == ["invalid_utf8": 1, "wrong_type": 1, "truncated_line": 1])
        }
    }

    @Test func tooManyRejectionsFailTheStageAndKeepTheEvidence() throws {
        try withTemporaryDirectory { dir in
            try write("{\"text\":\"ok\"}\n{\"text\":3}\n", to: dir.appendingPathComponent("d.jsonl"))
            let (out, result) = try ingest([("d.jsonl", .text)], in: dir)
            #expect(!result.succeeded)
            #expect(result.failure?.contains("rejected 1 of 2 rows (50.00%), more than max_rejected_fraction 0.01") == true)
            #expect(result.failure?.contains("d.jsonl:2 wrong_type") == true)
            #expect(!FileManager.default.fileExists(atPath: out.path))
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("run/ingest.rejected.jsonl").path))
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("run").path)
            #expect(!leftovers.contains { $0.contains(".tmp") })
        }
    }

    @Test func everyFormatNormalizesToTheExampleSchema() throws {
        try withTemporaryDirectory { dir in
            try write(#"{"messages":[{"role":"system","content":"S"},{"role":"user","content":"U"},{"role":"assistant","content":"A"}]}"# + "\n",
                      to: dir.appendingPathComponent("chat.jsonl"))
            try write(#"[{"q":"I","input":"X","output":"O"},"# + "\n" + #" {"q":"J","output":"P"}]"#, to: dir.appendingPathComponent("alp.json"))
            try write("prompt,completion\r\n\"a, \"\"quoted\"\"\",\"multi\nline\"\r\n", to: dir.appendingPathComponent("c.csv"))
            try write(####"{"text":"### Human: hi### Assistant: hello ### Human: more?### Assistant: yes"}"#### + "\n", to: dir.appendingPathComponent("g.jsonl"))
            try write(#"{"text":"plain"}"# + "\n", to: dir.appendingPathComponent("t.jsonl"))
            var yaml = "name: t\nrun_dir: run\ndataset:\n  eval_fraction: 0\n  files:\n"
            yaml += "    - {path: chat.jsonl, format: chat}\n"
            yaml += "    - {path: alp.json, format: alpaca, field_map: {instruction: q}}\n"
            yaml += "    - {path: c.csv, format: completion}\n"
            yaml += "    - {path: g.jsonl, format: guanaco}\n"
            yaml += "    - {path: t.jsonl, format: text}\n"
            let result = try Pipeline.run(spec: try loadSpec(yaml, in: dir))
            #expect(result.succeeded, "\(result.failure ?? "")")
            let lines = try readLines(dir.appendingPathComponent("run/ingest/train.jsonl"))
            let examples = try lines.map { try Example(json: JSONParser.parse($0)) }
            #expect(examples.map(\.source) == ["chat.jsonl:1", "alp.json:1", "alp.json:2", "c.csv:2", "g.jsonl:1", "t.jsonl:1"])
            #expect(examples[0].content == .messages([.init(role: .system, content: "S"), .init(role: .user, content: "U"),
                                                      .init(role: .assistant, content: "A")]))
            #expect(examples[1].content == .messages([.init(role: .user, content: "I\n\nX"), .init(role: .assistant, content: "O")]))
            #expect(examples[2].content == .messages([.init(role: .user, content: "J"), .init(role: .assistant, content: "P")]))
            #expect(examples[3].content == .completion(prompt: "a, \"quoted\"", completion: "multi\nline"))
            #expect(examples[4].content == .messages([.init(role: .user, content: "hi"), .init(role: .assistant, content: "hello"),
                                                      .init(role: .user, content: "more?"), .init(role: .assistant, content: "yes")]))
            #expect(examples[5].content == .text("plain"))
            #expect(examples[1].format == "alpaca")
            // The line layout is fixed: id, source, format, then the content members.
            #expect(lines[5].hasPrefix(#"{"id":""#) && lines[5].hasSuffix(#"","source":"t.jsonl:1","format":"text","text":"plain"}"#))
        }
    }

    @Test func gzipInputsReadLikePlainOnes() throws {
        try withTemporaryDirectory { dir in
            let text = (0..<50).map { "{\"text\":\"row \($0)\"}\n" }.joined()
            try write(text, to: dir.appendingPathComponent("a.jsonl"))
            try gzip(text, to: dir.appendingPathComponent("b.jsonl.gz").path)
            let (plainDir, _) = try ingest([("a.jsonl", .text)], in: dir.appendingPathComponent("p").creatingDirectory(with: dir.appendingPathComponent("a.jsonl")))
            let (gzDir, result) = try ingest([("b.jsonl.gz", .text)], in: dir)
            #expect(result.succeeded)
            #expect(try stats(gzDir)["accepted"] as? Int == 50)
            // Same examples, same ids and split, whatever the container (sources differ by file name).
            let ids = { (d: URL) in try readLines(d.appendingPathComponent("train.jsonl")).map { String($0.prefix(40)) } }
            #expect(try ids(gzDir) == ids(plainDir))
        }
    }

    /// A gzip'd file reports progress against its size on disk, with a total and so a rate and an ETA (it had none:
    /// a 2 MB gzip of gigabytes of blank lines churned for minutes with no bar), and reaches it.
    @Test func gzipProgressHasATotalAndReachesIt() throws {
        try withTemporaryDirectory { dir in
            let path = dir.appendingPathComponent("nl.jsonl.gz").path
            try gzip(String(repeating: "\n", count: 8 << 20) + "{\"text\":\"a\"}\n", to: path)
            let size = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64)
            let spec = try loadSpec("name: t\nrun_dir: run\ndataset:\n  files:\n    - {path: nl.jsonl.gz, format: text}\n  eval_fraction: 0\n", in: dir)
            let log = EventLog()
            let result = try Pipeline.run(spec: spec, observer: log.append)
            #expect(result.succeeded)
            let reading = log.all.compactMap { event -> ProgressSnapshot? in
                if case .progress(let s) = event, s.label.hasPrefix("reading") { return s }
                return nil
            }
            #expect(reading.first?.total == size)
            #expect(reading.last?.finished == true && reading.last?.completed == size)
            #expect(try stats(dir.appendingPathComponent("run/ingest"))["accepted"] as? Int == 1)
        }
    }

    @Test func duplicatesAreRemovedAcrossFilesAndCounted() throws {
        try withTemporaryDirectory { dir in
            try write("{\"text\":\"a\"}\n{\"text\":\"b\"}\n{\"text\":\"a\"}\n", to: dir.appendingPathComponent("1.jsonl"))
            try write("text\nb\nc\n", to: dir.appendingPathComponent("2.csv"))
            let (out, _) = try ingest([("1.jsonl", .text), ("2.csv", .text)], in: dir)
            let s = try stats(out)
            #expect(s["duplicates"] as? Int == 2)
            #expect(s["unique"] as? Int == 3)
            let files = s["files"] as! [[String: Any]]
            #expect(files.map { $0["duplicates"] as! Int } == [1, 1])
            #expect((s["train"] as! Int) + (s["eval"] as! Int) == 3)
        }
    }

    @Test func splitIsStableWhenRowsAreReorderedOrAppended() throws {
        try withTemporaryDirectory { dir in
            let rows = (0..<400).map { "{\"text\":\"example number \($0)\"}\n" }
            try write(rows.joined(), to: dir.appendingPathComponent("a.jsonl"))
            try write(rows.reversed().joined() + "{\"text\":\"new one\"}\n{\"text\":\"another\"}\n",
                      to: dir.appendingPathComponent("b.jsonl"))
            func evalIDs(_ file: String, _ sub: String) throws -> Set<String> {
                let d = dir.appendingPathComponent(sub).creatingDirectory()
                try FileManager.default.copyItem(at: dir.appendingPathComponent(file), to: d.appendingPathComponent(file))
                let (out, _) = try ingest([(file, .text)], in: d, extra: "  eval_fraction: 0.2\n")
                return Set(try readLines(out.appendingPathComponent("eval.jsonl")).map { String($0.dropFirst(7).prefix(32)) })
            }
            let a = try evalIDs("a.jsonl", "ra"), b = try evalIDs("b.jsonl", "rb")
            #expect(a.count > 50 && a.count < 110)
            #expect(a.isSubset(of: b))
            #expect(b.count - a.count <= 2)
        }
    }

    @Test func evalSizeSelectsExactlyThatManyAndIsStable() throws {
        try withTemporaryDirectory { dir in
            try write((0..<100).map { "{\"text\":\"r\($0)\"}\n" }.joined(), to: dir.appendingPathComponent("a.jsonl"))
            let (out, _) = try ingest([("a.jsonl", .text)], in: dir, extra: "  eval_size: 7\n")
            #expect(try readLines(out.appendingPathComponent("eval.jsonl")).count == 7)
            #expect(try readLines(out.appendingPathComponent("train.jsonl")).count == 93)
            #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("all.jsonl.part").path))
            let s = try stats(out)
            #expect(s["eval"] as? Int == 7)
        }
    }

    @Test func lengthStatisticsAreExact() throws {
        try withTemporaryDirectory { dir in
            // Lengths 1...20 (in Unicode scalars: "é" counts 1, "🙂" counts 1).
            let rows = (1...20).map { n in "{\"text\":\"\(String(repeating: n % 2 == 0 ? "é" : "🙂", count: n))\"}\n" }
            try write(rows.joined(), to: dir.appendingPathComponent("a.jsonl"))
            let (out, _) = try ingest([("a.jsonl", .text)], in: dir)
            let lengths = try stats(out)["length_chars"] as! [String: Any]
            #expect(lengths["min"] as? Int == 1)
            #expect(lengths["median"] as? Int == 10)
            #expect(lengths["p95"] as? Int == 19)
            #expect(lengths["max"] as? Int == 20)
            #expect(lengths["mean"] as? Double == 10.5)
        }
    }

    @Test func csvRowsWithInvalidUTF8OrNULBytesAreRejectedLikeJSONLRows() throws {
        try withTemporaryDirectory { dir in
            var bytes = Array("text\ngood\n".utf8)
            bytes += Array("bad ".utf8) + [0xFF] + Array("\n".utf8)                       // line 3: invalid UTF-8
            bytes += Array("\"multi\nline\"\n".utf8)                                       // lines 4-5: fine
            bytes += Array("nul ".utf8) + [0x00] + Array(" byte\n".utf8)                   // line 6: NUL byte
            bytes += Array("also good\n".utf8)
            try writeBytes(bytes, to: dir.appendingPathComponent("c.csv"))
            let (out, result) = try ingest([("c.csv", .text)], in: dir, extra: "  max_rejected_fraction: 1\n")
            #expect(result.failure == nil)
            let rejected = try readLines(out.appendingPathComponent("rejected.jsonl")).map {
                try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
            }
            #expect(rejected.map { $0["line"] as! Int } == [3, 6])
            #expect(rejected.map { $0["reason"] as! String } == ["invalid_utf8", "nul_byte"])
            #expect(rejected.allSatisfy { $0["file"] as? String == "c.csv" })
            let s = try stats(out)
            #expect(s["rejected_by_reason"] as? [String: Int] == ["invalid_utf8": 1, "nul_byte": 1])
            #expect(s["rejected"] as? Int == 2)
            // A bad header is still a failure of the file (it names the columns).
            try writeBytes([0xFF] + Array("text\na\n".utf8), to: dir.appendingPathComponent("h.csv"))
            let (_, header) = try ingest([("h.csv", .text)], in: dir.appendingPathComponent("h").creatingDirectory(with: dir.appendingPathComponent("h.csv")))
            #expect(header.failure?.contains("h.csv:1") == true, "\(header.failure ?? "")")
        }
    }

    @Test func csvColumnCountMismatchIsRejectedAndMissingHeaderColumnFails() throws {
        try withTemporaryDirectory { dir in
            try write("prompt,completion\na,b\nonly-one\n", to: dir.appendingPathComponent("c.csv"))
            let (out, _) = try ingest([("c.csv", .completion)], in: dir, extra: "  max_rejected_fraction: 1\n")
            #expect(try stats(out)["rejected_by_reason"] as? [String: Int] == ["csv_column_count": 1])
            try write("question,answer\na,b\n", to: dir.appendingPathComponent("d.csv"))
            let (_, result) = try ingest([("d.csv", .completion)], in: dir.appendingPathComponent("e").creatingDirectory(with: dir.appendingPathComponent("d.csv")))
            #expect(result.failure?.contains("d.csv:1: the CSV header has no column `prompt`") == true)
        }
    }
}

extension URL {
    func creatingDirectory(with file: URL? = nil) -> URL {
        try? FileManager.default.createDirectory(at: self, withIntermediateDirectories: true)
        if let file { try? FileManager.default.copyItem(at: file, to: appendingPathComponent(file.lastPathComponent)) }
        return self
    }
}

/// A JSONL row longer than the per-row limit (64 MiB) is a rejected row, skipped as it streams past, not a failed stage
/// or gigabytes held for one line.
@Suite struct OverlongRowTests {
    /// The same 70 MB row (over the 64 MiB limit) in each row format: rejected as `row_too_long` at its line, the
    /// rows around it ingested (a CSV record and a JSON array element used to be held whole up to 256 MiB and 1 GiB,
    /// then fail the file).
    @Test(arguments: ["jsonl", "csv", "json"])
    func aHugeRowIsRejectedAndTheRestIngested(format: String) throws {
        try withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent("d.\(format)")
            _ = FileManager.default.createFile(atPath: url.path, contents: nil)
            let h = try FileHandle(forWritingTo: url)
            let (head, open, close, tail, end): (String, String, String, String, String) = switch format {
            case "csv": ("instruction,output\none,1\n", "\"", "\",huge\n", "three,3\n", "")
            case "json": ("[{\"instruction\": \"one\", \"output\": \"1\"},\n", "{\"instruction\": \"", "\", \"output\": \"huge\"},\n",
                          "{\"instruction\": \"three\", \"output\": \"3\"}", "]\n")
            default: ("{\"instruction\": \"one\", \"output\": \"1\"}\n", "{\"instruction\": \"", "\", \"output\": \"huge\"}\n",
                      "{\"instruction\": \"three\", \"output\": \"3\"}\n", "")
            }
            h.write(Data(head.utf8))
            h.write(Data(open.utf8))
            let chunk = Data(repeating: UInt8(ascii: "a"), count: 1 << 20)
            for _ in 0..<70 { h.write(chunk) }
            h.write(Data((close + tail + end).utf8))
            try h.close()
            let spec = try loadSpec("name: big\nrun_dir: run\ndataset:\n  files: [{path: d.\(format), format: alpaca}]\n  eval_fraction: 0\n  max_rejected_fraction: 0.5\n", in: dir)
            let result = try Pipeline.run(spec: spec)
            #expect(result.succeeded, "\(result.failure ?? "")")
            let rejected = try readLines(dir.appendingPathComponent("run/ingest/rejected.jsonl"))
            #expect(rejected.count == 1 && rejected[0].contains(#""reason":"row_too_long""#) && rejected[0].contains("\"line\":\(format == "csv" ? 3 : 2)"), "\(rejected)")
            #expect(try readLines(dir.appendingPathComponent("run/ingest/train.jsonl")).count == 2)
        }
    }
}
