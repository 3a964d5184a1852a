// The growable read-ahead window shared by LineReader, JSONArrayReader and CSVReader.

/// A window of bytes read from a `ByteSource`: valid bytes are `base[0..<count]`. `refill` drops an
/// already-consumed prefix, grows the window when a single line/record fills it, and appends what
/// the source delivers next. A reference type so that a reader's progress (`bytesRead`) can be
/// observed from inside the reader's callback.
final class InputBuffer {
    let path: String
    private var source: any ByteSource
    private(set) var base: UnsafeMutableRawPointer
    private(set) var capacity: Int
    private(set) var count = 0
    private(set) var isAtEOF = false
    /// Total bytes delivered by the source so far.
    private(set) var bytesRead = 0
    /// The longest unfinished line/record/element the buffer may have to hold.
    let maxRetained: Int
    /// Set once the reader has consumed its start (BOM handling); readers use it to detect reuse.
    var started = false

    init(source: any ByteSource, path: String, capacity: Int, maxRetained: Int) {
        precondition(capacity > 0, "buffer size must be positive")
        precondition(maxRetained > 0, "length limit must be positive")
        self.source = source
        self.path = path
        self.capacity = capacity
        self.maxRetained = maxRetained
        self.base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
    }

    deinit { base.deallocate() }

    @inline(__always)
    subscript(i: Int) -> UInt8 { base.load(fromByteOffset: i, as: UInt8.self) }

    /// Discards `base[0..<keepFrom]`, moving the rest to the front, then reads once from the source.
    /// Returns `keepFrom`: callers subtract it from every index they hold. Sets `isAtEOF` when the
    /// source is exhausted. Throws `tooLong` (at `line`) when more than `maxRetained` bytes are kept.
    func refill(keepingFrom keepFrom: Int, line: Int) throws -> Int {
        precondition(!isAtEOF && keepFrom >= 0 && keepFrom <= count)
        if keepFrom > 0 {
            if count > keepFrom { (base + 0).copyMemory(from: base + keepFrom, byteCount: count - keepFrom) }
            count -= keepFrom
        }
        if count > maxRetained {
            throw ReaderError(path: path, line: line, kind: .tooLong(limit: maxRetained))
        }
        if count == capacity { grow(to: capacity * 2) }
        let n = try source.read(into: UnsafeMutableRawBufferPointer(start: base + count, count: capacity - count))
        precondition(n >= 0 && n <= capacity - count, "ByteSource returned an invalid count")
        if n == 0 {
            isAtEOF = true
        } else {
            count += n
            bytesRead += n
        }
        return keepFrom
    }

    /// Reads until at least three bytes are buffered (or the end), then returns 3 if they are a
    /// UTF-8 byte order mark, else 0: the offset where content starts.
    func byteOrderMarkLength() throws -> Int {
        while count < 3 && !isAtEOF { _ = try refill(keepingFrom: 0, line: 1) }
        guard count >= 3, self[0] == 0xEF, self[1] == 0xBB, self[2] == 0xBF else { return 0 }
        return 3
    }

    private func grow(to newCapacity: Int) {
        let newBase = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        newBase.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }
}
