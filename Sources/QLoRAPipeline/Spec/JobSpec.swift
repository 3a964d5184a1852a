import Foundation
import QLoRABackends
import Yams

/// A fine-tuning job as written by the user in YAML (snake_case keys, PEFT/torchtune vocabulary).
///
/// One optional section per stage; a stage runs when its section is present. Paths inside a spec
/// resolve relative to the spec file's directory. Decoding is strict (unknown keys are errors, see
/// `SpecDecoder`) and `validate()` range-checks every value, pointing at `file:line:column`.
public struct JobSpec: Codable, Sendable {
    public var name: String
    /// Run directory; relative to the spec file. Default: `runs/<name>` under the current directory.
    public var runDir: String?
    /// Seed for every random draw of the run (dropout, data order, initialization).
    public var seed: Int
    /// Which backend computes the train and evaluate stages (`auto`: the best available; `qlora run
    /// --backend` overrides it). The backend that ran is recorded in those stages' manifests and fingerprints.
    public var backend: BackendChoice = .auto
    public var dataset: DatasetSection?
    public var tokenizer: TokenizerSection?
    public var model: ModelSection?
    public var quantization: QuantizationSection?
    public var lora: LoRASection?
    public var training: TrainingSection?
    public var evaluation: EvaluationSection?
    public var package: PackageSection?

    /// The spec file as given on the command line (for messages) and the directory paths resolve against.
    public var sourceFile: String = "<memory>"
    public var baseDirectory: URL = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    /// Position of every key, by dotted path, for errors found after decoding.
    var marks: [String: Mark] = [:]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, runDir = "run_dir", seed, backend, dataset, tokenizer, model, quantization, lora, training
        case evaluation, package
    }

    public init(name: String, seed: Int = 42, dataset: DatasetSection? = nil) {
        self.name = name
        self.seed = seed
        self.dataset = dataset
    }

    /// Resolves a path written in the spec against the spec file's directory.
    public func resolve(_ path: String) -> URL {
        let expanded = (path as NSString).expandingTildeInPath
        if expanded.hasPrefix("/") { return URL(fileURLWithPath: expanded).standardizedFileURL }
        return baseDirectory.appendingPathComponent(expanded).standardizedFileURL
    }

    /// Where the run of the spec at `path` would live, read leniently from an invalid spec (its `name` and `run_dir`
    /// when they are strings), so the summary of a run refused for its spec has a place; nil when unknowable.
    public static func runDirectoryHint(specPath path: String, override: String?) -> (name: String, url: URL)? {
        let specURL = URL(fileURLWithPath: path).standardizedFileURL
        let name = (try? String(contentsOf: specURL, encoding: .utf8)).flatMap { text in
            (try? Yams.load(yaml: text)) as? [String: Any]
        }
        let specName = (name?["name"] as? String) ?? specURL.deletingPathExtension().lastPathComponent
        if let override { return (specName, URL(fileURLWithPath: override).standardizedFileURL) }
        if let runDir = name?["run_dir"] as? String {
            let expanded = (runDir as NSString).expandingTildeInPath
            return (specName, expanded.hasPrefix("/") ? URL(fileURLWithPath: expanded).standardizedFileURL
                        : specURL.deletingLastPathComponent().appendingPathComponent(expanded).standardizedFileURL)
        }
        guard let n = name?["name"] as? String, !n.isEmpty, !n.contains("/"), n != ".", n != ".." else { return nil }
        return (specName, URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("runs")
                    .appendingPathComponent(n).standardizedFileURL)
    }

    /// Where the run lives: `--run-dir` wins, then `run_dir` (relative to the spec), then `runs/<name>`.
    public func runDirectory(override: String?) -> URL {
        if let override { return URL(fileURLWithPath: override).standardizedFileURL }
        if let runDir { return resolve(runDir) }
        return URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            .appendingPathComponent("runs").appendingPathComponent(name).standardizedFileURL
    }
}

extension JobSpec {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        runDir = try c.decodeIfPresent(String.self, forKey: .runDir)
        seed = try c.decodeIfPresent(Int.self, forKey: .seed) ?? 42
        backend = try c.decodeIfPresent(BackendChoice.self, forKey: .backend) ?? .auto
        dataset = try c.decodeIfPresent(DatasetSection.self, forKey: .dataset)
        tokenizer = try c.decodeIfPresent(TokenizerSection.self, forKey: .tokenizer)
        model = try c.decodeIfPresent(ModelSection.self, forKey: .model)
        quantization = try c.decodeIfPresent(QuantizationSection.self, forKey: .quantization)
        lora = try c.decodeIfPresent(LoRASection.self, forKey: .lora)
        training = try c.decodeIfPresent(TrainingSection.self, forKey: .training)
        evaluation = try c.decodeIfPresent(EvaluationSection.self, forKey: .evaluation)
        package = try c.decodeIfPresent(PackageSection.self, forKey: .package)
    }

    /// Parses and strictly decodes YAML text; `file` names the source in errors and anchors relative paths.
    /// `overrides` are `key.path=value` settings applied over the file (`qlora run --set`, sweeps from `qlora render`);
    /// the value is YAML (`1e-4`, `true`, `[q_proj, v_proj]`).
    public static func parse(yaml: String, file: String, overrides: [String] = []) throws -> JobSpec {
        var node: Node?
        do {
            node = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw SpecError(yamlError: error, file: file)
        }
        guard var node else {
            throw SpecError(file: file, line: 1, column: 1, keyPath: "", message: "the spec is empty")
        }
        for setting in overrides { node = try applying(setting, to: node) }
        let decoder = SpecDecoder(file: file)
        var spec = try decoder.decode(JobSpec.self, from: node)
        spec.sourceFile = file
        spec.baseDirectory = URL(fileURLWithPath: file).deletingLastPathComponent().standardizedFileURL
        spec.marks = decoder.marks
        return spec
    }

    /// `node` with `setting` (`a.b.c=value`) set, the mappings on the way created when missing.
    static func applying(_ setting: String, to node: Node) throws -> Node {
        func fail(_ message: String) -> SpecError {
            SpecError(file: "--set \(setting)", line: 1, column: 1, keyPath: "", message: message)
        }
        guard let eq = setting.firstIndex(of: "=") else { throw fail("expected key.path=value") }
        let path = setting[..<eq].split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard !path.isEmpty, path.allSatisfy({ !$0.isEmpty }) else { throw fail("expected key.path=value") }
        let value: Node
        do { value = try Yams.compose(yaml: String(setting[setting.index(after: eq)...])) ?? Node("") } catch {
            throw fail("the value is not YAML: \(error)")
        }
        func set(_ node: Node, _ path: ArraySlice<String>) throws -> Node {
            guard let key = path.first else { return value }
            guard case .mapping(let mapping) = node else {
                throw fail("\(path.joined(separator: ".")): the spec has a value there, not a section")
            }
            var pairs = Array(mapping)
            if let i = pairs.firstIndex(where: { $0.key.string == key }) {
                pairs[i].value = try set(pairs[i].value, path.dropFirst())
            } else {
                pairs.append((Node(key), try set(.mapping(Node.Mapping([])), path.dropFirst())))
            }
            return .mapping(Node.Mapping(pairs))
        }
        return try set(node, path[...])
    }

    /// Reads, decodes and validates a spec file (with `overrides`, as `parse` applies them). Throws
    /// `SpecError`/`SpecErrors` for anything wrong.
    public static func load(path: String, overrides: [String] = []) throws -> JobSpec {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SpecError(file: path, line: 1, column: 1, keyPath: "",
                            message: "cannot read the spec file: \(FileManager.default.fileExists(atPath: path) ? "not valid UTF-8 or unreadable" : "no such file")")
        }
        let spec = try parse(yaml: text, file: path, overrides: overrides)
        try spec.validate()
        return spec
    }

    /// The spec as run, with every default filled in, as YAML (written to `<run>/spec.yaml`).
    public func normalizedYAML() throws -> String {
        let yaml = try YAMLEncoder().encode(self)
        guard let node = try Yams.compose(yaml: yaml) else { return yaml }
        return try Yams.serialize(node: Self.plainNumbers(node))
    }

    /// Yams writes doubles in scientific notation (`3.2e+1`); people write `32.0` and `0.0002`.
    private static func plainNumbers(_ node: Node) -> Node {
        switch node {
        case .scalar(let scalar):
            guard scalar.style == .plain, scalar.string.contains("e"), let value = Double(scalar.string) else { return node }
            return Node(value.description)
        case .mapping(let mapping):
            return .mapping(Node.Mapping(mapping.map { ($0.key, plainNumbers($0.value)) }))
        case .sequence(let sequence):
            return .sequence(Node.Sequence(sequence.map(plainNumbers)))
        case .alias:
            return node
        }
    }
}

extension SpecError {
    init(yamlError: YamlError, file: String) {
        switch yamlError {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let prefix = context.map { "\($0.text) " } ?? ""
            self.init(file: file, line: mark.line, column: mark.column, keyPath: "",
                      message: "invalid YAML: \(prefix)\(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            self.init(file: file, line: context.mark.line, column: context.mark.column, keyPath: "",
                      message: "duplicate keys: \(duplicates.joined(separator: ", "))")
        default:
            self.init(file: file, line: 1, column: 1, keyPath: "", message: "invalid YAML: \(yamlError)")
        }
    }
}

extension BackendChoice: SpecEnum {}
