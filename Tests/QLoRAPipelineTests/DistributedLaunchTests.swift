import Foundation
import QLoRADistributed
import Testing
import Yams
@testable import QLoRAPipeline

/// Launch from the environment, `--set` overrides and the rendered job files (docs/DISTRIBUTED.md). The rendered
/// files are also checked by the real validators in scripts/check-render.sh (kubernetes-validate, shellcheck).
@Suite struct DistributedLaunchTests {
    @Test func ranksComeFromTheLaunchersVariables() throws {
        #expect(try LaunchEnvironment.detect([:]) == .single)
        let mpi = try LaunchEnvironment.detect(["OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4",
                                                "OMPI_COMM_WORLD_LOCAL_RANK": "1", "OMPI_COMM_WORLD_LOCAL_SIZE": "2",
                                                "SLURM_PROCID": "0", "SLURM_NTASKS": "1"])
        #expect(mpi == LaunchEnvironment(launcher: .mpirun, rank: 1, size: 4, localRank: 1, localSize: 2, master: nil))
        let slurm = try LaunchEnvironment.detect(["SLURM_PROCID": "5", "SLURM_NTASKS": "8", "SLURM_LOCALID": "1",
                                                  "SLURM_TASKS_PER_NODE": "4(x2)"])
        #expect(slurm == LaunchEnvironment(launcher: .slurm, rank: 5, size: 8, localRank: 1, localSize: 4, master: nil))
        let torch = try LaunchEnvironment.detect(["RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                                                  "MASTER_ADDR": "node0", "MASTER_PORT": "29500"])
        #expect(torch == LaunchEnvironment(launcher: .torchrun, rank: 3, size: 4, localRank: 1, localSize: 2, master: "node0:29500"))
        #expect(!torch.launcher.providesMPI && slurm.launcher.providesMPI)
        let k8s = try LaunchEnvironment.detect(["JOB_COMPLETION_INDEX": "2", "QLORA_WORLD_SIZE": "3"])
        #expect(k8s.launcher == .kubernetes && k8s.rank == 2 && k8s.size == 3)
        #expect(try LaunchEnvironment.detect(["JOB_COMPLETION_INDEX": "0"]) .isDistributed == false)
        // Malformed or inconsistent values are errors naming the variable.
        #expect(throws: DistributedError.self) { try LaunchEnvironment.detect(["OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_RANK": "x"]) }
        #expect(throws: DistributedError.self) { try LaunchEnvironment.detect(["RANK": "4", "WORLD_SIZE": "4"]) }
        do {
            _ = try LaunchEnvironment.detect(["SLURM_PROCID": "-1", "SLURM_NTASKS": "2"])
            Issue.record("accepted a negative rank")
        } catch { #expect("\(error)".contains("SLURM_PROCID")) }
    }

    @Test func setOverridesASpecSetting() throws {
        try withTemporaryDirectory { dir in
            let yaml = "name: s\ntraining:\n  learning_rate: 0.001\n  max_steps: 4\n"
            let spec = try JobSpec.parse(yaml: yaml, file: dir.appendingPathComponent("s.yaml").path,
                                         overrides: ["training.learning_rate=3e-4", "lora.lora_rank=16", "seed=7"])
            #expect(spec.training?.learningRate == 3e-4 && spec.training?.maxSteps == 4)
            #expect(spec.lora?.loraRank == 16 && spec.seed == 7)
            for bad in ["training.learning_rate", "name.x=1", ".x=1"] {
                do {
                    _ = try JobSpec.parse(yaml: yaml, file: "s.yaml", overrides: [bad])
                    Issue.record("accepted --set \(bad)")
                } catch { #expect("\(error)".contains("--set \(bad)"), "\(error)") }
            }
            // A value of the wrong type fails like the same value in the file would.
            #expect(throws: (any Error).self) { try JobSpec.parse(yaml: yaml, file: "s.yaml", overrides: ["training.max_steps=many"]) }
        }
    }

    @Test func aGridIsEveryCombination() throws {
        let points = try JobRenderer.points([("training.learning_rate", ["1e-4", "3e-4"]), ("lora.lora_rank", ["8", "16"])])
        #expect(points.map(\.name) == ["learning_rate-1e-4_lora_rank-8", "learning_rate-1e-4_lora_rank-16",
                                       "learning_rate-3e-4_lora_rank-8", "learning_rate-3e-4_lora_rank-16"])
        #expect(points[3].settings == ["training.learning_rate=3e-4", "lora.lora_rank=16"])
        #expect(try JobRenderer.points([]).map(\.name) == [""])
        let axis = try JobRenderer.axis("training.learning_rate=1e-4,3e-4")
        #expect(axis.key == "training.learning_rate" && axis.values == ["1e-4", "3e-4"])
        #expect(throws: RenderError.self) { try JobRenderer.axis("training.learning_rate") }
        #expect(throws: RenderError.self) { try JobRenderer.points([try JobRenderer.axis("lora.lora_rank=")]) }
        #expect(JobRenderer.label("qlora-Tiny_run/1e-4") == "qlora-tiny-run-1e-4")
        #expect(JobRenderer.label(String(repeating: "a", count: 100)).count == 63)
    }

    private func run(_ executable: String, _ arguments: [String]) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test func slurmScriptsAreValidShell() throws {
        var options = JobRenderer.Options()
        options.nodes = 2
        options.gpusPerNode = 4
        options.grid = [("training.learning_rate", ["1e-4", "3e-4"])]
        let files = try JobRenderer.slurm(specPath: "pipelines/my job.yaml", name: "tiny", options: options)
        #expect(files.map(\.name) == ["prepare.sbatch", "train-learning-rate-1e-4.sbatch", "train-learning-rate-3e-4.sbatch", "submit.sh"])
        let train = files[1].contents
        #expect(train.contains("#SBATCH --nodes=2\n#SBATCH --ntasks-per-node=4\n#SBATCH --gpus-per-node=4\n"))
        #expect(train.contains("mpirun \"$QLORA\" run 'pipelines/my job.yaml' --run-dir runs/tiny/learning_rate-1e-4 --set training.learning_rate=1e-4 --ci"))
        #expect(train.contains("cp -al runs/tiny/base/\"$stage\""))
        #expect(files[0].contents.contains("--run-dir runs/tiny/base --to prepare"))
        let hasShellcheck = (try? run("shellcheck", ["--version"]).0) == 0
        let single = try JobRenderer.slurm(specPath: "pipelines/tiny.yaml", name: "tiny", options: JobRenderer.Options())
        #expect(single.map(\.name) == ["prepare.sbatch", "train.sbatch", "submit.sh"])
        #expect(single[1].contents.contains("mpirun \"$QLORA\" run pipelines/tiny.yaml --run-dir runs/tiny --ci"))
        try withTemporaryDirectory { dir in
            for (k, file) in (files + single).enumerated() {
                let url = dir.appendingPathComponent("\(k)-\(file.name)")
                try file.contents.write(to: url, atomically: true, encoding: .utf8)
                let (status, output) = try run("bash", ["-n", url.path])
                #expect(status == 0, "\(file.name): \(output)")
                if hasShellcheck {
                    let (status, output) = try run("shellcheck", [url.path])
                    #expect(status == 0, "\(file.name): \(output)")
                }
            }
        }
    }

    @Test func kubernetesManifestsHaveTheJobsAndTheFailurePolicy() throws {
        var options = JobRenderer.Options()
        options.gpusPerNode = 8
        options.image = "registry.example/qlora:0.1.0-cuda"
        options.grid = [("lora.lora_rank", ["8", "16"])]
        let files = try JobRenderer.kubernetes(specPath: "pipelines/tiny.yaml", name: "tiny", options: options)
        #expect(files.count == 1)
        let documents = try Yams.load_all(yaml: files[0].contents).compactMap { $0 as? [String: Any] }
        #expect(documents.count == 3)
        #expect(documents.allSatisfy { ($0["kind"] as? String) == "Job" && ($0["apiVersion"] as? String) == "batch/v1" })
        let names = documents.compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String }
        #expect(names == ["qlora-tiny-prepare", "qlora-tiny-lora-rank-8", "qlora-tiny-lora-rank-16"])
        let train = try #require(documents[1]["spec"] as? [String: Any])
        #expect(train["completionMode"] as? String == "Indexed")
        let rules = try #require((train["podFailurePolicy"] as? [String: Any])?["rules"] as? [[String: Any]])
        #expect((rules[0]["onExitCodes"] as? [String: Any])?["values"] as? [Int] == [1, 2, 3])
        #expect(rules[0]["action"] as? String == "FailJob")
        let pod = try #require((train["template"] as? [String: Any])?["spec"] as? [String: Any])
        #expect(pod["restartPolicy"] as? String == "Never")
        let container = try #require((pod["containers"] as? [[String: Any]])?.first)
        let command = try #require((container["command"] as? [String])?.last)
        #expect(command.contains("exec mpirun -np 8 qlora run /work/pipelines/tiny.yaml --run-dir /work/runs/tiny/lora_rank-8 --set lora.lora_rank=8"))
        let limits = (container["resources"] as? [String: Any])?["limits"] as? [String: Any]
        #expect(limits?["nvidia.com/gpu"] as? Int == 8)
        #expect(((pod["initContainers"] as? [[String: Any]])?.first?["command"] as? [String])?.last?.contains("/work/runs/tiny/base/prepare/manifest.json") == true)
        // Ranks across pods are not driven yet: refused with the reason.
        options.nodes = 2
        do {
            _ = try JobRenderer.kubernetes(specPath: "pipelines/tiny.yaml", name: "tiny", options: options)
            Issue.record("rendered a multi-node Kubernetes job")
        } catch { #expect("\(error)".contains("--nodes 2")) }
    }
}
