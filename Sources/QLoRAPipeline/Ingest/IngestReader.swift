import Foundation
import QLoRAFormats

/// Streams one dataset file (JSONL, JSON array or CSV, optionally gzip'd) row by row into an
/// `IngestWriter`. Row problems become rejections with the row's line; problems that make the rest of
/// the file unreadable (a broken gzip stream, an unterminated JSON array or CSV quote) fail the stage
/// with `file:line`.
enum IngestReader {
    /// The longest JSONL line, JSON array element or CSV record accepted (64 MiB, far beyond any training example): a longer one is a
    /// rejected row, skipped as it streams past, where it used to be read whole (a single 900 MB line allocated
    /// gigabytes; a CSV record could hold 256 MiB and then fail the whole file).
    static let maxRowBytes = 64 << 20

    static func read(file: DatasetFile, url: URL, into writer: IngestWriter, progress: ProgressReporter) throws {
        guard let kind = RowFileKind(path: file.path) else {
            throw StageFailure("\(file.path): cannot tell the file type (expected .jsonl, .json or .csv, optionally .gz)")
        }
        let normalizer = ExampleNormalizer(format: file.format, fieldMap: file.fieldMap)
        // Progress is measured in bytes of the file on disk (compressed bytes for .gz), so even a gzip'd file has a
        // total, a rate and an ETA; a gzip of gigabytes of blank lines shows its progress instead of churning
        // silently. Rows report it when the reader has moved on by 64 KiB, not per row: a row can be one byte.
        let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int64) ?? nil
        progress.start("reading \(file.path)", total: size, unit: .bytes)
        var reported = 0
        func report(_ position: Int) {
            guard position - reported >= 1 << 16 else { return }
            reported = position
            progress.update(Int64(position))
        }
        /// A row over `maxRowBytes` (a JSONL line, JSON element or CSV record) is a rejected row, skipped as it streams.
        func rejectTooLong(line number: Int, length: Int, position: Int) throws {
            try writer.reject(source: file.path, line: number,
                              Rejection(.rowTooLong, "the row is \(length) bytes, more than the \(maxRowBytes >> 20) MiB a row may have"),
                              excerpt: nil)
            report(position)
        }
        writer.beginFile(path: file.path, format: file.format)
        var bytes: Int64 = 0
        do {
            switch kind {
            case .jsonl:
                let reader = try LineReader(path: url.path, maxLineLength: maxRowBytes)
                let tooLong = { (number: Int, length: Int) throws in
                    try rejectTooLong(line: number, length: length, position: reader.fileBytesRead)
                }
                try reader.forEachLine(tooLong: tooLong) { line, number, terminated in
                    try jsonlRow(line, number: number, terminated: terminated, file: file, normalizer: normalizer, writer: writer)
                    report(reader.fileBytesRead)
                }
                bytes = Int64(reader.bytesRead)
            case .json:
                let reader = try JSONArrayReader(path: url.path, maxElementLength: maxRowBytes)
                let tooLong = { (number: Int, length: Int) throws in
                    try rejectTooLong(line: number, length: length, position: reader.fileBytesRead)
                }
                try reader.forEachElement(tooLong: tooLong) { element, number in
                    try jsonRow(element, number: number, terminated: true, file: file, normalizer: normalizer, writer: writer)
                    report(reader.fileBytesRead)
                }
                bytes = Int64(reader.bytesRead)
            case .csv:
                let reader = try CSVReader(path: url.path, maxRecordLength: maxRowBytes)
                var header: [String]?
                // A record that is not text is a rejected row, as a JSONL line would be (a bad header
                // fails the file: the columns are unknown).
                let invalid = { (error: ReaderError, record: UnsafeRawBufferPointer) throws in
                    guard header != nil else { throw StageFailure("\(error)") }
                    let reason: RejectionReason = error.kind == .nulByte ? .nulByte : .invalidUTF8
                    try writer.reject(source: file.path, line: error.line ?? 0, Rejection(reason, error.message),
                                      excerpt: Array(record))
                }
                // A record over the row limit is a rejected row, like an overlong JSONL line (the header fails the file).
                let tooLong = { (number: Int, length: Int) throws in
                    guard header != nil else {
                        throw StageFailure("\(file.path):\(number): the header row is \(length) bytes, more than the \(maxRowBytes >> 20) MiB a row may have")
                    }
                    try rejectTooLong(line: number, length: length, position: reader.fileBytesRead)
                }
                try reader.forEachRecord(invalid: invalid, tooLong: tooLong) { fields, number in
                    guard let columns = header else {
                        header = try csvHeader(fields, file: file, normalizer: normalizer, line: number)
                        return
                    }
                    try csvRow(fields, columns: columns, number: number, file: file, normalizer: normalizer, writer: writer)
                    report(reader.fileBytesRead)
                }
                bytes = Int64(reader.bytesRead)
                if header == nil { throw StageFailure("\(file.path): the CSV file is empty (no header row)") }
            }
        } catch let failure as StageFailure {
            throw failure
        } catch {
            throw StageFailure("\(file.path): \(error)")
        }
        progress.finish(size ?? bytes)
        writer.endFile(bytes: bytes)
    }

    private static func jsonlRow(_ line: UnsafeRawBufferPointer, number: Int, terminated: Bool, file: DatasetFile,
                                 normalizer: ExampleNormalizer, writer: IngestWriter) throws {
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) {
            writer.blankLine()
            return
        }
        try jsonRow(line, number: number, terminated: terminated, file: file, normalizer: normalizer, writer: writer)
    }

    private static func jsonRow(_ bytes: UnsafeRawBufferPointer, number: Int, terminated: Bool, file: DatasetFile,
                                normalizer: ExampleNormalizer, writer: IngestWriter) throws {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch let error {
            let reason: RejectionReason
            switch error.kind {
            case .invalidUTF8: reason = .invalidUTF8
            default: reason = terminated ? .invalidJSON : .truncatedLine
            }
            // The error's line is relative to the row (a JSON array element may span lines).
            try writer.reject(source: file.path, line: number + error.line - 1,
                              Rejection(reason, "\(error.message) at column \(error.column)"), excerpt: Array(bytes))
            return
        }
        switch normalizer.normalize(value) {
        case .success(let content): try writer.accept(content, format: file.format, source: "\(file.path):\(number)")
        case .failure(let rejection): try writer.reject(source: file.path, line: number, rejection, excerpt: Array(bytes))
        }
    }

    private static func csvHeader(_ fields: [String], file: DatasetFile, normalizer: ExampleNormalizer, line: Int) throws -> [String] {
        let required: [String]
        switch file.format {
        case .alpaca: required = ["instruction", "output"]
        case .completion: required = ["prompt", "completion"]
        case .guanaco, .text: required = ["text"]
        case .chat: throw StageFailure("\(file.path): chat rows need JSON or JSONL, not CSV")
        }
        for field in required where !fields.contains(normalizer.column(field)) {
            throw StageFailure("\(file.path):\(line): the CSV header has no column `\(normalizer.column(field))` (columns: \(fields.joined(separator: ", ")))")
        }
        return fields
    }

    private static func csvRow(_ fields: [String], columns: [String], number: Int, file: DatasetFile,
                               normalizer: ExampleNormalizer, writer: IngestWriter) throws {
        guard fields.count == columns.count else {
            try writer.reject(source: file.path, line: number,
                              Rejection(.csvColumnCount, "expected \(columns.count) columns, got \(fields.count)"), excerpt: nil)
            return
        }
        var object = JSONObject()
        for (name, value) in zip(columns, fields) { object[name] = .string(value) }
        switch normalizer.normalize(.object(object)) {
        case .success(let content): try writer.accept(content, format: file.format, source: "\(file.path):\(number)")
        case .failure(let rejection): try writer.reject(source: file.path, line: number, rejection, excerpt: nil)
        }
    }
}
