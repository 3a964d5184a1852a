import Foundation

/// The BPE model (spec §5.5): vocab, merge ranks, and the merge loop.
///
/// Merges are keyed by the pair of symbol ids, so a word is merged without building strings. Short
/// words use a direct scan for the lowest-ranked pair; long words a binary heap over candidate pairs
/// with a linked list of symbols (O(n log n), no quadratic rescans). Both merge the lowest rank first
/// and the leftmost occurrence among equal ranks, which is HF's order.
final class BPEModel: @unchecked Sendable {
    let vocab: [String: Int]
    let idToToken: [String]
    /// (left id << 32 | right id) → (rank, merged id).
    let merges: [UInt64: (rank: Int32, id: Int32)]
    let unkID: Int?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    /// Id of each byte's byte-level character (`Ġ` for space...), or -1 when the vocab lacks it.
    let byteLevelIDs: [Int32]
    /// Ids of `<0xXX>` tokens for byte fallback (-1 when absent).
    let fallbackIDs: [Int32]

    private let cacheLock = NSLock()
    private var cache: [Substring: [Int32]] = [:]
    private let cacheLimit = 200_000

    init(vocab: [String: Int], merges: [(String, String)], unkToken: String?, fuseUnk: Bool, byteFallback: Bool,
         ignoreMerges: Bool, continuingSubwordPrefix: String?, endOfWordSuffix: String?, file: String) throws(TokenizerError) {
        self.vocab = vocab
        var idToToken = [String](repeating: "", count: (vocab.values.max() ?? -1) + 1)
        for (token, id) in vocab { idToToken[id] = token }
        self.idToToken = idToToken
        var table: [UInt64: (rank: Int32, id: Int32)] = [:]
        table.reserveCapacity(merges.count)
        let prefix = continuingSubwordPrefix?.isEmpty == false ? continuingSubwordPrefix : nil
        let prefixCount = prefix?.unicodeScalars.count ?? 0
        for (rank, (a, b)) in merges.enumerated() {
            let path = "model.merges[\(rank)]"
            guard let ia = vocab[a] else { throw TokenizerError(file: file, path: path, "`\(a)` is not in the vocab") }
            guard let ib = vocab[b] else { throw TokenizerError(file: file, path: path, "`\(b)` is not in the vocab") }
            let mergedText = a + (prefixCount > 0 && b.scalarHasPrefix(prefix!)
                ? String(String.UnicodeScalarView(b.unicodeScalars.dropFirst(prefixCount))) : b)
            guard let im = vocab[mergedText] else {
                throw TokenizerError(file: file, path: path, "the merge result `\(mergedText)` is not in the vocab")
            }
            let key = UInt64(UInt32(ia)) << 32 | UInt64(UInt32(ib))
            if table[key] == nil { table[key] = (Int32(rank), Int32(im)) }
        }
        self.merges = table
        if let unkToken {
            guard let id = vocab[unkToken] else { throw TokenizerError(file: file, path: "model.unk_token", "`\(unkToken)` is not in the vocab") }
            unkID = id
        } else {
            unkID = nil
        }
        self.fuseUnk = fuseUnk
        self.byteFallback = byteFallback
        self.ignoreMerges = ignoreMerges
        // transformers writes "" for "none" in converted files.
        self.continuingSubwordPrefix = continuingSubwordPrefix?.isEmpty == true ? nil : continuingSubwordPrefix
        self.endOfWordSuffix = endOfWordSuffix?.isEmpty == true ? nil : endOfWordSuffix
        byteLevelIDs = (0..<256).map { Int32(vocab[String(ByteLevel.byteToScalar[$0])] ?? -1) }
        fallbackIDs = (0..<256).map { Int32(vocab[String(format: "<0x%02X>", $0)] ?? -1) }
    }

    /// Token ids of one pre-token.
    func tokenize(_ piece: Piece, into out: inout [Int32]) {
        cacheLock.lock()
        let key = piece.byteLevel ? piece.text : Substring("\u{1}" + piece.text)
        if let hit = cache[key] {
            cacheLock.unlock()
            out.append(contentsOf: hit)
            return
        }
        cacheLock.unlock()
        var symbols = initialSymbols(piece)
        if !(ignoreMerges && wholeWordID(piece, into: &symbols)) { merge(&symbols) }
        cacheLock.lock()
        if cache.count >= cacheLimit { cache.removeAll(keepingCapacity: true) }
        cache[key] = symbols
        cacheLock.unlock()
        out.append(contentsOf: symbols)
    }

    /// With `ignore_merges`, a pre-token that is itself a vocab entry is one token.
    private func wholeWordID(_ piece: Piece, into symbols: inout [Int32]) -> Bool {
        let text = piece.byteLevel ? ByteLevel.encode(piece.text) : String(piece.text)
        guard let id = vocab[text] else { return false }
        symbols = [Int32(id)]
        return true
    }

    private func initialSymbols(_ piece: Piece) -> [Int32] {
        var symbols: [Int32] = []
        if piece.byteLevel && continuingSubwordPrefix == nil && endOfWordSuffix == nil {
            symbols.reserveCapacity(piece.text.utf8.count)
            var unknownRun = false
            for b in piece.text.utf8 {
                let id = byteLevelIDs[Int(b)]
                if id >= 0 {
                    symbols.append(id)
                    unknownRun = false
                } else {
                    appendUnknown(Character(String(ByteLevel.byteToScalar[Int(b)])), to: &symbols, run: &unknownRun)
                }
            }
            return symbols
        }
        let text = piece.byteLevel ? ByteLevel.encode(piece.text) : String(piece.text)
        let scalars = Array(text.unicodeScalars)
        var unknownRun = false
        for (i, scalar) in scalars.enumerated() {
            var s = String(scalar)
            if i > 0, let p = continuingSubwordPrefix { s = p + s }
            if i == scalars.count - 1, let suffix = endOfWordSuffix { s += suffix }
            if let id = vocab[s] {
                symbols.append(Int32(id))
                unknownRun = false
            } else {
                appendUnknown(Character(String(scalar)), to: &symbols, run: &unknownRun)
            }
        }
        return symbols
    }

    /// An unknown character: its `<0xXX>` byte tokens with byte fallback, else the unk token (fused
    /// when `fuse_unk`), else dropped (HF's behaviour with a null unk_token).
    private func appendUnknown(_ c: Character, to symbols: inout [Int32], run: inout Bool) {
        if byteFallback {
            let ids = String(c).utf8.map { fallbackIDs[Int($0)] }
            if ids.allSatisfy({ $0 >= 0 }) {
                symbols.append(contentsOf: ids)
                run = false
                return
            }
        }
        guard let unk = unkID else { return }
        if fuseUnk && run { return }
        symbols.append(Int32(unk))
        run = true
    }

    @inline(__always)
    private func pair(_ a: Int32, _ b: Int32) -> (rank: Int32, id: Int32)? {
        merges[UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))]
    }

    private func merge(_ symbols: inout [Int32]) {
        if symbols.count < 2 { return }
        if symbols.count <= 48 { mergeByScan(&symbols) } else { mergeByHeap(&symbols) }
    }

    private func mergeByScan(_ s: inout [Int32]) {
        while s.count > 1 {
            var best: (rank: Int32, id: Int32, at: Int)?
            for i in 0..<(s.count - 1) {
                if let m = pair(s[i], s[i + 1]), m.rank < (best?.rank ?? .max) { best = (m.rank, m.id, i) }
            }
            guard let b = best else { return }
            s[b.at] = b.id
            s.remove(at: b.at + 1)
        }
    }

    private func mergeByHeap(_ s: inout [Int32]) {
        let n = s.count
        var prev = Array(-1..<(n - 1)), next = Array(1...n)
        var alive = [Bool](repeating: true, count: n)
        var heap = MinHeap()
        for i in 0..<(n - 1) {
            if let m = pair(s[i], s[i + 1]) { heap.push(rank: m.rank, pos: Int32(i), left: s[i], right: s[i + 1]) }
        }
        while let top = heap.pop() {
            let i = Int(top.pos)
            let j = next[i]
            // Stale entry: a side was merged away or changed since this pair was pushed.
            guard alive[i], j < n, alive[j], s[i] == top.left, s[j] == top.right,
                  let m = pair(s[i], s[j]), m.rank == top.rank else { continue }
            s[i] = m.id
            alive[j] = false
            next[i] = next[j]
            if next[j] < n { prev[next[j]] = i }
            if prev[i] >= 0, let l = pair(s[prev[i]], s[i]) {
                heap.push(rank: l.rank, pos: Int32(prev[i]), left: s[prev[i]], right: s[i])
            }
            if next[i] < n, let r = pair(s[i], s[next[i]]) {
                heap.push(rank: r.rank, pos: Int32(i), left: s[i], right: s[next[i]])
            }
        }
        var out: [Int32] = []
        out.reserveCapacity(n)
        var i = 0
        while i < n {
            out.append(s[i])
            i = next[i]
        }
        s = out
    }
}

/// Binary min-heap ordered by (rank, position): lowest rank first, leftmost among equals.
struct MinHeap {
    struct Entry { var rank: Int32; var pos: Int32; var left: Int32; var right: Int32 }
    private var items: [Entry] = []

    private func less(_ a: Entry, _ b: Entry) -> Bool { a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos }

    mutating func push(rank: Int32, pos: Int32, left: Int32, right: Int32) {
        items.append(Entry(rank: rank, pos: pos, left: left, right: right))
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            guard less(items[i], items[p]) else { break }
            items.swapAt(i, p)
            i = p
        }
    }

    mutating func pop() -> Entry? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count, less(items[l], items[m]) { m = l }
                if r < items.count, less(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}

