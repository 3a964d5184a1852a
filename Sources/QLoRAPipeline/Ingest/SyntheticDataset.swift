import Foundation
import QLoRACore
import QLoRAFormats

/// Deterministic synthetic alpaca-format JSONL for benchmarks and crash tests: varied lengths, mixed
/// scripts and escapes, and about 2% exact duplicates so dedupe has work. Same seed and size, same bytes.
public enum SyntheticDataset {
    public static func writeJSONL(to url: URL, bytes target: Int64, seed: UInt64 = 1) throws -> (rows: Int, bytes: Int64) {
        var rng = SeededGenerator(seed: seed)
        let words = ["the", "model", "learns", "from", "data", "quantized", "weights", "adapter", "gradient", "token",
                     "über", "naïve", "café", "日本語", "데이터", "بيانات", "🙂", "x=\"quoted\"", "tab\there", "line\nbreak",
                     "path/to/file", "\\backslash", "42", "3.14159", "résumé", "Ελληνικά", "русский", "emoji👍🏽"]
        let writer = try BufferedFileWriter(path: url.path)
        var rows = 0
        var total: Int64 = 0
        var previous: [UInt8] = []
        var line: [UInt8] = []
        func sentence(_ n: Int) -> String {
            var parts: [String] = []
            for _ in 0..<n { parts.append(words[Int(rng.next() % UInt64(words.count))]) }
            return parts.joined(separator: " ")
        }
        while total < target {
            if !previous.isEmpty && rng.next() % 50 == 0 {
                try writer.write(previous)
                total += Int64(previous.count)
            } else {
                line.removeAll(keepingCapacity: true)
                line.append(contentsOf: Array(#"{"instruction":"#.utf8))
                JSONWriter.writeString(sentence(5 + Int(rng.next() % 30)), into: &line)
                line.append(contentsOf: Array(#","input":"#.utf8))
                JSONWriter.writeString(rng.next() % 3 == 0 ? sentence(Int(rng.next() % 40)) : "", into: &line)
                line.append(contentsOf: Array(#","output":"#.utf8))
                JSONWriter.writeString(sentence(10 + Int(rng.next() % 200)), into: &line)
                line.append(contentsOf: Array("}\n".utf8))
                try writer.write(line)
                total += Int64(line.count)
                previous = line
            }
            rows += 1
        }
        try writer.close()
        return (rows, total)
    }
}
