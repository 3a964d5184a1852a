/// The one place that decides which names may be written to, or extracted from, an archive.
///
/// Extraction takes a name apart into components and refuses it when it is absolute, has a `..` component
/// anywhere (even `a/../b`, which stays inside: no legitimate archive needs it), holds a backslash (a
/// separator on Windows, so the same archive would mean something else there), or is empty. `.` and empty
/// components (`./a`, `a//b`, a directory's trailing `/`) are dropped, since tools write them routinely.
enum ArchivePath {
    /// An entry name taken apart: its components (none when the name is the extraction root itself, `.`
    /// or `./`), or why it is refused.
    enum Parsed {
        case success([Substring])
        case failure(ArchiveError.Kind)
    }

    static func components(ofEntry name: String) -> Parsed {
        if name.isEmpty { return .failure(.unsafeName(reason: "the name is empty")) }
        if name.hasPrefix("/") { return .failure(.absolutePath) }
        if name.contains("\\") {
            return .failure(.unsafeName(reason: "it holds a backslash, a path separator on Windows"))
        }
        var parts: [Substring] = []
        for part in name.split(separator: "/", omittingEmptySubsequences: true) {
            if part == ".." { return .failure(.escapesTarget) }
            if part != "." { parts.append(part) }
        }
        return .success(parts)
    }

    /// Why the writer refuses a member name, or nil when it is acceptable. Members must be in canonical
    /// form (`dir/file`: relative, no `.`/`..`/empty components, no trailing slash, no backslash), so that
    /// the archive holds exactly the names the caller gave and extraction accepts every one of them.
    static func problem(withMember name: String) -> String? {
        if name.isEmpty { return "the name is empty" }
        if name.hasPrefix("/") { return "it is absolute" }
        if name.contains("\\") { return "it holds a backslash" }
        if name.utf8.contains(0) { return "it holds a NUL byte" }
        for part in name.split(separator: "/", omittingEmptySubsequences: false) {
            if part.isEmpty { return "it has an empty component (a doubled or trailing slash)" }
            if part == "." || part == ".." { return "it has a `\(part)` component" }
        }
        return nil
    }
}
