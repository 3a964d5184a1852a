import Foundation

/// Checks an unpacked adapter package (a directory) against its `manifest.json`:
///
/// 1. the manifest parses, is a `qlora-adapter` manifest of a known version, and its own digest holds;
/// 2. every member is listed, every listed file exists, and sizes and SHA-256 match (no unlisted extras,
///    no links or special files);
/// 3. `adapter_config.json` is a PEFT LoRA config whose r, alpha, dropout, rsLoRA flag and target modules
///    equal the manifest's;
/// 4. `adapter_model.safetensors` holds exactly the tensors PEFT expects for the base architecture
///    (`base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_{A,B}.weight`, A `[r, in]`,
///    B `[out, r]`, float dtypes) and its header is well formed.
///
/// All problems are collected; each names the member it concerns.
public enum AdapterVerifier {
    public struct Report: Sendable {
        public var manifest: AdapterManifest
        /// Human lines, one per check that passed.
        public var checks: [String]
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var source: String
        /// `member: what is wrong`, in the order found.
        public var problems: [String]
        public var description: String {
            "\(source): verification failed\n" + problems.map { "  - \($0)" }.joined(separator: "\n")
        }
    }

    public static func verify(directory: URL, source: String? = nil) throws -> Report {
        let label = source ?? directory.path
        var problems: [String] = []
        var checks: [String] = []
        func fail(_ text: String) throws -> Never { throw Failure(source: label, problems: problems + [text]) }

        // 1. The manifest itself.
        let manifestURL = directory.appendingPathComponent(AdapterManifest.fileName)
        guard let manifestBytes = FileManager.default.contents(atPath: manifestURL.path) else {
            try fail("\(AdapterManifest.fileName): missing (not a qlora adapter package)")
        }
        let manifest: AdapterManifest
        do { manifest = try JSONDecoder().decode(AdapterManifest.self, from: manifestBytes) } catch {
            try fail("\(AdapterManifest.fileName): not a valid manifest (\(describe(error)))")
        }
        guard manifest.format == AdapterManifest.formatName else {
            try fail("\(AdapterManifest.fileName): format is \"\(manifest.format)\", expected \"\(AdapterManifest.formatName)\"")
        }
        guard manifest.formatVersion <= AdapterManifest.currentFormatVersion else {
            try fail("\(AdapterManifest.fileName): format_version \(manifest.formatVersion) is newer than this tool reads (\(AdapterManifest.currentFormatVersion))")
        }
        if AdapterManifest.selfDigest(of: manifestBytes) != manifest.manifestSHA256 {
            problems.append("\(AdapterManifest.fileName): content does not match its manifest_sha256 (the manifest was modified)")
        } else {
            checks.append("manifest.json: digest ok")
        }

        // 2. Members vs the file list.
        let members = try listMembers(directory, problems: &problems)
        let listed = Dictionary(manifest.files.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        for name in members where name != AdapterManifest.fileName && listed[name] == nil {
            problems.append("\(name): present but not listed in the manifest")
        }
        var intact = Set<String>()
        for file in manifest.files {
            guard members.contains(file.path) else { problems.append("\(file.path): listed in the manifest but missing"); continue }
            let digest: FileDigest
            do { digest = try FileDigest.of(file: directory.appendingPathComponent(file.path)) } catch {
                problems.append("\(file.path): cannot be read (\(error))")
                continue
            }
            if digest.size != file.size {
                problems.append("\(file.path): size \(digest.size) bytes, the manifest says \(file.size)")
            } else if digest.sha256 != file.sha256 {
                problems.append("\(file.path): sha256 \(digest.sha256) does not match the manifest's \(file.sha256)")
            } else {
                intact.insert(file.path)
            }
        }
        if intact.count == manifest.files.count { checks.append("\(manifest.files.count) files: sizes and sha256 ok") }

        // 3. The PEFT config.
        let adapter = manifest.adapter
        let configName = PEFTAdapterFormat.configFileName
        if !listed.keys.contains(configName) { problems.append("\(configName): not in the package") }
        else if intact.contains(configName) {
            let before = problems.count
            checkConfig(directory.appendingPathComponent(configName), adapter, &problems)
            if problems.count == before { checks.append("\(configName): PEFT LoRA config consistent with the manifest") }
        }

        // 4. The PEFT tensors.
        let weightsName = PEFTAdapterFormat.weightsFileName
        if !listed.keys.contains(weightsName) { problems.append("\(weightsName): not in the package") }
        else if intact.contains(weightsName) {
            let before = problems.count
            let count = checkTensors(directory.appendingPathComponent(weightsName), manifest, &problems)
            if problems.count == before {
                checks.append("\(weightsName): \(count) tensors with PEFT names and shapes for \(manifest.baseModel.architecture.layers) layers")
            }
        }
        guard problems.isEmpty else { throw Failure(source: label, problems: problems) }
        return Report(manifest: manifest, checks: checks)
    }

    /// Relative paths of the regular files under `directory`; links and special files are problems.
    static func listMembers(_ directory: URL, problems: inout [String]) throws -> Set<String> {
        let fm = FileManager.default
        guard let walker = fm.enumerator(atPath: directory.path) else {
            throw Failure(source: directory.path, problems: ["cannot list the directory"])
        }
        var names = Set<String>()
        while let relative = walker.nextObject() as? String {
            let path = directory.appendingPathComponent(relative).path
            var st = stat()
            guard lstat(path, &st) == 0 else { problems.append("\(relative): cannot stat"); continue }
            switch st.st_mode & S_IFMT {
            case S_IFREG: names.insert(relative)
            case S_IFDIR: continue
            case S_IFLNK: problems.append("\(relative): a symbolic link (packages hold regular files only)")
            default: problems.append("\(relative): not a regular file")
            }
        }
        return names
    }

    /// `adapter_config.json` must pass `PEFTAdapterFormat.parseConfig` (the rules every adapter reader uses),
    /// be a causal-LM adapter with `base_model_name_or_path` present (as the package stage writes it), and agree
    /// with the manifest's r, alpha, dropout, rsLoRA flag and target modules.
    static func checkConfig(_ url: URL, _ adapter: AdapterManifest.Adapter, _ problems: inout [String]) {
        let name = url.lastPathComponent
        guard let bytes = FileManager.default.contents(atPath: url.path) else { problems.append("\(name): cannot be read"); return }
        let config: PEFTAdapterFormat.Config
        do { config = try PEFTAdapterFormat.parseConfig([UInt8](bytes), file: name) } catch {
            problems.append("\(error)")
            return
        }
        let json = try? JSONParser.parse([UInt8](bytes))
        if json?["task_type"]?.stringValue != "CAUSAL_LM" { problems.append("\(name): task_type must be \"CAUSAL_LM\"") }
        if json?["base_model_name_or_path"] == nil { problems.append("\(name): base_model_name_or_path is missing") }
        if config.rank != adapter.rank { problems.append("\(name): r is \(config.rank), the manifest says \(adapter.rank)") }
        if config.alpha != adapter.alpha { problems.append("\(name): lora_alpha is \(config.alpha), the manifest says \(adapter.alpha)") }
        if config.dropout != adapter.dropout { problems.append("\(name): lora_dropout is \(config.dropout), the manifest says \(adapter.dropout)") }
        if config.useRSLoRA != adapter.useRSLoRA { problems.append("\(name): use_rslora differs from the manifest") }
        guard let modules = config.targetModules else {
            problems.append("\(name): target_modules is missing or not a list of names")
            return
        }
        if Set(modules) != Set(adapter.targetModules) {
            problems.append("\(name): target_modules \(modules) differ from the manifest's \(adapter.targetModules)")
        }
    }

    static func checkTensors(_ url: URL, _ manifest: AdapterManifest, _ problems: inout [String]) -> Int {
        let name = url.lastPathComponent
        let file: SafetensorsFile
        do { file = try SafetensorsFile(path: url.path) } catch {
            problems.append("\(name): \(error)")
            return 0
        }
        let arch = manifest.baseModel.architecture, r = manifest.adapter.rank
        var expected: [String: [Int]] = [:]
        for module in manifest.adapter.targetModules {
            guard let shape = arch.shape(of: module) else { problems.append("\(name): unknown target module \(module)"); continue }
            for layer in 0..<arch.layers {
                expected[PEFTAdapterFormat.key(layer: layer, module: module, isA: true)] = [r, shape.in]
                expected[PEFTAdapterFormat.key(layer: layer, module: module, isA: false)] = [shape.out, r]
            }
        }
        var seen = 0
        for info in file.tensors {
            guard let shape = expected[info.name] else { problems.append("\(name): unexpected tensor \(info.name)"); continue }
            seen += 1
            if info.shape != shape { problems.append("\(name): \(info.name) has shape \(info.shape), expected \(shape)") }
            if ![.f32, .f16, .bf16].contains(info.dtype) { problems.append("\(name): \(info.name) has dtype \(info.dtype.rawValue), expected F32, F16 or BF16") }
        }
        let missing = Set(expected.keys).subtracting(file.names)
        if let first = missing.sorted().first {
            problems.append("\(name): \(missing.count) expected tensors missing, e.g. \(first)")
        }
        let params = file.tensors.reduce(0) { $0 + $1.shape.reduce(1, *) }
        if missing.isEmpty, params != manifest.adapter.trainableParameters {
            problems.append("\(name): \(params) parameters, the manifest says \(manifest.adapter.trainableParameters)")
        }
        return seen
    }

    static func describe(_ error: Error) -> String {
        if let e = error as? DecodingError {
            switch e {
            case .keyNotFound(let key, let ctx): return "missing key \((ctx.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
            case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .dataCorrupted(let ctx):
                return "\(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)"
            @unknown default: return "\(e)"
            }
        }
        return "\(error)"
    }
}
