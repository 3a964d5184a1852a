import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes a safetensors file tensor by tensor, so a checkpoint larger than memory can be produced while
/// holding one tensor at a time.
///
/// Layout: the data of the fixed-size entries in the order given, then the "trailing" entries whose size is
/// only known at the end (bitsandbytes' JSON quant states), each bounded by a maximum. The header is
/// reserved for those maxima and padded with spaces (allowed by the format) once the real sizes are known,
/// so every fixed entry can be written at its final offset immediately. Data goes to a temporary sibling
/// that is synced and renamed over `url` by `finish`; an unfinished writer deletes it.
public final class SafetensorsStreamWriter {
    public typealias Entry = (name: String, dtype: SafetensorsDType, shape: [Int])

    public let url: URL
    private let tmpPath: String
    private var fd: Int32
    private let fixed: [Entry]
    private let fixedOffsets: [String: Range<Int>]
    private let trailing: [(name: String, maxBytes: Int)]
    private let metadata: [String: String]
    private let reservedHeader: Int
    private var written = Set<String>()
    private var finished = false

    /// Plans the file. `trailing` entries are U8 vectors of at most `maxBytes` bytes each.
    public init(url: URL, fixed: [Entry], trailing: [(name: String, maxBytes: Int)] = [], metadata: [String: String] = [:]) throws {
        self.url = url
        self.fixed = fixed
        self.trailing = trailing
        self.metadata = metadata
        var offsets: [String: Range<Int>] = [:]
        var offset = 0
        for e in fixed {
            guard offsets[e.name] == nil else {
                throw SafetensorsError(path: url.path, tensor: e.name, kind: .invalidTensor("duplicate tensor name"))
            }
            let bytes = e.shape.reduce(1, *) * e.dtype.bitWidth / 8
            offsets[e.name] = offset..<(offset + bytes)
            offset += bytes
        }
        fixedOffsets = offsets
        let worst = Self.header(fixed: fixed, offsets: offsets, trailing: trailing.map { ($0.name, $0.maxBytes) },
                                dataEnd: offset, metadata: metadata)
        reservedHeader = (worst.count + 7) / 8 * 8
        tmpPath = url.deletingLastPathComponent()
            .appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        fd = open(tmpPath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: tmpPath, errno: errno, operation: "create") }
    }

    deinit {
        if !finished {
            if fd >= 0 { close(fd) }
            unlink(tmpPath)
        }
    }

    private var dataStart: Int { 8 + reservedHeader }

    /// Writes the bytes of fixed entry `name` (exactly its planned size).
    public func write(_ name: String, _ bytes: UnsafeRawBufferPointer) throws {
        guard let range = fixedOffsets[name] else {
            throw SafetensorsError(path: url.path, tensor: name, kind: .invalidTensor("was not planned"))
        }
        guard bytes.count == range.count else {
            throw SafetensorsError(path: url.path, tensor: name,
                                   kind: .invalidTensor("planned \(range.count) bytes, got \(bytes.count)"))
        }
        try pwriteAll(bytes, at: dataStart + range.lowerBound)
        written.insert(name)
    }

    public func write(_ name: String, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write(name, $0) }
    }

    public func write(_ name: String, floats: [Float]) throws {
        try floats.withUnsafeBytes { try write(name, $0) }
    }

    /// Writes the trailing entries and the header, syncs, and renames the file into place.
    public func finish(trailing values: [String: [UInt8]]) throws {
        for e in fixed where !written.contains(e.name) {
            throw SafetensorsError(path: url.path, tensor: e.name, kind: .invalidTensor("was planned but never written"))
        }
        var offset = fixed.reduce(0) { $0 + fixedOffsets[$1.name]!.count }
        let dataEnd = offset
        var sizes: [(String, Int)] = []
        for t in trailing {
            guard let bytes = values[t.name] else {
                throw SafetensorsError(path: url.path, tensor: t.name, kind: .invalidTensor("trailing entry missing"))
            }
            guard bytes.count <= t.maxBytes else {
                throw SafetensorsError(path: url.path, tensor: t.name,
                                       kind: .invalidTensor("\(bytes.count) bytes exceed the reserved \(t.maxBytes)"))
            }
            try bytes.withUnsafeBytes { try pwriteAll($0, at: dataStart + offset) }
            offset += bytes.count
            sizes.append((t.name, bytes.count))
        }
        var header = Self.header(fixed: fixed, offsets: fixedOffsets, trailing: sizes, dataEnd: dataEnd, metadata: metadata)
        precondition(header.count <= reservedHeader, "header outgrew its reservation")
        header += [UInt8](repeating: UInt8(ascii: " "), count: reservedHeader - header.count)
        var prefix = withUnsafeBytes(of: UInt64(reservedHeader).littleEndian) { Array($0) }
        prefix += header
        try prefix.withUnsafeBytes { try pwriteAll($0, at: 0) }
        guard ftruncate(fd, off_t(dataStart + offset)) == 0 else { throw FileError(path: tmpPath, errno: errno, operation: "truncate") }
        guard fsync(fd) == 0 else { throw FileError(path: tmpPath, errno: errno, operation: "fsync") }
        close(fd)
        fd = -1
        guard rename(tmpPath, url.path) == 0 else { throw FileError(path: url.path, errno: errno, operation: "rename") }
        finished = true
    }

    private func pwriteAll(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw FileError(path: tmpPath, errno: errno, operation: "write")
            }
            done += n
        }
    }

    private static func header(fixed: [Entry], offsets: [String: Range<Int>], trailing: [(String, Int)], dataEnd: Int,
                               metadata: [String: String]) -> [UInt8] {
        var h: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        func separator() {
            if !first { h.append(UInt8(ascii: ",")) }
            first = false
        }
        if !metadata.isEmpty {
            separator()
            h += Array("\"__metadata__\":{".utf8)
            for (i, key) in metadata.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
                if i > 0 { h.append(UInt8(ascii: ",")) }
                JSONWriter.writeString(key, into: &h)
                h.append(UInt8(ascii: ":"))
                JSONWriter.writeString(metadata[key]!, into: &h)
            }
            h.append(UInt8(ascii: "}"))
        }
        func entry(_ name: String, _ dtype: SafetensorsDType, _ shape: [Int], _ range: Range<Int>) {
            separator()
            JSONWriter.writeString(name, into: &h)
            h += Array(":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":[\(shape.map(String.init).joined(separator: ","))],".utf8)
            h += Array("\"data_offsets\":[\(range.lowerBound),\(range.upperBound)]}".utf8)
        }
        for e in fixed { entry(e.name, e.dtype, e.shape, offsets[e.name]!) }
        var offset = dataEnd
        for (name, size) in trailing {
            entry(name, .u8, [size], offset..<(offset + size))
            offset += size
        }
        h.append(UInt8(ascii: "}"))
        return h
    }
}
