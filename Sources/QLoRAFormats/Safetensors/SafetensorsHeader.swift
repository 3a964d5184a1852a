// Parsing and validation of a safetensors header (spec shared/spec/safetensors-and-gguf.md §1.5 and §5).
// Every check the reference reader makes is made here, plus the stricter ones of the §5 checklist; all size
// arithmetic is overflow-checked, so hostile bytes produce a SafetensorsError, never a trap.

/// The validated header of a safetensors file.
struct SafetensorsHeader {
    /// N: the header's byte length (padding included).
    var headerLength: Int
    /// Entries in header order.
    var tensors: [SafetensorsTensorInfo]
    var metadata: [String: String]
}

enum SafetensorsHeaderParser {
    /// The reference reader's `MAX_HEADER_SIZE`.
    static let maxHeaderLength = 100_000_000

    /// The largest dimension or offset accepted: 2^53 − 1. JSON numbers are read as `Double`, which holds
    /// every integer up to here exactly, and any text ≥ 2^53 rounds to a value ≥ 2^53, so a cap at this value
    /// guarantees the integer read is the integer written. (The schema caps at 2^48 − 1; no real tensor is
    /// anywhere near either bound.)
    static let maxInteger: Double = 9_007_199_254_740_991

    /// Parses and validates the header of the `count` bytes at `base` (a whole file).
    static func parse(base: UnsafeRawPointer, count: Int, path: String) throws(SafetensorsError) -> SafetensorsHeader {
        func fail(_ kind: SafetensorsError.Kind, at offset: Int? = nil, tensor: String? = nil) -> SafetensorsError {
            SafetensorsError(path: path, offset: offset, tensor: tensor, kind: kind)
        }

        guard count >= 8 else { throw fail(.fileTooSmall(size: count)) }
        let length = UInt64(littleEndian: base.loadUnaligned(as: UInt64.self))
        guard length <= UInt64(maxHeaderLength) else {
            throw fail(.headerTooLarge(length: length, limit: maxHeaderLength), at: 0)
        }
        let n = Int(length)                     // ≤ 1e8, so 8 + n cannot overflow
        guard 8 + n <= count else { throw fail(.headerPastEnd(length: length, fileSize: count), at: 0) }
        let header = UnsafeRawBufferPointer(start: base + 8, count: n)

        if let bad = UTF8Validation.firstInvalidOffset(header) {
            throw fail(.headerNotUTF8(at: bad), at: 8 + bad)
        }
        guard n > 0, header[0] == UInt8(ascii: "{") else {
            throw fail(.headerBadStart(byte: n > 0 ? header[0] : nil), at: 8)
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(header)
        } catch {
            var tensor: String? = nil
            if case .duplicateKey(let key) = error.kind {
                // A repeated top-level key is a repeated tensor name; a key repeated deeper is inside the
                // entry of the last top-level key before it.
                let prefix = SafetensorsHeaderScan(UnsafeRawBufferPointer(rebasing: header[..<min(error.offset, n)]))
                tensor = prefix.finalDepth <= 1 ? key : prefix.keyNames.last
            }
            throw fail(.headerNotJSON(error.description), at: 8 + error.offset, tensor: tensor)
        }
        guard case .object(let object) = root else { throw fail(.headerNotObject(found: root.typeName), at: 8) }

        let lexical = SafetensorsHeaderScan(header)
        let dataStart = 8 + n
        let dataSize = count - dataStart
        var metadata: [String: String] = [:]
        var tensors: [SafetensorsTensorInfo] = []
        tensors.reserveCapacity(object.count)
        var keyOffsets: [Int] = []              // absolute offset of each tensor's key, parallel to `tensors`
        keyOffsets.reserveCapacity(object.count)

        for (index, pair) in object.pairs.enumerated() {
            let name = pair.key
            let keyOffset = index < lexical.keyOffsets.count ? 8 + lexical.keyOffsets[index] : nil
            if name == "__metadata__" {
                guard case .object(let entries) = pair.value else {
                    throw fail(.badMetadata("it is a JSON \(pair.value.typeName), not an object of strings"), at: keyOffset)
                }
                for entry in entries.pairs {
                    guard case .string(let value) = entry.value else {
                        throw fail(.badMetadata("value of \"\(entry.key)\" is a JSON \(entry.value.typeName), not a string"),
                                   at: keyOffset)
                    }
                    metadata[entry.key] = value
                }
                continue
            }
            func entryError(_ kind: SafetensorsError.Kind) -> SafetensorsError {
                fail(kind, at: keyOffset, tensor: name)
            }
            guard case .object(let entry) = pair.value else {
                throw entryError(.badEntry("it is a JSON \(pair.value.typeName), not an object"))
            }
            let expected: Set<String> = ["dtype", "shape", "data_offsets"]
            for key in entry.keys where !expected.contains(key) {
                throw entryError(.badEntry("unexpected field \"\(key)\" (only dtype, shape and data_offsets are allowed)"))
            }
            for key in ["dtype", "shape", "data_offsets"] where entry[key] == nil {
                throw entryError(.badEntry("missing field \"\(key)\""))
            }
            guard case .string(let dtypeText)? = entry["dtype"] else {
                throw entryError(.badEntry("dtype is a JSON \(entry["dtype"]?.typeName ?? "null"), not a string"))
            }
            guard let dtype = SafetensorsDType(rawValue: dtypeText) else { throw entryError(.unknownDType(dtypeText)) }
            if let number = lexical.firstNonInteger[index] {
                throw fail(.notAnInteger(field: number.field.isEmpty ? "entry" : number.field, text: number.text),
                           at: 8 + number.offset, tensor: name)
            }

            guard case .array(let dims)? = entry["shape"] else {
                throw entryError(.badShape("it is a JSON \(entry["shape"]?.typeName ?? "null"), not an array"))
            }
            var shape: [Int] = []
            shape.reserveCapacity(dims.count)
            for (k, dim) in dims.enumerated() {
                guard let value = integer(dim) else {
                    throw entryError(.badShape("dimension \(k) is \(dim), not an integer in 0...2^53-1"))
                }
                shape.append(value)
            }

            guard case .array(let offsets)? = entry["data_offsets"] else {
                throw entryError(.badOffsets("it is a JSON \(entry["data_offsets"]?.typeName ?? "null"), not an array"))
            }
            guard offsets.count == 2 else {
                throw entryError(.badOffsets("it has \(offsets.count) elements, not 2 ([begin, end])"))
            }
            guard let begin = integer(offsets[0]), let end = integer(offsets[1]) else {
                throw entryError(.badOffsets("\(JSONValue.array(offsets)) are not integers in 0...2^53-1"))
            }
            guard begin <= end else { throw entryError(.badOffsets("end \(end) is before begin \(begin)")) }

            // Element count, then bits, each overflow-checked in the shape's order (as the reference does).
            var elements = 1
            for dim in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw entryError(.sizeOverflow(shape: shape, dtype: dtype)) }
                elements = product
            }
            let (bits, bitsOverflow) = elements.multipliedReportingOverflow(by: dtype.bitWidth)
            guard !bitsOverflow else { throw entryError(.sizeOverflow(shape: shape, dtype: dtype)) }
            guard bits % 8 == 0 else { throw entryError(.misalignedSlice(elements: elements, dtype: dtype)) }
            guard bits / 8 == end - begin else {
                throw entryError(.byteCountMismatch(begin: begin, end: end, expected: bits / 8, dtype: dtype, shape: shape))
            }
            tensors.append(SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape, dataOffsets: begin..<end,
                                                 byteCount: end - begin, elementCount: elements))
            keyOffsets.append(keyOffset ?? 8)
        }

        // Sorted by offsets, the tensors must tile [0, dataSize) exactly (reference `validate`).
        let order = tensors.indices.sorted { a, b in
            let x = tensors[a].dataOffsets, y = tensors[b].dataOffsets
            return (x.lowerBound, x.upperBound, a) < (y.lowerBound, y.upperBound, b)
        }
        var position = 0
        for i in order {
            let info = tensors[i]
            guard info.dataOffsets.lowerBound == position else {
                throw fail(.invalidOffset(begin: info.dataOffsets.lowerBound, end: info.dataOffsets.upperBound,
                                          expectedBegin: position, dataStart: dataStart),
                           at: keyOffsets[i], tensor: info.name)
            }
            position = info.dataOffsets.upperBound
        }
        guard position == dataSize else {
            let last = order.last.map { tensors[$0] }
            throw fail(.incompleteBuffer(tensorsEnd: position, dataSize: dataSize),
                       at: dataStart + min(position, dataSize), tensor: last?.name)
        }
        return SafetensorsHeader(headerLength: n, tensors: tensors, metadata: metadata)
    }

    /// The value of a JSON number that is an integer in 0...2^53−1, else nil.
    private static func integer(_ value: JSONValue) -> Int? {
        guard case .number(let d) = value, d >= 0, d <= maxInteger, d.rounded(.towardZero) == d,
              d.sign == .plus else { return nil }
        return Int(d)
    }
}

/// A pass over the raw bytes of a header already accepted by `JSONParser`, recovering what the parsed
/// `JSONValue` has lost: where each top-level key starts, and how each number was written (`2`, or `2.0`,
/// `2e0`, `-0`, which `Double` cannot tell apart). The reference reader deserializes dims and offsets as
/// `usize`, so it rejects every number written with a fraction, an exponent or a sign; so does this reader.
struct SafetensorsHeaderScan {
    struct Number {
        /// Offset of the number within the header.
        var offset: Int
        var text: String
        /// The second-level key (for a tensor entry: "shape" or "data_offsets") the number sits under.
        var field: String
    }

    /// Offset within the header of each top-level key's opening quote, in order.
    var keyOffsets: [Int] = []
    /// The top-level keys as written between the quotes (escapes left as they are), in order.
    var keyNames: [String] = []
    /// How many containers are open at the end of the scanned bytes (0 for a complete document).
    var finalDepth = 0
    /// For each top-level member (by index), the first number in its value not written as a plain
    /// non-negative integer.
    var firstNonInteger: [Int: Number] = [:]

    init(_ header: UnsafeRawBufferPointer) {
        let n = header.count
        var i = 0
        var containers: [Bool] = []              // true for an object, false for an array
        var last: UInt8 = 0                      // the last structural byte, or "v" after a value
        var member = -1
        var field = ""
        while i < n {
            let c = header[i]
            switch c {
            case UInt8(ascii: "\""):
                let start = i
                i += 1
                while i < n, header[i] != UInt8(ascii: "\"") {
                    i += header[i] == UInt8(ascii: "\\") ? 2 : 1
                }
                let isKey = (last == UInt8(ascii: "{") || last == UInt8(ascii: ",")) && containers.last == true
                if isKey {
                    let text = String(decoding: UnsafeRawBufferPointer(rebasing: header[(start + 1)..<max(start + 1, min(i, n))]),
                                      as: UTF8.self)
                    if containers.count == 1 {
                        member += 1
                        keyOffsets.append(start)
                        keyNames.append(text)
                        field = ""
                    } else if containers.count == 2 {
                        field = text
                    }
                }
                i += 1
                last = UInt8(ascii: "v")
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                containers.append(c == UInt8(ascii: "{"))
                last = c
                i += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !containers.isEmpty { containers.removeLast() }
                last = UInt8(ascii: "v")
                i += 1
            case UInt8(ascii: ","), UInt8(ascii: ":"):
                last = c
                i += 1
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = i
                var plain = true
                while i < n {
                    let b = header[i]
                    if b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") {
                        i += 1
                    } else if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E")
                                || b == UInt8(ascii: "+") || b == UInt8(ascii: "-") {
                        plain = false
                        i += 1
                    } else {
                        break
                    }
                }
                if !plain, member >= 0, firstNonInteger[member] == nil {
                    let text = String(decoding: UnsafeRawBufferPointer(rebasing: header[start..<i]), as: UTF8.self)
                    firstNonInteger[member] = Number(offset: start, text: text, field: field)
                }
                last = UInt8(ascii: "v")
            default:
                i += 1                           // whitespace and the letters of true/false/null
            }
        }
        finalDepth = containers.count
    }
}
