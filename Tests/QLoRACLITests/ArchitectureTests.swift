import Foundation
import Testing

/// The module graph in Package.swift is the one the sources import (docs/ARCHITECTURE.md draws it): no target
/// imports a sibling it does not declare, and none declares one it does not import.
@Suite struct ArchitectureTests {
    /// `name → declared dependencies` of every non-test target (products of other packages by their product name).
    static func declaredTargets() throws -> [String: Set<String>] {
        let manifest = try String(contentsOf: CLI.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        var out: [String: Set<String>] = [:]
        let target = try Regex(#"\.(?:target|executableTarget|systemLibrary)\(name: "(\w+)"(?:, dependencies: \[([^\]]*)\])?"#)
        for match in manifest.matches(of: target) {
            let name = String(match.output[1].substring!)
            let list = match.output[2].substring.map(String.init) ?? ""
            var deps = Set<String>()
            for dep in list.matches(of: try Regex(#"(?:"(\w+)"|\.product\(name: "(\w+)")"#)) {
                deps.insert(String((dep.output[1].substring ?? dep.output[2].substring)!))
            }
            out[name] = deps
        }
        return out
    }

    /// Modules imported by the Swift files of `Sources/<target>`.
    static func imports(of target: String) throws -> Set<String> {
        let dir = CLI.root.appendingPathComponent("Sources/\(target)")
        guard let files = FileManager.default.enumerator(atPath: dir.path) else { return [] }
        var out = Set<String>()
        for case let file as String in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where line.hasPrefix("import ") || line.hasPrefix("@testable import ") {
                out.insert(String(line.split(separator: " ").last!))
            }
        }
        return out
    }

    @Test func packageGraphMatchesTheImports() throws {
        let targets = try Self.declaredTargets()
        #expect(targets.keys.contains("QLoRACore") && targets.keys.contains("qlora") && targets.keys.contains("QLoRABackends"))
        let products = ["ArgumentParser", "Yams", "Logging", "Crypto"]
        let known = Set(targets.keys).union(products)
        for (name, declared) in targets {
            let imported = try Self.imports(of: name).intersection(known)
            #expect(imported.subtracting(declared).isEmpty, "\(name) imports \(imported.subtracting(declared).sorted()) without declaring them")
            // C targets are linked for their symbols by the Swift files that import them; a declared module no file
            // imports is a stale edge in the graph.
            let swiftFiles = (FileManager.default.enumerator(atPath: CLI.root.appendingPathComponent("Sources/\(name)").path)?
                .allObjects as? [String] ?? []).contains { $0.hasSuffix(".swift") }
            if swiftFiles {
                #expect(declared.subtracting(imported).isEmpty, "\(name) declares \(declared.subtracting(imported).sorted()) but never imports them")
            }
        }
    }

    /// The core stays free of the CPU backend: the model and the trainer compute only through `Backend`.
    @Test func modelAndTrainingDependOnNoBackend() throws {
        let targets = try Self.declaredTargets()
        for name in ["QLoRACore", "QLoRAModel", "QLoRATraining"] {
            #expect(targets[name]?.isDisjoint(with: ["QLoRACPU", "COpenBLAS", "CQLoRAKernels", "QLoRABackends"]) == true, "\(name)")
        }
    }
}
