// SafetensorsCheckpoint: one merged view over a single safetensors file or a sharded checkpoint described
// by `model.safetensors.index.json` (spec shared/spec/safetensors-and-gguf.md §1.6 and §5).

import Foundation

/// A model checkpoint made of one or more safetensors files, seen as one set of uniquely named tensors.
///
/// `init(path:)` accepts:
/// * a safetensors file (any name);
/// * a `*.index.json` shard index;
/// * a directory holding `model.safetensors` (preferred, as transformers does) or
///   `model.safetensors.index.json`.
///
/// A shard index must be a strict JSON object whose `weight_map` maps each tensor name to a plain shard file
/// name (no path separator, no `..`, not empty) in the index's directory; `metadata` (e.g. `total_size`) is
/// informational and not checked. Every shard is opened and validated; the tensor names found across the
/// shards must equal the weight_map's keys exactly, each in the shard the index names, and no name may
/// appear in two shards.
public struct SafetensorsCheckpoint: Sendable {
    /// The conventional single-file name.
    public static let singleFileName = "model.safetensors"
    /// The conventional shard index name.
    public static let indexFileName = "model.safetensors.index.json"
    /// The largest index file read (a real index is a few hundred KB).
    public static let maxIndexBytes = 64 << 20

    /// The opened files: one, or the shards sorted by file name.
    public let files: [SafetensorsFile]
    /// Every tensor name: file by file (in `files` order), each file's in header order.
    public let names: [String]
    /// The shard index's path, when the checkpoint is sharded.
    public let indexPath: String?

    private let index: [String: (file: Int, tensor: Int)]

    /// Opens the checkpoint at `path` (see the type's description).
    public init(path: String) throws(SafetensorsError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw SafetensorsError(path: path, kind: .cannotOpen(reason: "no such file or directory"))
        }
        if isDirectory.boolValue {
            let directory = URL(fileURLWithPath: path, isDirectory: true)
            let single = directory.appendingPathComponent(Self.singleFileName).path
            let indexFile = directory.appendingPathComponent(Self.indexFileName).path
            if FileManager.default.fileExists(atPath: single) {
                try self.init(files: [SafetensorsFile(path: single)], indexPath: nil)
            } else if FileManager.default.fileExists(atPath: indexFile) {
                try self.init(indexPath: indexFile)
            } else {
                throw SafetensorsError(path: path, kind: .noCheckpoint(
                    "the directory has neither \(Self.singleFileName) nor \(Self.indexFileName)"))
            }
        } else if path.hasSuffix(".index.json") {
            try self.init(indexPath: path)
        } else {
            try self.init(files: [SafetensorsFile(path: path)], indexPath: nil)
        }
    }

    /// Opens the checkpoint at `url` (see `init(path:)`).
    public init(url: URL) throws(SafetensorsError) {
        try self.init(path: url.path)
    }

    /// Wraps one already opened file.
    public init(file: SafetensorsFile) {
        // A single valid file has unique names (the JSON parser rejects repeated keys), so this cannot fail.
        var index: [String: (file: Int, tensor: Int)] = [:]
        for (t, info) in file.tensors.enumerated() { index[info.name] = (0, t) }
        self.files = [file]
        self.names = file.names
        self.indexPath = nil
        self.index = index
    }

    private init(files: [SafetensorsFile], indexPath: String?) throws(SafetensorsError) {
        var index: [String: (file: Int, tensor: Int)] = [:]
        var names: [String] = []
        for (f, file) in files.enumerated() {
            for (t, info) in file.tensors.enumerated() {
                if let earlier = index[info.name] {
                    throw SafetensorsError(path: indexPath ?? file.path, tensor: info.name,
                                           kind: .tensorInTwoShards(first: Self.fileName(files[earlier.file].path),
                                                                    second: Self.fileName(file.path)))
                }
                index[info.name] = (f, t)
                names.append(info.name)
            }
        }
        self.files = files
        self.names = names
        self.indexPath = indexPath
        self.index = index
    }

    private init(indexPath: String) throws(SafetensorsError) {
        func fail(_ kind: SafetensorsError.Kind, tensor: String? = nil) -> SafetensorsError {
            SafetensorsError(path: indexPath, tensor: tensor, kind: kind)
        }
        let bytes: [UInt8]
        do {
            let attributes = try FileManager.default.attributesOfItem(atPath: indexPath)
            if let size = attributes[.size] as? NSNumber, size.int64Value > Int64(Self.maxIndexBytes) {
                throw fail(.badIndex("the file is \(size) bytes, over the \(Self.maxIndexBytes)-byte limit"))
            }
            bytes = try RegularFile.read(indexPath)
        } catch let error as RegularFile.Failure {
            throw fail(.cannotOpen(reason: error.description))
        } catch let error as SafetensorsError {
            throw error
        } catch {
            throw fail(.cannotOpen(reason: "\(error.localizedDescription)"))
        }
        let root: JSONValue
        do {
            root = try JSONParser.parse(bytes)
        } catch {
            throw fail(.badIndex("not valid JSON: \(error.description)"))
        }
        guard case .object(let object) = root else {
            throw fail(.badIndex("the top level is a JSON \(root.typeName), not an object"))
        }
        if let meta = object["metadata"], meta.objectValue == nil, !meta.isNull {
            throw fail(.badIndex("metadata is a JSON \(meta.typeName), not an object"))
        }
        guard let mapValue = object["weight_map"] else { throw fail(.badIndex("no weight_map")) }
        guard case .object(let weightMap) = mapValue else {
            throw fail(.badIndex("weight_map is a JSON \(mapValue.typeName), not an object"))
        }
        guard !weightMap.isEmpty else { throw fail(.badIndex("weight_map is empty")) }

        var shardOf: [String: String] = [:]     // tensor → shard file name
        shardOf.reserveCapacity(weightMap.count)
        var shardNames = Set<String>()
        for pair in weightMap.pairs {
            guard case .string(let shard) = pair.value else {
                throw fail(.badIndex("weight_map value is a JSON \(pair.value.typeName), not a string"), tensor: pair.key)
            }
            guard Self.isPlainFileName(shard) else { throw fail(.badShardName(shard), tensor: pair.key) }
            shardOf[pair.key] = shard
            shardNames.insert(shard)
        }

        let directory = URL(fileURLWithPath: indexPath).deletingLastPathComponent()
        var files: [SafetensorsFile] = []
        for shard in shardNames.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let shardPath = directory.appendingPathComponent(shard).path
            guard FileManager.default.fileExists(atPath: shardPath) else { throw fail(.missingShard(shard)) }
            files.append(try SafetensorsFile(path: shardPath))
        }
        try self.init(files: files, indexPath: indexPath)

        // The names found must equal the weight_map's keys, each in the shard the index names.
        for file in files {
            let found = Self.fileName(file.path)
            for info in file.tensors {
                guard let indexed = shardOf[info.name] else {
                    throw fail(.tensorNotInIndex(shard: found), tensor: info.name)
                }
                guard indexed == found else {
                    throw fail(.tensorInWrongShard(indexed: indexed, found: found), tensor: info.name)
                }
            }
        }
        for pair in weightMap.pairs where index[pair.key] == nil {
            throw fail(.tensorMissingFromShard(shard: shardOf[pair.key] ?? ""), tensor: pair.key)
        }
    }

    /// True for a non-empty name with no `/`, `\`, NUL or `..`, and not `.`.
    static func isPlainFileName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && !name.contains("..")
            && !name.utf8.contains(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "\\") || $0 == 0 })
    }

    private static func fileName(_ path: String) -> String {
        URL(fileURLWithPath: path).lastPathComponent
    }

    /// The number of tensors.
    public var count: Int { names.count }

    /// The file holding the tensor called `name` and its entry, or nil when no file has it.
    public func tensor(named name: String) -> (file: SafetensorsFile, info: SafetensorsTensorInfo)? {
        guard let location = index[name] else { return nil }
        let file = files[location.file]
        return (file, file.tensors[location.tensor])
    }

    /// The Float32 elements of the tensor called `name` (see `SafetensorsFile.floats`), or nil when absent.
    public func floats(named name: String) throws(SafetensorsError) -> [Float]? {
        guard let (file, info) = tensor(named: name) else { return nil }
        return try file.floats(info)
    }
}
