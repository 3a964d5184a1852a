import CArchive
import Foundation
import QLoRAFormats
import Testing

/// A fresh directory for one test; `listing()` shows everything under it, so a test can assert that a
/// refused extraction left nothing behind anywhere near the target.
struct Sandbox {
    let root: URL

    init() throws {
        root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("qlora-archive-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
    }

    func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// Writes `data` at `relative`, creating parent directories.
    @discardableResult
    func write(_ relative: String, _ data: Data) throws -> URL {
        let url = url(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        return url
    }

    /// Every path under the root, relative and sorted, without following links.
    func listing() -> [String] {
        var out: [String] = []
        func walk(_ dir: URL, _ prefix: String) {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] {
                out.append(prefix + name)
                let child = dir.appendingPathComponent(name)
                // attributesOfItem does not follow a symbolic link, so a link is listed but not entered.
                let attributes = try? FileManager.default.attributesOfItem(atPath: child.path)
                if attributes?[.type] as? FileAttributeType == .typeDirectory { walk(child, prefix + name + "/") }
            }
        }
        walk(root, "")
        return out.sorted()
    }

    func remove() { try? FileManager.default.removeItem(at: root) }
}

/// `count` bytes from a xorshift generator: incompressible, and the same for the same seed.
func pseudoRandomBytes(count: Int, seed: UInt64) -> Data {
    var state = seed | 1
    var bytes = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes[i] = UInt8(truncatingIfNeeded: state >> 24)
    }
    return Data(bytes)
}

/// The error `body` throws, recording an issue when it throws something else or nothing.
func archiveError(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> ArchiveError? {
    do {
        try body()
        Issue.record("expected an ArchiveError, got success", sourceLocation: sourceLocation)
    } catch let error as ArchiveError {
        return error
    } catch {
        Issue.record("expected an ArchiveError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// Writes archives with libarchive directly, including entries `ArchiveWriter` never produces (links,
/// devices, `..`, absolute names, bombs), to test what the reader refuses.
enum RawArchive {
    enum Container: CustomStringConvertible {
        case tar, tarGzip, tarZstd, zip
        var description: String {
            switch self {
            case .tar: "tar"
            case .tarGzip: "tar.gz"
            case .tarZstd: "tar.zst"
            case .zip: "zip"
            }
        }
    }

    static let regular: mode_t = 0o100000
    static let directory: mode_t = 0o040000
    static let symbolicLink: mode_t = 0o120000
    static let characterDevice: mode_t = 0o020000
    static let fifo: mode_t = 0o010000

    struct Entry {
        var name: String
        var type: mode_t = RawArchive.regular
        var data = Data()
        /// Stream this many zero bytes (in 1 MiB chunks) instead of `data`.
        var zeros = 0
        var symlink: String?
        var hardlink: String?

        static func file(_ name: String, _ text: String) -> Entry { Entry(name: name, data: Data(text.utf8)) }
        static func zeros(_ name: String, count: Int) -> Entry { Entry(name: name, zeros: count) }
        static func directory(_ name: String) -> Entry { Entry(name: name, type: RawArchive.directory) }
        static func symlink(_ name: String, to target: String) -> Entry {
            Entry(name: name, type: RawArchive.symbolicLink, symlink: target)
        }
        static func hardlink(_ name: String, to target: String) -> Entry { Entry(name: name, hardlink: target) }
        static func special(_ name: String, type: mode_t) -> Entry { Entry(name: name, type: type) }
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    static func write(_ entries: [Entry], to url: URL, as container: Container) throws {
        guard let a = archive_write_new() else { throw Failure(description: "archive_write_new") }
        defer { archive_write_free(a) }
        func check(_ status: Int32, _ what: String) throws {
            guard status == ARCHIVE_OK else {
                throw Failure(description: "\(what): \(archive_error_string(a).map { String(cString: $0) } ?? "?")")
            }
        }
        switch container {
        case .tar: try check(archive_write_set_format_pax_restricted(a), "format")
        case .tarGzip:
            try check(archive_write_set_format_pax_restricted(a), "format")
            try check(archive_write_add_filter_gzip(a), "gzip")
        case .tarZstd:
            try check(archive_write_set_format_pax_restricted(a), "format")
            try check(archive_write_add_filter_zstd(a), "zstd")
        case .zip: try check(archive_write_set_format_zip(a), "format")
        }
        try check(archive_write_open_filename(a, url.path), "open")
        let chunk = Data(count: 1 << 20)
        for spec in entries {
            let entry = archive_entry_new()!
            defer { archive_entry_free(entry) }
            archive_entry_set_pathname(entry, spec.name)
            archive_entry_set_filetype(entry, spec.type)
            archive_entry_set_perm(entry, spec.type == directory ? 0o755 : 0o644)
            if let target = spec.symlink { archive_entry_set_symlink(entry, target) }
            if let target = spec.hardlink { archive_entry_set_hardlink(entry, target) }
            let size = spec.zeros > 0 ? spec.zeros : spec.data.count
            archive_entry_set_size(entry, spec.type == regular && spec.hardlink == nil ? Int64(size) : 0)
            try check(archive_write_header(a, entry), "header \(spec.name)")
            if spec.zeros > 0 {
                var left = spec.zeros
                while left > 0 {
                    let n = min(left, chunk.count)
                    _ = chunk.withUnsafeBytes { archive_write_data(a, $0.baseAddress, n) }
                    left -= n
                }
            } else if !spec.data.isEmpty {
                _ = spec.data.withUnsafeBytes { archive_write_data(a, $0.baseAddress, $0.count) }
            }
        }
        try check(archive_write_close(a), "close")
    }

    /// The uncompressed tar stream inside a `.tar`, `.tar.gz` or `.tar.zst` file.
    static func tarStream(of url: URL) throws -> [UInt8] {
        guard let a = archive_read_new() else { throw Failure(description: "archive_read_new") }
        defer { archive_read_free(a) }
        archive_read_support_filter_all(a)
        archive_read_support_format_raw(a)
        guard archive_read_open_filename(a, url.path, 1 << 16) == ARCHIVE_OK else { throw Failure(description: "open raw") }
        var entry: OpaquePointer?
        guard archive_read_next_header(a, &entry) == ARCHIVE_OK else { throw Failure(description: "raw header") }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { archive_read_data(a, $0.baseAddress, $0.count) }
            guard n >= 0 else { throw Failure(description: "raw read") }
            if n == 0 { return out }
            out += buffer[0..<n]
        }
    }
}
