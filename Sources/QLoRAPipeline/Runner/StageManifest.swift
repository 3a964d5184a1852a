import Foundation
import QLoRAFormats

/// `<stage>/manifest.json`: proof that a stage finished, what it was computed from, and what it wrote.
public struct StageManifest: Codable, Sendable {
    public struct Input: Codable, Sendable, Equatable {
        public var path: String
        public var sha256: String
        public var size: Int64
    }

    public struct Output: Codable, Sendable, Equatable {
        /// Relative to the stage directory.
        public var path: String
        public var sha256: String
        public var size: Int64
    }

    public struct Upstream: Codable, Sendable, Equatable {
        public var fingerprint: String
        /// Digest of the upstream manifest's outputs: detects an upstream rerun with different results.
        public var outputsDigest: String

        enum CodingKeys: String, CodingKey { case fingerprint, outputsDigest = "outputs_digest" }
    }

    public var stage: StageID
    public var state: String
    public var fingerprint: String
    public var formatVersion: Int
    public var toolVersion: String
    public var inputs: [Input]
    public var upstream: [String: Upstream]
    public var outputs: [Output]
    public var startedAt: String
    public var finishedAt: String
    public var durationSeconds: Double
    public var metrics: [String: Double]
    public var notes: [String]
    /// The backend the stage computed on (`cpu`, `reference`), for stages that compute; absent otherwise.
    public var backend: String?

    public static let completeState = "complete"

    enum CodingKeys: String, CodingKey {
        case stage, state, fingerprint, formatVersion = "format_version", toolVersion = "tool_version", inputs
        case upstream, outputs, startedAt = "started_at", finishedAt = "finished_at"
        case durationSeconds = "duration_seconds", metrics, notes, backend
    }

    /// Digest over the output records, so downstream stages can pin exactly what they consumed.
    public var outputsDigest: String {
        let text = outputs.map { "\($0.path)\t\($0.sha256)\t\($0.size)\n" }.joined()
        return FileDigest.of(data: Data(text.utf8)).sha256
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }

    public static func read(from url: URL) -> StageManifest? {
        guard let data = try? Data(contentsOf: url) else { return nil }
        return try? JSONDecoder().decode(StageManifest.self, from: data)
    }

    /// Hashes every regular file under `directory` (sorted, relative paths), except the manifest itself.
    public static func collectOutputs(in directory: URL) throws -> [Output] {
        let fm = FileManager.default
        guard let walker = fm.enumerator(at: directory, includingPropertiesForKeys: [.isRegularFileKey]) else {
            throw FileError(path: directory.path, message: "cannot list the stage directory")
        }
        var outputs: [Output] = []
        let prefix = directory.standardizedFileURL.path + "/"
        for case let url as URL in walker {
            guard (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true else { continue }
            let path = String(url.standardizedFileURL.path.dropFirst(prefix.count))
            if path == "manifest.json" { continue }
            let digest = try FileDigest.of(file: url)
            outputs.append(Output(path: path, sha256: digest.sha256, size: digest.size))
        }
        return outputs.sorted { $0.path < $1.path }
    }

    /// Why the stage's directory no longer proves this manifest (a missing or changed output), or nil.
    public func verifyOutputs(in directory: URL) -> String? {
        for output in outputs {
            let url = directory.appendingPathComponent(output.path)
            guard let digest = try? FileDigest.of(file: url) else { return "output `\(output.path)` is missing" }
            if digest.size != output.size || digest.sha256 != output.sha256 {
                return "output `\(output.path)` changed on disk (sha256 mismatch)"
            }
        }
        return nil
    }
}

extension Date {
    var iso8601: String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: self)
    }
}
