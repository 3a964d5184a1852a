import Crypto
import Foundation

/// SHA-256 and size of a file, read in 1 MiB chunks (constant memory for any file size).
public struct FileDigest: Codable, Sendable, Equatable {
    public var sha256: String
    public var size: Int64

    public init(sha256: String, size: Int64) {
        self.sha256 = sha256
        self.size = size
    }

    public static func of(file url: URL) throws -> FileDigest {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw FileError(path: url.path, message: "cannot open for reading")
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        var size: Int64 = 0
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            } catch {
                throw FileError(path: url.path, message: "read failed: \(error.localizedDescription)")
            }
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
            size += Int64(chunk.count)
        }
        return FileDigest(sha256: hasher.finalize().hexString, size: size)
    }

    public static func of(data: Data) -> FileDigest {
        FileDigest(sha256: SHA256.hash(data: data).hexString, size: Int64(data.count))
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hexadecimal, two digits per byte.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in self {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

extension SHA256.Digest {
    public var hexString: String { Array(self).hexString }
}

/// A file-system failure, naming the path.
public struct FileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public init(path: String, errno code: Int32, operation: String) {
        self.init(path: path, message: "\(operation) failed: \(String(cString: strerror(code)))")
    }

    public var description: String { "\(path): \(message)" }

    /// Wraps a Foundation file error (from `FileManager`, `Data.write`) as the system's reason for `operation`
    /// on `path` ("copy failed: No space left on device") instead of Foundation's NSError dump.
    public init(path: String, operation: String, wrapping error: any Error) {
        let ns = error as NSError
        let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError
        // Foundation on Linux reports a full disk as CocoaError.fileWriteOutOfSpace with no POSIX error under it.
        let cocoa: [CocoaError.Code: Int32] = [.fileWriteOutOfSpace: ENOSPC, .fileWriteVolumeReadOnly: EROFS,
                                               .fileWriteNoPermission: EACCES, .fileReadNoPermission: EACCES,
                                               .fileNoSuchFile: ENOENT, .fileReadNoSuchFile: ENOENT]
        if let posix = [ns, underlying].compactMap({ $0 }).first(where: { $0.domain == NSPOSIXErrorDomain }) {
            self.init(path: path, errno: Int32(posix.code), operation: operation)
        } else if let code = (error as? CocoaError).flatMap({ cocoa[$0.code] }) {
            self.init(path: path, errno: code, operation: operation)
        } else {
            self.init(path: path, message: "\(operation) failed: \(ns.localizedDescription)")
        }
    }
}
