import Foundation
import QLoRAFormats

/// Job files for the launchers clusters already run (`qlora render`, docs/DISTRIBUTED.md): an sbatch script for
/// Slurm, a Kubernetes Job for a cluster. Each job runs the CPU stages (ingest, tokenize, prepare) once, as a job of
/// its own, then data-parallel training and the rest with `mpirun` over the GPUs (or cores) it was given.
///
/// A sweep (`--grid key.path=v1,v2`, repeatable) writes one training job per point of the grid, each with its own run
/// directory `<runs>/<name>/<point>` and its settings as `qlora run --set`; every point starts from the stages of
/// `<runs>/<name>/base`, which the CPU job prepares once. They are hard-linked in (the stages are files named by
/// content, verified on use), so the points share the prepared model; a point whose settings change an earlier
/// stage (a tokenizer setting, say) reruns that stage in its own directory.
public enum JobRenderer {
    public struct Options: Sendable {
        public var nodes = 1
        public var gpusPerNode = 0
        /// Ranks per node (default: one per GPU, else 1).
        public var ranksPerNode: Int?
        public var image = "qlora:latest"
        /// The PersistentVolumeClaim holding the run directories (Kubernetes).
        public var volumeClaim = "qlora-runs"
        /// Where run directories live, as the job sees it.
        public var runs = "runs"
        public var grid: [(key: String, values: [String])] = []
        public var qlora = "qlora"

        public init() {}

        var ranks: Int { ranksPerNode ?? max(1, gpusPerNode) }
    }

    /// One file to write.
    public struct File: Sendable, Equatable {
        public var name: String
        public var contents: String
    }

    public struct Point: Sendable, Equatable {
        /// A name made of the settings ("learning_rate-0.0001_lora_rank-8"); "" without a grid.
        public var name: String
        public var settings: [String]
    }

    /// One `--grid` axis, `key.path=value1,value2`.
    public static func axis(_ argument: String) throws -> (key: String, values: [String]) {
        guard let eq = argument.firstIndex(of: "=") else { throw RenderError("--grid \(argument): expected key.path=value1,value2") }
        return (String(argument[..<eq]), argument[argument.index(after: eq)...].split(separator: ",").map(String.init))
    }

    /// Every combination of the grid's values, in order (the last key varies fastest).
    public static func points(_ grid: [(key: String, values: [String])]) throws -> [Point] {
        var points = [Point(name: "", settings: [])]
        for (key, values) in grid {
            guard !key.isEmpty, !values.isEmpty else { throw RenderError("--grid \(key): expected key.path=value1,value2") }
            points = points.flatMap { p in
                values.map { v in
                    let part = "\(key.split(separator: ".").last!)-\(v)"
                    return Point(name: p.name.isEmpty ? part : "\(p.name)_\(part)", settings: p.settings + ["\(key)=\(v)"])
                }
            }
        }
        return points
    }

    /// Lowercase letters, digits and '-' (a DNS-1123 label, at most `limit` characters; a hash keeps cut names apart).
    static func label(_ text: String, limit: Int = 63) -> String {
        var out = ""
        for c in text.lowercased().unicodeScalars {
            if (c >= "a" && c <= "z") || (c >= "0" && c <= "9") { out.unicodeScalars.append(c) } else if !out.hasSuffix("-") { out += "-" }
        }
        out = String(out.drop { $0 == "-" })
        while out.hasSuffix("-") { out.removeLast() }
        if out.count > limit {
            let hash = String(FileDigest.of(data: Data(text.utf8)).sha256.prefix(8))
            out = String(out.prefix(limit - 9)).trimmingCharacters(in: CharacterSet(charactersIn: "-")) + "-" + hash
        }
        return out.isEmpty ? "job" : out
    }

    /// A word for a POSIX shell, single-quoted when it needs to be.
    static func shellQuoted(_ word: String) -> String {
        let safe = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%")
        if !word.isEmpty, word.unicodeScalars.allSatisfy(safe.contains) { return word }
        return "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    static func validate(_ options: Options) throws {
        guard options.nodes >= 1 else { throw RenderError("--nodes must be at least 1") }
        guard options.gpusPerNode >= 0 else { throw RenderError("--gpus-per-node cannot be negative") }
        guard options.ranks >= 1 else { throw RenderError("--ranks-per-node must be at least 1") }
    }

    // MARK: Slurm

    /// `prepare.sbatch` (the CPU stages), one `train[-POINT].sbatch` per point, and `submit.sh`, which submits them
    /// with the training jobs depending on the CPU job.
    public static func slurm(specPath: String, name: String, options o: Options) throws -> [File] {
        try validate(o)
        let points = try points(o.grid)
        let base = "\(o.runs)/\(name)" + (o.grid.isEmpty ? "" : "/base")
        let q = shellQuoted
        var files: [File] = []
        files.append(File(name: "prepare.sbatch", contents: """
            #!/bin/bash
            # The CPU stages of \(name) (ingest, tokenize, prepare), once; the training jobs depend on this one.
            #SBATCH --job-name=\(label("qlora-\(name)-prepare"))
            #SBATCH --nodes=1
            #SBATCH --ntasks=1
            #SBATCH --output=slurm-%x-%j.out
            set -euo pipefail
            QLORA=${QLORA:-\(q(o.qlora))}
            "$QLORA" run \(q(specPath)) --run-dir \(q(base)) --to prepare --ci

            """))
        for point in points {
            let runDir = o.grid.isEmpty ? base : "\(o.runs)/\(name)/\(point.name)"
            let sets = point.settings.map { " --set \(q($0))" }.joined()
            let link = o.grid.isEmpty ? "" : """
                # Start from the prepared stages of the sweep (hard links: shared, and verified by content on use).
                mkdir -p \(q(runDir))
                for stage in ingest tokenize prepare; do
                  [ -e \(q(runDir))/"$stage" ] || cp -al \(q(base))/"$stage" \(q(runDir))/"$stage"
                done

                """
            let gpus = o.gpusPerNode > 0 ? "#SBATCH --gpus-per-node=\(o.gpusPerNode)\n" : ""
            files.append(File(name: point.name.isEmpty ? "train.sbatch" : "train-\(label(point.name, limit: 200)).sbatch", contents: """
                #!/bin/bash
                # Data-parallel training of \(name)\(point.name.isEmpty ? "" : " (\(point.settings.joined(separator: ", ")))"), then evaluate and package
                # on rank 0. Open MPI's mpirun starts one rank per task of the allocation (docs/DISTRIBUTED.md).
                #SBATCH --job-name=\(label("qlora-\(name)-\(point.name.isEmpty ? "train" : point.name)"))
                #SBATCH --nodes=\(o.nodes)
                #SBATCH --ntasks-per-node=\(o.ranks)
                \(gpus)#SBATCH --output=slurm-%x-%j.out
                #SBATCH --open-mode=append
                #SBATCH --requeue
                set -uo pipefail
                QLORA=${QLORA:-\(q(o.qlora))}
                \(link)mpirun "$QLORA" run \(q(specPath)) --run-dir \(q(runDir))\(sets) --ci
                rc=$?
                # qlora's exit codes (docs/DISTRIBUTED.md): 75 interrupted (a rank was stopped or died; the newest checkpoint is
                # kept) and 4 locked are worth another try; a rank killed by a signal shows as 128+N. Everything else
                # (1 failed, 2 bad spec, 3 gate failed) would fail again.
                case $rc in
                  75|4|137|143)
                    scontrol requeue "${SLURM_JOB_ID:?}"
                    exit 75 ;;
                esac
                exit "$rc"

                """))
        }
        let trains = files.dropFirst().map { "sbatch --dependency=afterok:\"$prepare\" \(q($0.name))\n" }.joined()
        files.append(File(name: "submit.sh", contents: """
            #!/bin/bash
            # Submits the CPU job, then every training job after it succeeds.
            set -euo pipefail
            cd "$(dirname "$0")"
            prepare=$(sbatch --parsable prepare.sbatch)
            \(trains)
            """))
        return files
    }

    // MARK: Kubernetes

    /// One manifest (`NAME.yaml`): the CPU Job, then one Indexed training Job per point, on the claim's volume.
    public static func kubernetes(specPath: String, name: String, options o: Options) throws -> [File] {
        try validate(o)
        guard o.nodes == 1 else {
            throw RenderError("--nodes \(o.nodes): on Kubernetes the ranks of a job run in one pod (mpirun inside it); "
                              + "several nodes need the NCCL path or an MPI operator, which qlora does not drive yet (use Slurm, or --nodes 1)")
        }
        let points = try points(o.grid)
        let mount = "/work"
        let runs = o.runs.hasPrefix("/") ? o.runs : "\(mount)/\(o.runs)"
        let spec = specPath.hasPrefix("/") ? specPath : "\(mount)/\(specPath)"
        let base = "\(runs)/\(name)" + (o.grid.isEmpty ? "" : "/base")
        // A JSON string is a YAML double-quoted scalar: the run directory's JSON writer quotes for both.
        let q = shellQuoted, y = jsonString
        func job(_ jobName: String, command: String, gpus: Int, wait: String?, labels: String) -> String {
            let resources = gpus > 0 ? """

                      resources:
                        limits:
                          nvidia.com/gpu: \(gpus)
            """ : ""
            let initContainers = wait.map { path in """

                  initContainers:
                    - name: wait-for-prepare
                      image: \(y(o.image))
                      command: ["/bin/sh", "-c", \(y("until [ -f \(q(path)) ]; do sleep 10; done"))]
                      volumeMounts:
                        - name: work
                          mountPath: \(mount)
            """ } ?? ""
            return """
            apiVersion: batch/v1
            kind: Job
            metadata:
              name: \(jobName)
              labels:
            \(labels)
            spec:
              completionMode: Indexed
              completions: 1
              parallelism: 1
              backoffLimit: 6
              # qlora's exit codes (docs/DISTRIBUTED.md): 1 failed, 2 bad spec and 3 gate failed would fail again, so they end
              # the Job; 75 (interrupted: a rank stopped or died, the newest checkpoint kept) and 4 (locked) are retried.
              podFailurePolicy:
                rules:
                  - action: FailJob
                    onExitCodes:
                      containerName: qlora
                      operator: In
                      values: [1, 2, 3]
                  - action: Ignore
                    onPodConditions:
                      - type: DisruptionTarget
              template:
                metadata:
                  labels:
            \(labels.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
                spec:
                  restartPolicy: Never\(initContainers)
                  containers:
                    - name: qlora
                      image: \(y(o.image))
                      workingDir: \(mount)
                      command: ["/bin/sh", "-c", \(y(command))]
                      env:
                        - name: OMPI_ALLOW_RUN_AS_ROOT
                          value: "1"
                        - name: OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
                          value: "1"\(resources)
                      volumeMounts:
                        - name: work
                          mountPath: \(mount)
                  volumes:
                    - name: work
                      persistentVolumeClaim:
                        claimName: \(y(o.volumeClaim))
            """
        }
        func labels(_ role: String, _ point: String) -> String {
            ["    app.kubernetes.io/name: qlora", "    qlora/job: \(y(label(name)))", "    qlora/role: \(role)"]
                .joined(separator: "\n") + (point.isEmpty ? "" : "\n    qlora/point: \(y(label(point)))")
        }
        var documents = [job(label("qlora-\(name)-prepare"), command: "exec \(q(o.qlora)) run \(q(spec)) --run-dir \(q(base)) --to prepare --ci",
                             gpus: 0, wait: nil, labels: labels("prepare", ""))]
        for point in points {
            let runDir = o.grid.isEmpty ? base : "\(runs)/\(name)/\(point.name)"
            let sets = point.settings.map { " --set \(q($0))" }.joined()
            let link = o.grid.isEmpty ? "" : "mkdir -p \(q(runDir)) && for s in ingest tokenize prepare; do [ -e \(q(runDir))/$s ] || cp -al \(q(base))/$s \(q(runDir))/$s; done && "
            let launch = o.ranks > 1 ? "mpirun -np \(o.ranks) " : ""
            documents.append(job(label("qlora-\(name)-\(point.name.isEmpty ? "train" : point.name)"),
                                 command: "\(link)exec \(launch)\(q(o.qlora)) run \(q(spec)) --run-dir \(q(runDir))\(sets) --ci",
                                 gpus: o.gpusPerNode, wait: "\(base)/prepare/manifest.json", labels: labels("train", point.name)))
        }
        return [File(name: "\(label(name)).yaml", contents: "# qlora render kubernetes \(specPath) (docs/DISTRIBUTED.md)\n"
                     + documents.map { "---\n" + $0 + "\n" }.joined())]
    }
}

/// Bad `qlora render` arguments (exit 2).
public struct RenderError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
