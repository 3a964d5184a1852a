import Foundation
import QLoRAFormats
import Testing

/// Single-file and sharded checkpoints (spec §1.6, §5): one merged view, and every inconsistency between the
/// index and the shards refused with the index path and the tensor named.
@Suite("Safetensors checkpoints")
struct SafetensorsCheckpointTests {
    private let shard1 = "model-00001-of-00002.safetensors"
    private let shard2 = "model-00002-of-00002.safetensors"

    /// Writes two shards (a, b in shard 1; c in shard 2, plus `extra` tensors) and an index with `weightMap`
    /// (default: the truth) into `dir`.
    private func writeSharded(in dir: URL, weightMap: String? = nil,
                              extraInShard2: [SafetensorsWriter.FloatTensor] = []) throws {
        try SafetensorsWriter.write(floats: [(name: "a", shape: [2], values: [1, 2]), (name: "b", shape: [1], values: [3])],
                                    to: dir.appendingPathComponent(shard1))
        try SafetensorsWriter.write(floats: [(name: "c", shape: [2, 1], values: [4, 5])] + extraInShard2,
                                    as: .bf16, to: dir.appendingPathComponent(shard2))
        let map = weightMap ?? #"{"a":"\#(shard1)","b":"\#(shard1)","c":"\#(shard2)"}"#
        try SafetensorsFixture.write(#"{"metadata":{"total_size":16},"weight_map":\#(map)}"#,
                                     to: dir.appendingPathComponent(SafetensorsCheckpoint.indexFileName))
    }

    private func rejection(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) -> SafetensorsError? {
        do {
            _ = try SafetensorsCheckpoint(path: path)
            Issue.record("the checkpoint was accepted", sourceLocation: sourceLocation)
            return nil
        } catch {
            return error
        }
    }

    @Test func shardedDirectoryGivesOneMergedView() throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            try writeSharded(in: dir)
            let checkpoint = try SafetensorsCheckpoint(path: dir.path)
            #expect(checkpoint.files.count == 2)
            #expect(checkpoint.names == ["a", "b", "c"])
            #expect(checkpoint.count == 3)
            #expect(checkpoint.indexPath?.hasSuffix(SafetensorsCheckpoint.indexFileName) == true)
            let (file, info) = try #require(checkpoint.tensor(named: "c"))
            #expect(file.path.hasSuffix(shard2))
            #expect(info.dtype == .bf16 && info.shape == [2, 1])
            #expect(try checkpoint.floats(named: "c") == [4, 5])
            #expect(try checkpoint.floats(named: "a") == [1, 2])
            #expect(checkpoint.tensor(named: "d") == nil)
            // The index file itself opens the same checkpoint.
            let viaIndex = try SafetensorsCheckpoint(
                path: dir.appendingPathComponent(SafetensorsCheckpoint.indexFileName).path)
            #expect(viaIndex.names == checkpoint.names)
        }
    }

    @Test func singleFileOpensAsFileOrDirectory() throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent(SafetensorsCheckpoint.singleFileName)
            try SafetensorsWriter.write(floats: [(name: "w", shape: [1], values: [9])], to: url)
            for path in [url.path, dir.path] {
                let checkpoint = try SafetensorsCheckpoint(path: path)
                #expect(checkpoint.names == ["w"])
                #expect(checkpoint.indexPath == nil)
                #expect(try checkpoint.floats(named: "w") == [9])
            }
            let wrapped = SafetensorsCheckpoint(file: try SafetensorsFile(path: url.path))
            #expect(wrapped.tensor(named: "w")?.info.shape == [1])
        }
    }

    @Test func directoryWithoutACheckpointIsRejected() throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            let error = rejection(dir.path)
            #expect({ if case .noCheckpoint? = error?.kind { true } else { false } }())
            let missing = rejection(dir.appendingPathComponent("nope").path)
            #expect({ if case .cannotOpen? = missing?.kind { true } else { false } }())
        }
    }

    @Test func missingShardIsRejected() throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            try writeSharded(in: dir)
            try FileManager.default.removeItem(at: dir.appendingPathComponent(shard2))
            let error = rejection(dir.path)
            #expect(error?.path.hasSuffix(SafetensorsCheckpoint.indexFileName) == true)
            #expect({ if case .missingShard(shard2)? = error?.kind { true } else { false } }(), "\(String(describing: error))")
        }
    }

    @Test func tensorInTwoShardsIsRejected() throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            try writeSharded(in: dir, extraInShard2: [(name: "a", shape: [2], values: [1, 2])])
            let error = rejection(dir.path)
            #expect(error?.tensor == "a")
            #expect({ if case .tensorInTwoShards(shard1, shard2)? = error?.kind { true } else { false } }(), "\(String(describing: error))")
        }
    }

    @Test func nameInIndexButAbsentFromItsShardIsRejected() throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            try writeSharded(in: dir, weightMap: #"{"a":"\#(shard1)","b":"\#(shard1)","c":"\#(shard2)","ghost":"\#(shard2)"}"#)
            let error = rejection(dir.path)
            #expect(error?.tensor == "ghost")
            #expect({ if case .tensorMissingFromShard(shard2)? = error?.kind { true } else { false } }(), "\(String(describing: error))")
        }
    }

    @Test func tensorMissingFromTheIndexIsRejected() throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            try writeSharded(in: dir, weightMap: #"{"a":"\#(shard1)","c":"\#(shard2)"}"#)
            let error = rejection(dir.path)
            #expect(error?.tensor == "b")
            #expect({ if case .tensorNotInIndex(shard1)? = error?.kind { true } else { false } }(), "\(String(describing: error))")
        }
    }

    @Test func tensorInAnotherShardThanIndexedIsRejected() throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            try writeSharded(in: dir, weightMap: #"{"a":"\#(shard1)","b":"\#(shard2)","c":"\#(shard2)"}"#)
            let error = rejection(dir.path)
            #expect(error?.tensor == "b")
            #expect({ if case .tensorInWrongShard(indexed: shard2, found: shard1)? = error?.kind { true } else { false } }(),
                    "\(String(describing: error))")
        }
    }

    @Test(arguments: ["../model-00001-of-00002.safetensors", "sub/model.safetensors", "/etc/passwd", "..", ".", "",
                      "a..b.safetensors", "dir\\\\x.safetensors"])
    func shardNamesThatAreNotPlainFileNamesAreRejected(shard: String) throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            try writeSharded(in: dir, weightMap: #"{"a":"\#(shard1)","b":"\#(shard1)","c":"\#(shard)"}"#)
            let error = rejection(dir.path)
            #expect(error?.tensor == "c")
            let expected = shard.replacingOccurrences(of: "\\\\", with: "\\")
            #expect({ if case .badShardName(expected)? = error?.kind { true } else { false } }(), "\(String(describing: error))")
        }
    }

    @Test(arguments: [
        #"{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}"#,
        #"{"metadata":{}}"#,
        #"{"weight_map":[]}"#,
        #"{"weight_map":{}}"#,
        #"{"weight_map":{"a":1}}"#,
        #"{"metadata":3,"weight_map":{"a":"x.safetensors"}}"#,
        #"[]"#,
        #"{"weight_map":{"a":"x.safetensors"}"#,
    ])
    func malformedIndexIsRejected(index: String) throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            let url = dir.appendingPathComponent(SafetensorsCheckpoint.indexFileName)
            try SafetensorsFixture.write(index, to: url)
            let error = rejection(dir.path)
            #expect(error?.path == url.path)
            #expect({ if case .badIndex? = error?.kind { true } else { false } }(), "\(String(describing: error))")
        }
    }

    @Test func corruptShardIsReportedWithTheShardPath() throws {
        try SafetensorsFixture.withTemporaryDirectory { dir in
            try writeSharded(in: dir)
            let url = dir.appendingPathComponent(shard2)
            var bytes = [UInt8](try Data(contentsOf: url))
            bytes.append(0)                                  // a trailing byte
            try SafetensorsFixture.write(bytes, to: url)
            let error = rejection(dir.path)
            #expect(error?.path == url.path)
            #expect({ if case .incompleteBuffer? = error?.kind { true } else { false } }())
        }
    }
}
