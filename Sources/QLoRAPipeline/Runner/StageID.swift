/// The six stages, in run order. Dependencies form a DAG: `prepare` depends on the model only, so a
/// data change never re-quantizes the base model.
public enum StageID: String, CaseIterable, Codable, Sendable, Comparable {
    case ingest, tokenize, prepare, train, evaluate, package

    /// Stages implemented in this build; a spec enabling another one is rejected by `validate`.
    public static let available: [StageID] = [.ingest, .tokenize, .prepare, .train, .evaluate, .package]

    /// Spec sections that configure (and enable) the stage.
    public var sectionKeys: [String] {
        switch self {
        case .ingest: return ["dataset"]
        case .tokenize: return ["tokenizer"]
        case .prepare: return ["model", "quantization"]
        case .train: return ["lora", "training"]
        case .evaluate: return ["evaluation"]
        case .package: return ["package"]
        }
    }

    /// Stages whose artifacts this one reads; they must be enabled too.
    public var upstream: [StageID] {
        switch self {
        case .ingest, .prepare: return []
        case .tokenize: return [.ingest]
        case .train: return [.tokenize, .prepare]
        case .evaluate: return [.tokenize, .prepare, .train]
        case .package: return [.train]
        }
    }

    /// Upstream stages whose results this one uses when they are enabled (package includes the eval report).
    public var optionalUpstream: [StageID] {
        self == .package ? [.evaluate] : []
    }

    public static func < (a: StageID, b: StageID) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Stages whose sections appear in the spec, in run order.
    public static func enabled(by spec: JobSpec) -> [StageID] {
        allCases.filter { stage in
            stage.sectionKeys.contains { key in
                switch key {
                case "dataset": return spec.dataset != nil
                case "tokenizer": return spec.tokenizer != nil
                case "model": return spec.model != nil
                case "quantization": return spec.quantization != nil
                case "lora": return spec.lora != nil
                case "training": return spec.training != nil
                case "evaluation": return spec.evaluation != nil
                case "package": return spec.package != nil
                default: return false
                }
            }
        }
    }

    /// Every stage downstream of this one (transitively), in run order.
    public var downstream: [StageID] {
        StageID.allCases.filter { $0 != self && $0.dependsOn(self) }
    }

    func dependsOn(_ other: StageID) -> Bool {
        (upstream + optionalUpstream).contains { $0 == other || $0.dependsOn(other) }
    }
}

/// Version and build facts recorded in every manifest.
public enum ToolInfo {
    public static let version = "0.1.0"

    /// Compiler, configuration and platform of this build (no host names or times: packages stay reproducible).
    public static var build: [String: String] {
        var b: [String: String] = [:]
        #if DEBUG
        b["configuration"] = "debug"
        #else
        b["configuration"] = "release"
        #endif
        #if compiler(>=6.3)
        b["compiler"] = "swift 6.3+"
        #elseif compiler(>=6.2)
        b["compiler"] = "swift 6.2"
        #elseif compiler(>=6.1)
        b["compiler"] = "swift 6.1"
        #else
        b["compiler"] = "swift 6.0"
        #endif
        #if arch(x86_64)
        b["arch"] = "x86_64"
        #elseif arch(arm64)
        b["arch"] = "arm64"
        #endif
        #if os(Linux)
        b["os"] = "linux"
        #elseif os(macOS)
        b["os"] = "macos"
        #endif
        return b
    }
}
