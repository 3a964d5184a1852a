#if canImport(Glibc)
import Glibc
#endif

/// libarchive converts entry names between UTF-8 and the current locale's character set. A Swift process
/// runs in the "C" locale (ASCII) unless something calls `setlocale`, so any non-ASCII name would fail to
/// convert ("Can't translate pathname"), and whether it did would depend on the environment. Every
/// libarchive call here therefore runs with the calling thread's LC_CTYPE set to C.UTF-8 (`uselocale`, a
/// per-thread setting, restored afterwards), so names are UTF-8 in and out, whatever the process locale.
enum ArchiveLocale {
    /// C.UTF-8 for LC_CTYPE, or nil where the C library lacks it (names must then be ASCII).
    private nonisolated(unsafe) static let utf8: locale_t? = newlocale(LC_CTYPE_MASK, "C.UTF-8", nil)

    static func withUTF8<T>(_ body: () throws -> T) rethrows -> T {
        guard let utf8 else { return try body() }
        let previous = uselocale(utf8)
        defer { uselocale(previous) }
        return try body()
    }
}
