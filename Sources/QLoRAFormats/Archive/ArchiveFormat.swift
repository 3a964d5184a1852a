/// The archive formats the package stage writes and `qlora unpack`/`qlora verify` read. Reading does not
/// depend on the name: libarchive recognises the content (tar with or without gzip/zstd, zip).
public enum ArchiveFormat: String, Sendable, CaseIterable, Codable {
    /// POSIX tar (pax-restricted: plain ustar headers unless a name or size needs an extension), gzip.
    case tarGzip = "tar.gz"
    /// POSIX tar as above, Zstandard.
    case tarZstd = "tar.zst"
    /// Zip with deflate.
    case zip

    /// What the package stage writes unless told otherwise: the most widely readable choice.
    public static let `default` = ArchiveFormat.tarGzip

    /// The canonical file-name extension, without the leading dot (`tar.gz`, `tar.zst`, `zip`).
    public var fileExtension: String { rawValue }

    /// Infers the format from a file name or path, case-insensitively: `.tar.gz`/`.tgz`, `.tar.zst`/`.tzst`,
    /// `.zip`. Throws `ArchiveError.Kind.unknownFormat` naming the file for anything else.
    public init(fileName: String) throws {
        let lower = fileName.lowercased()
        if lower.hasSuffix(".tar.gz") || lower.hasSuffix(".tgz") {
            self = .tarGzip
        } else if lower.hasSuffix(".tar.zst") || lower.hasSuffix(".tzst") {
            self = .tarZstd
        } else if lower.hasSuffix(".zip") {
            self = .zip
        } else {
            throw ArchiveError(archive: fileName, kind: .unknownFormat)
        }
    }
}
