import Testing
import QLoRAFormats

@Suite("Byte sources")
struct ByteSourceTests {
    private func sampleBytes(count: Int) -> [UInt8] {
        var rng = RowsRandom(seed: 3)
        var text: [UInt8] = []
        var row = 0
        while text.count < count {
            row += 1
            text += Array("{\"id\": \(row), \"text\": \"row \(row) \(UInt32.random(in: 0...UInt32.max, using: &rng))\"}\n".utf8)
        }
        return text
    }

    @Test func readsPlainFileCompletely() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let path = dir + "/data.jsonl"
            let bytes = sampleBytes(count: 100_000)
            try RowsFixture.writeFile(path, bytes)
            var source = try FileByteSource(path: path)
            #expect(try RowsFixture.drain(&source, chunk: 777) == bytes)
        }
    }

    @Test func missingFileErrorNamesPathAndReason() throws {
        let path = "/nonexistent-dir/rows.jsonl"
        #expect(throws: ReaderError(path: path, kind: .cannotOpen(reason: "No such file or directory"))) {
            _ = try FileByteSource(path: path)
        }
        #expect(throws: ReaderError(path: path + ".gz", kind: .cannotOpen(reason: "No such file or directory"))) {
            _ = try openByteSource(path: path + ".gz")
        }
        let error = ReaderError(path: path, kind: .cannotOpen(reason: "No such file or directory"))
        #expect(error.description == "/nonexistent-dir/rows.jsonl: cannot open: No such file or directory")
    }

    @Test func openingADirectoryFailsWithPath() throws {
        // Only regular files open (Sources/QLoRAFormats/IO/RegularFile.swift).
        try RowsFixture.withTemporaryDirectory { dir in
            #expect(throws: ReaderError(path: dir, kind: .cannotOpen(reason: "not a regular file (a directory)"))) {
                _ = try FileByteSource(path: dir)
            }
            return
        }
    }

    @Test func gzipRoundTripsThroughZlib() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let path = dir + "/data.jsonl.gz"
            let bytes = sampleBytes(count: 3_000_000)
            try RowsFixture.writeGzip(path, bytes)
            #expect(try RowsFixture.readFile(path).count < bytes.count / 2)
            var source = try GzipByteSource(path: path)
            #expect(try RowsFixture.drain(&source, chunk: 65_536) == bytes)
            var chosen = try openByteSource(path: path)
            #expect(chosen is GzipByteSource)
            #expect(try RowsFixture.drain(&chosen, chunk: 1 << 20) == bytes)
        }
    }

    @Test func gzipReadsConcatenatedMembers() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            try RowsFixture.writeGzip(dir + "/a.gz", Array("first\n".utf8))
            try RowsFixture.writeGzip(dir + "/b.gz", Array("second\n".utf8))
            let path = dir + "/both.gz"
            try RowsFixture.writeFile(path, try RowsFixture.readFile(dir + "/a.gz") + RowsFixture.readFile(dir + "/b.gz"))
            var source = try GzipByteSource(path: path)
            #expect(String(decoding: try RowsFixture.drain(&source), as: UTF8.self) == "first\nsecond\n")
        }
    }

    @Test func truncatedGzipThrowsInsteadOfEndingEarly() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let full = dir + "/full.gz"
            try RowsFixture.writeGzip(full, sampleBytes(count: 500_000))
            let compressed = try RowsFixture.readFile(full)
            // Cut inside the header, the deflate stream, the CRC and the length field.
            for keep in [1, 5, 12, compressed.count / 3, compressed.count / 2, compressed.count - 8, compressed.count - 1] {
                let path = dir + "/cut-\(keep).gz"
                try RowsFixture.writeFile(path, Array(compressed[0..<keep]))
                #expect(throws: ReaderError(path: path, kind: .truncatedGzip), "kept \(keep) bytes") {
                    var source = try GzipByteSource(path: path)
                    _ = try RowsFixture.drain(&source)
                }
            }
        }
    }

    @Test func truncatedGzipFailsLineReaderAtTheLineBeingRead() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let full = dir + "/full.jsonl.gz"
            try RowsFixture.writeGzip(full, sampleBytes(count: 200_000))
            let compressed = try RowsFixture.readFile(full)
            let path = dir + "/cut.jsonl.gz"
            try RowsFixture.writeFile(path, Array(compressed[0..<(compressed.count - 4)]))
            let cutMidway = dir + "/cut-midway.jsonl.gz"
            try RowsFixture.writeFile(cutMidway, Array(compressed[0..<(compressed.count / 2)]))
            let midwayReader = try LineReader(path: cutMidway, bufferSize: 4096)
            var delivered = 0
            let midwayError = #expect(throws: ReaderError.self) {
                try midwayReader.forEachLine { _, _, _ in delivered += 1 }
            }
            #expect(delivered > 0)
            #expect(midwayError == ReaderError(path: cutMidway, line: delivered + 1, kind: .truncatedGzip))
            let reader = try LineReader(path: path, bufferSize: 4096)
            var lines = 0
            let error = #expect(throws: ReaderError.self) {
                try reader.forEachLine { _, _, _ in lines += 1 }
            }
            // Every line decompressed (only the length field is missing); the error names the next line.
            #expect(lines == String(decoding: sampleBytes(count: 200_000), as: UTF8.self).split(separator: "\n").count)
            #expect(error == ReaderError(path: path, line: lines + 1, kind: .truncatedGzip))
            #expect(error?.description == "\(path):\(lines + 1): truncated gzip data (unexpected end of file)")
        }
    }

    @Test func emptyGzipFileIsTruncated() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let path = dir + "/empty.gz"
            try RowsFixture.writeFile(path, [])
            #expect(throws: ReaderError(path: path, kind: .truncatedGzip)) { _ = try GzipByteSource(path: path) }
        }
    }

    @Test func gzipWithBadChecksumIsCorrupt() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let path = dir + "/bad-crc.gz"
            try RowsFixture.writeGzip(path, sampleBytes(count: 10_000))
            var bytes = try RowsFixture.readFile(path)
            bytes[bytes.count - 8] ^= 0xFF    // first byte of the CRC-32 trailer
            try RowsFixture.writeFile(path, bytes)
            #expect(throws: ReaderError(path: path, kind: .corruptGzip(reason: "incorrect data check"))) {
                var source = try GzipByteSource(path: path)
                _ = try RowsFixture.drain(&source)
            }
        }
    }

    @Test func plainDataWithGzSuffixIsRejected() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let path = dir + "/plain.jsonl.gz"
            try RowsFixture.writeFile(path, Array("{\"a\": 1}\n".utf8))
            #expect(throws: ReaderError(path: path, kind: .notGzip)) { _ = try openByteSource(path: path) }
            #expect(ReaderError(path: path, kind: .notGzip).description == path + ": not gzip data (wrong magic bytes)")
        }
    }

    @Test func plainSuffixOpensFileSource() throws {
        try RowsFixture.withTemporaryDirectory { dir in
            let path = dir + "/rows.jsonl"
            try RowsFixture.writeFile(path, Array("x\n".utf8))
            let source = try openByteSource(path: path)
            #expect(source is FileByteSource)
        }
    }

    @Test func memorySourceHandsOutBytesInOrder() throws {
        var source = MemoryByteSource("hello, world")
        #expect(try RowsFixture.drain(&source, chunk: 5) == Array("hello, world".utf8))
    }
}
