// ArchiveError: every way writing, reading or extracting an archive can be refused, with the archive's path
// and the entry involved, so a message points at the offending member.

/// An archive that cannot be written, read or safely extracted. `description` reads like
/// `adapter.tar.gz: entry "../evil" escapes the target directory`.
public struct ArchiveError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What went wrong. Each case's description is phrased to follow `entry "NAME" ` when an entry is
    /// involved, and to stand alone otherwise.
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        /// The file name ends in none of the known extensions.
        case unknownFormat
        /// A member name the writer refuses (`reason` says why: empty, absolute, `..`, not canonical).
        case invalidMemberName(reason: String)
        /// Two members with the same name, or a file whose name is also a directory of another member.
        case conflictingMember(other: String)
        /// A member's source file cannot be opened, read or is not a regular file.
        case unreadableSource(path: String, reason: String)
        /// A source file's size changed between `fstat` and reading it to the end.
        case sourceChanged(path: String, expected: Int64, read: Int64)
        /// libarchive refused to open, configure, write or read; `message` is `archive_error_string`.
        case library(operation: String, message: String)
        /// The archive cannot be read: truncated, corrupt, or not an archive; `message` is libarchive's.
        case corrupt(message: String)
        /// An absolute entry name (`/tmp/x`).
        case absolutePath
        /// An entry name with a `..` component.
        case escapesTarget
        /// An entry name that is empty, not UTF-8, or holds a backslash; `reason` says which.
        case unsafeName(reason: String)
        /// A symbolic link entry; links are refused.
        case symbolicLink(target: String)
        /// A hard link entry; links are refused.
        case hardLink(target: String)
        /// A device, FIFO or socket entry; `type` names it.
        case specialFile(type: String)
        /// The entry decompressed to more than the per-entry limit.
        case entryTooLarge(limit: Int64)
        /// Extracting the entry took the total past the limit.
        case totalTooLarge(limit: Int64)
        /// Decompressed bytes exceed `limit` times the archive bytes read so far.
        case compressionRatioTooHigh(extracted: Int64, archiveBytes: Int64, limit: Int64)
        /// The archive holds more entries than the limit.
        case tooManyEntries(limit: Int)
        /// The same name appears twice, or a file and a directory share a path.
        case duplicateEntry
        /// `readMember` found no regular file of that name.
        case memberNotFound
        /// `readMember` found the entry but it is not a regular file.
        case notARegularFile(type: String)
        /// The member is larger than the caller's in-memory cap.
        case memberTooLarge(limit: Int64)
        /// The extraction target exists and is not an empty directory.
        case targetExists(path: String)
        /// The extraction target's parent directory does not exist.
        case targetParentMissing(path: String)
        /// A file-system call failed while writing the archive or extracting it.
        case fileSystem(path: String, operation: String, reason: String)

        public var description: String {
            switch self {
            case .unknownFormat:
                "cannot tell the archive format from the name; expected .tar.gz (or .tgz), .tar.zst (or .tzst) or .zip"
            case .invalidMemberName(let reason): "is not a valid member name: \(reason)"
            case .conflictingMember(let other): "conflicts with member \"\(other)\""
            case .unreadableSource(let path, let reason): "cannot read its source \(path): \(reason)"
            case .sourceChanged(let path, let expected, let read):
                "source \(path) changed while being archived (\(expected) bytes at open, \(read) read)"
            case .library(let operation, let message): "failed in \(operation): \(message)"
            case .corrupt(let message): "cannot be read: truncated or corrupt archive (\(message))"
            case .absolutePath: "is an absolute path; only relative names are extracted"
            case .escapesTarget: "escapes the target directory"
            case .unsafeName(let reason): "has an unsafe name: \(reason)"
            case .symbolicLink(let target): "is a symbolic link to \"\(target)\"; links are refused"
            case .hardLink(let target): "is a hard link to \"\(target)\"; links are refused"
            case .specialFile(let type): "is a \(type); only regular files and directories are extracted"
            case .entryTooLarge(let limit): "holds more than \(limit) bytes (the per-entry limit)"
            case .totalTooLarge(let limit): "takes the extracted total past the limit of \(limit) bytes"
            case .compressionRatioTooHigh(let extracted, let archiveBytes, let limit):
                "decompresses past the ratio limit of \(limit):1 (\(extracted) bytes from \(archiveBytes) archive bytes)"
            case .tooManyEntries(let limit): "holds more than \(limit) entries (the limit)"
            case .duplicateEntry: "appears twice (or as both a file and a directory)"
            case .memberNotFound: "is not in the archive"
            case .notARegularFile(let type): "is a \(type), not a regular file"
            case .memberTooLarge(let limit): "holds more than \(limit) bytes (the cap for reading it into memory)"
            case .targetExists(let path): "cannot extract into \(path): it exists and is not an empty directory"
            case .targetParentMissing(let path): "cannot extract: the target's parent directory \(path) does not exist"
            case .fileSystem(let path, let operation, let reason): "failed: \(operation) \(path): \(reason)"
            }
        }
    }

    /// The archive's path as given (or the file name whose format could not be inferred).
    public let archive: String
    /// The entry or member involved (as stored in the archive), if any.
    public let entry: String?
    public let kind: Kind

    public init(archive: String, entry: String? = nil, kind: Kind) {
        self.archive = archive
        self.entry = entry
        self.kind = kind
    }

    public var description: String {
        if let entry { return "\(archive): entry \"\(entry)\" \(kind)" }
        return "\(archive): \(kind)"
    }
}
