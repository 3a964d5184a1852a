import ArgumentParser
import Foundation
import QLoRAFormats
import QLoRAPipeline

struct RenderCommand: ParsableCommand {
    enum Target: String, ExpressibleByArgument, CaseIterable { case slurm, kubernetes }

    static let configuration = CommandConfiguration(
        commandName: "render",
        abstract: "Write job files for Slurm or Kubernetes: the CPU stages as one job, data-parallel training as another.",
        discussion: """
            Slurm: prepare.sbatch, train[-POINT].sbatch (mpirun over the allocation) and submit.sh. Kubernetes: one \
            manifest with the CPU Job and an Indexed training Job per point, the run directories on a \
            PersistentVolumeClaim, a pod failure policy keyed to qlora's exit codes. A --grid writes one training \
            job per point, each in its own run directory, all sharing the prepared model (docs/DISTRIBUTED.md).

            Examples:
              qlora render slurm pipelines/tiny.yaml --nodes 2 --gpus-per-node 4
              qlora render kubernetes pipelines/tiny.yaml --gpus-per-node 8 --image registry.example/qlora:0.1.0-cuda
              qlora render slurm pipelines/tiny.yaml --grid training.learning_rate=1e-4,3e-4 --grid lora.lora_rank=8,16
            """)

    @Argument(help: "slurm or kubernetes.")
    var target: Target

    @Argument(help: "The job spec (YAML), as the job will see its path (relative to the job's working directory).")
    var spec: String

    @Option(help: "Nodes (Kubernetes: 1).")
    var nodes = 1

    @Option(name: .customLong("gpus-per-node"), help: "GPUs per node (0: CPU ranks).")
    var gpusPerNode = 0

    @Option(name: .customLong("ranks-per-node"), help: "Ranks per node (default: one per GPU, else 1).")
    var ranksPerNode: Int?

    @Option(help: "Container image (Kubernetes).")
    var image = "qlora:latest"

    @Option(name: .customLong("volume-claim"), help: "PersistentVolumeClaim with the specs, data and run directories (Kubernetes).")
    var volumeClaim = "qlora-runs"

    @Option(help: "Directory of the run directories, as the job sees it.")
    var runs = "runs"

    @Option(name: .customLong("grid"), help: ArgumentHelp("A sweep axis (repeatable): --grid training.learning_rate=1e-4,3e-4.",
                                                          valueName: "key.path=v1,v2"))
    var grid: [String] = []

    @Option(name: .customLong("output"), help: "Folder for the files (default: jobs/<name>-<target>).")
    var output: String?

    func run() throws {
        let specValue: JobSpec
        do { specValue = try JobSpec.load(path: spec) } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
        var options = JobRenderer.Options()
        options.nodes = nodes
        options.gpusPerNode = gpusPerNode
        options.ranksPerNode = ranksPerNode
        options.image = image
        options.volumeClaim = volumeClaim
        options.runs = runs
        do {
            options.grid = try grid.map(JobRenderer.axis)
            // Every point must make a valid spec: checked now, not when the job starts on the cluster.
            for point in try JobRenderer.points(options.grid) where !point.settings.isEmpty {
                _ = try JobSpec.load(path: spec, overrides: point.settings)
            }
            let files = try target == .slurm ? JobRenderer.slurm(specPath: spec, name: specValue.name, options: options)
                : JobRenderer.kubernetes(specPath: spec, name: specValue.name, options: options)
            let folder = URL(fileURLWithPath: output ?? "jobs/\(specValue.name)-\(target.rawValue)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for file in files {
                let url = folder.appendingPathComponent(file.name)
                try AtomicFile.write(file.contents, to: url)
                if file.name.hasSuffix(".sh") || file.name.hasSuffix(".sbatch") { chmod(url.path, 0o755) }
                print(url.path)
            }
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
    }
}
