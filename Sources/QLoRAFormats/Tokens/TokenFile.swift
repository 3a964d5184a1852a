import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The tokenize stage's output: token ids, a label mask and sequence/document boundaries in one
/// little-endian binary file that training maps into memory without parsing.
///
/// Layout (format version 1); every section starts at a multiple of 64 bytes:
///
///     offset 0   magic "QLTOKENS" (8 bytes)
///            8   u32 format version (1)
///           12   u32 flags (bit 0: packed)
///           16   u64 sequence count S
///           24   u64 token count N
///           32   u64 document count D
///           40   u64 offset of ids       u32[N]  token ids
///           48   u64 offset of labels    u8[N]   1 = the token is a training target, 0 = masked
///           56   u64 offset of sequences u64[S+1] token offset of each sequence (last = N)
///           64   u64 offset of documents u64[D+1] token offset of each document (last = N); a packed
///                                                 sequence holds whole documents, and attention must not
///                                                 cross a document boundary
///           72   u32 vocabulary size, u32 reserved, then zero padding to 128
///
/// Unpacked files have one document per sequence (D = S, identical offsets).
public enum TokenFile {
    public static let magic = Array("QLTOKENS".utf8)
    public static let version: UInt32 = 1

    /// A sequence (training row) as written: ids, labels (true = trained) and document starts within it.
    public struct Sequence: Equatable, Sendable {
        public var ids: [UInt32]
        public var labels: [Bool]
        /// Offsets (within the sequence) where documents start; always begins with 0.
        public var documentStarts: [Int]

        public init(ids: [UInt32], labels: [Bool], documentStarts: [Int] = [0]) {
            self.ids = ids
            self.labels = labels
            self.documentStarts = documentStarts
        }
    }

    /// Writes `sequences` to `url` (through `AtomicFile`).
    public static func write(_ sequences: [Sequence], packed: Bool, vocabularySize: Int, to url: URL) throws {
        let n = sequences.reduce(0) { $0 + $1.ids.count }
        let d = sequences.reduce(0) { $0 + $1.documentStarts.count }
        func align(_ x: Int) -> Int { (x + 63) / 64 * 64 }
        let idsOffset = 128
        let labelsOffset = align(idsOffset + 4 * n)
        let sequencesOffset = align(labelsOffset + n)
        let documentsOffset = align(sequencesOffset + 8 * (sequences.count + 1))
        let total = documentsOffset + 8 * (d + 1)
        var data = Data(count: total)
        data.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
                var le = v.littleEndian
                withUnsafeBytes(of: &le) { p.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: MemoryLayout<T>.size) }
            }
            for (i, b) in magic.enumerated() { p.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
            put(version, at: 8)
            put(UInt32(packed ? 1 : 0), at: 12)
            put(UInt64(sequences.count), at: 16)
            put(UInt64(n), at: 24)
            put(UInt64(d), at: 32)
            put(UInt64(idsOffset), at: 40)
            put(UInt64(labelsOffset), at: 48)
            put(UInt64(sequencesOffset), at: 56)
            put(UInt64(documentsOffset), at: 64)
            put(UInt32(vocabularySize), at: 72)
            var t = 0, doc = 0
            for (s, seq) in sequences.enumerated() {
                put(UInt64(t), at: sequencesOffset + 8 * s)
                for start in seq.documentStarts {
                    put(UInt64(t + start), at: documentsOffset + 8 * doc)
                    doc += 1
                }
                for (i, id) in seq.ids.enumerated() {
                    put(id, at: idsOffset + 4 * (t + i))
                    p.storeBytes(of: seq.labels[i] ? 1 : 0, toByteOffset: labelsOffset + t + i, as: UInt8.self)
                }
                t += seq.ids.count
            }
            put(UInt64(t), at: sequencesOffset + 8 * sequences.count)
            put(UInt64(t), at: documentsOffset + 8 * d)
        }
        try AtomicFile.write(data, to: url)
    }

    /// A read-only memory map of a token file, validated on open.
    public final class Reader: @unchecked Sendable {
        public let path: String
        public let sequenceCount: Int
        public let tokenCount: Int
        public let documentCount: Int
        public let packed: Bool
        public let vocabularySize: Int
        private let base: UnsafeRawPointer
        private let length: Int
        private let idsOffset, labelsOffset, sequencesOffset, documentsOffset: Int

        public init(path: String) throws {
            self.path = path
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw FileError(path: path, errno: errno, operation: "open") }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw FileError(path: path, errno: errno, operation: "stat") }
            let len = Int(st.st_size)
            length = len
            guard len >= 128 else { throw FileError(path: path, message: "not a token file (too short)") }
            guard let m = mmap(nil, len, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
                throw FileError(path: path, errno: errno, operation: "mmap")
            }
            let p = UnsafeRawPointer(m)
            // A header field past Int.max reads as -1, which the range checks below refuse (it used to trap converting).
            func u64(_ o: Int) -> Int { Int(exactly: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt64.self))) ?? -1 }
            func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
            let magicOK = (0..<8).allSatisfy { p.load(fromByteOffset: $0, as: UInt8.self) == TokenFile.magic[$0] }
            let v = u32(8)
            sequenceCount = u64(16)
            tokenCount = u64(24)
            documentCount = u64(32)
            idsOffset = u64(40)
            labelsOffset = u64(48)
            sequencesOffset = u64(56)
            documentsOffset = u64(64)
            packed = u32(12) & 1 == 1
            vocabularySize = Int(u32(72))
            let fits = { (offset: Int, bytes: Int) in offset >= 128 && bytes >= 0 && offset <= len && bytes <= len - offset }
            let counted = { (n: Int) in n >= 0 && n < 1 << 40 }
            guard magicOK, v == TokenFile.version, counted(tokenCount), counted(sequenceCount), counted(documentCount),
                  fits(idsOffset, 4 * tokenCount), fits(labelsOffset, tokenCount),
                  fits(sequencesOffset, 8 * (sequenceCount + 1)), fits(documentsOffset, 8 * (documentCount + 1)) else {
                munmap(m, len)
                throw FileError(path: path, message: magicOK ? "unsupported or corrupt token file (version \(v))" : "not a token file (bad magic)")
            }
            // Everything a reader later indexes with is checked here, once, so an altered file is an error naming
            // what is wrong instead of a trap (or a read past the mapping) in training.
            if let problem = Self.checkContents(p, tokens: tokenCount, sequences: sequenceCount, documents: documentCount,
                                                 ids: idsOffset, sequenceOffsets: sequencesOffset,
                                                 documentOffsets: documentsOffset, vocabulary: vocabularySize) {
                munmap(m, len)
                throw FileError(path: path, message: "corrupt token file: \(problem)")
            }
            // Set last: Swift runs `deinit` for a class whose stored properties are all set even when its init
            // throws, so with `base` set before the checks a refused file was unmapped twice, and the second
            // munmap removed whatever another thread had mapped there since (a crash in CI; TokenFileTests).
            base = p
        }

        /// The offsets tables start at 0, never decrease and end at the token count; every id is below the
        /// vocabulary size (when the file records one). nil when all holds, else what does not.
        private static func checkContents(_ p: UnsafeRawPointer, tokens: Int, sequences: Int, documents: Int, ids: Int,
                                          sequenceOffsets: Int, documentOffsets: Int, vocabulary: Int) -> String? {
            func offsets(_ base: Int, _ count: Int, _ what: String) -> String? {
                var previous = 0
                for i in 0...count {
                    let o = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: base + 8 * i, as: UInt64.self))
                    if i == 0, o != 0 { return "the first \(what) starts at token \(o), not 0" }
                    if o > UInt64(tokens) { return "\(what) \(i) starts at token \(o), past the \(tokens) tokens" }
                    if Int(o) < previous { return "\(what) \(i) starts before \(what) \(i - 1)" }
                    previous = Int(o)
                }
                return previous == tokens ? nil : "the \(what) offsets end at token \(previous), not at the \(tokens) tokens"
            }
            if let problem = offsets(sequenceOffsets, sequences, "sequence") ?? offsets(documentOffsets, documents, "document") {
                return problem
            }
            guard vocabulary > 0 else { return nil }
            let limit = UInt32(truncatingIfNeeded: vocabulary)
            for t in 0..<tokens {
                let id = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: ids + 4 * t, as: UInt32.self))
                if id >= limit { return "token \(t) is id \(id), not below the vocabulary size \(vocabulary)" }
            }
            return nil
        }

        deinit { munmap(UnsafeMutableRawPointer(mutating: base), length) }

        public func sequenceRange(_ i: Int) -> Range<Int> {
            precondition(i >= 0 && i < sequenceCount)
            let lo = Int(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: sequencesOffset + 8 * i, as: UInt64.self)))
            let hi = Int(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: sequencesOffset + 8 * (i + 1), as: UInt64.self)))
            return lo..<hi
        }

        public func id(at t: Int) -> UInt32 {
            UInt32(littleEndian: base.loadUnaligned(fromByteOffset: idsOffset + 4 * t, as: UInt32.self))
        }

        public func label(at t: Int) -> Bool { base.load(fromByteOffset: labelsOffset + t, as: UInt8.self) != 0 }

        public func documentOffset(_ i: Int) -> Int {
            Int(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: documentsOffset + 8 * i, as: UInt64.self)))
        }

        /// Sequence `i` as written.
        public func sequence(_ i: Int) -> Sequence {
            let r = sequenceRange(i)
            var starts: [Int] = []
            // Documents are stored in order; find those starting inside this sequence.
            var lo = 0, hi = documentCount
            while lo < hi {
                let mid = (lo + hi) / 2
                if documentOffset(mid) < r.lowerBound { lo = mid + 1 } else { hi = mid }
            }
            var d = lo
            while d < documentCount, documentOffset(d) < r.upperBound || (r.isEmpty && documentOffset(d) == r.lowerBound && starts.isEmpty) {
                starts.append(documentOffset(d) - r.lowerBound)
                d += 1
            }
            return Sequence(ids: r.map { id(at: $0) }, labels: r.map { label(at: $0) }, documentStarts: starts)
        }
    }
}
