/// Bounds on what reading or extracting an archive may produce, so a hostile archive (a decompression
/// bomb, millions of empty entries) fails fast with an error instead of filling the disk or memory.
///
/// Every byte count is of *decompressed* data actually produced while streaming, never a header's claim:
/// tar and zip headers can lie, sparse tar entries expand, and a deflate or zstd stream can decode to far
/// more than it says. The defaults suit a PEFT adapter directory (a safetensors file of up to a few GB,
/// a config, a README, maybe tokenizer files).
public struct ArchiveLimits: Sendable, Equatable {
    /// Most bytes one entry may decompress to. Default 8 GiB: a rank-256 adapter over every projection of a
    /// 70B model in f32 is about 6.5 GB.
    public var maxEntryBytes: Int64
    /// Most bytes all entries together may decompress to. Default 16 GiB.
    public var maxTotalBytes: Int64
    /// Most decompressed bytes per archive byte read so far (N means N:1). Default 200: adapter weights
    /// compress by about 1.1:1 (zero-initialised LoRA B halves reach a few :1), JSON by 5-10:1, while a
    /// gzip bomb runs at about 1000:1 and zstd far beyond.
    public var maxCompressionRatio: Int64
    /// The ratio is only checked once the total passes this many bytes, so a small, very repetitive file
    /// (a README of blank lines) is not refused for its ratio. Default 1 MiB.
    public var ratioCheckAfterBytes: Int64
    /// Most entries (files, directories, and anything refused) the archive may hold. Default 10,000.
    public var maxEntries: Int

    public init(maxEntryBytes: Int64 = 8 << 30, maxTotalBytes: Int64 = 16 << 30, maxCompressionRatio: Int64 = 200,
                ratioCheckAfterBytes: Int64 = 1 << 20, maxEntries: Int = 10_000) {
        precondition(maxEntryBytes >= 0 && maxTotalBytes >= 0 && maxCompressionRatio >= 1
                     && ratioCheckAfterBytes >= 0 && maxEntries >= 0, "archive limits must be non-negative, ratio >= 1")
        self.maxEntryBytes = maxEntryBytes
        self.maxTotalBytes = maxTotalBytes
        self.maxCompressionRatio = maxCompressionRatio
        self.ratioCheckAfterBytes = ratioCheckAfterBytes
        self.maxEntries = maxEntries
    }

    /// The defaults above, for adapter archives.
    public static let adapter = ArchiveLimits()
}
