/// Who this process is in a job, read from what the launcher set (docs/DISTRIBUTED.md).
///
/// | launcher | rank | ranks | rank on the node | ranks on the node |
/// |---|---|---|---|---|
/// | mpirun (Open MPI) | OMPI_COMM_WORLD_RANK | OMPI_COMM_WORLD_SIZE | OMPI_COMM_WORLD_LOCAL_RANK | OMPI_COMM_WORLD_LOCAL_SIZE |
/// | srun (Slurm) | SLURM_PROCID | SLURM_NTASKS | SLURM_LOCALID | SLURM_NTASKS_PER_NODE / SLURM_TASKS_PER_NODE |
/// | torchrun and the like | RANK | WORLD_SIZE | LOCAL_RANK | LOCAL_WORLD_SIZE |
/// | Kubernetes indexed Job | JOB_COMPLETION_INDEX | QLORA_WORLD_SIZE (set in the Job's pod template; default 1) | 0 | 1 |
///
/// The first launcher whose variables are present wins, in that order (mpirun inside a Slurm allocation sets
/// both; its own are the ones that describe this process). A malformed value is an error naming the variable.
public struct LaunchEnvironment: Sendable, Equatable {
    public enum Launcher: String, Sendable {
        case single, mpirun, slurm, torchrun, kubernetes
        /// Whether MPI can start the collectives in this launch (Open MPI reads its own variables, or Slurm's PMIx).
        public var providesMPI: Bool { self == .mpirun || self == .slurm }
    }

    public var launcher: Launcher
    public var rank: Int
    public var size: Int
    public var localRank: Int
    public var localSize: Int
    /// torchrun's rendezvous address, when set (MASTER_ADDR:MASTER_PORT).
    public var master: String?

    public static let single = LaunchEnvironment(launcher: .single, rank: 0, size: 1, localRank: 0, localSize: 1, master: nil)

    public var isDistributed: Bool { size > 1 }

    public init(launcher: Launcher, rank: Int, size: Int, localRank: Int, localSize: Int, master: String?) {
        self.launcher = launcher
        self.rank = rank
        self.size = size
        self.localRank = localRank
        self.localSize = localSize
        self.master = master
    }

    public static func detect(_ env: [String: String]) throws -> LaunchEnvironment {
        func int(_ name: String, default value: Int? = nil) throws -> Int {
            guard let text = env[name] else {
                if let value { return value }
                throw DistributedError("\(name) is not set")
            }
            guard let v = Int(text.trimmingCharacters(in: .whitespaces)), v >= 0 else {
                throw DistributedError("\(name)=\(text) is not a non-negative integer")
            }
            return v
        }
        func make(_ launcher: Launcher, rank: Int, size: Int, localRank: Int, localSize: Int, master: String? = nil) throws -> LaunchEnvironment {
            guard size >= 1 else { throw DistributedError("\(launcher.rawValue): a job of \(size) ranks") }
            guard rank < size else { throw DistributedError("\(launcher.rawValue): rank \(rank) of \(size) ranks") }
            return LaunchEnvironment(launcher: launcher, rank: rank, size: size, localRank: localRank, localSize: max(1, localSize),
                                     master: master)
        }
        if env["OMPI_COMM_WORLD_SIZE"] != nil {
            return try make(.mpirun, rank: int("OMPI_COMM_WORLD_RANK"), size: int("OMPI_COMM_WORLD_SIZE"),
                            localRank: int("OMPI_COMM_WORLD_LOCAL_RANK", default: 0), localSize: int("OMPI_COMM_WORLD_LOCAL_SIZE", default: 1))
        }
        if env["SLURM_PROCID"] != nil, env["SLURM_NTASKS"] != nil {
            // SLURM_TASKS_PER_NODE is "2(x3),1": the first count is this node's when tasks are spread evenly.
            let perNode = try env["SLURM_NTASKS_PER_NODE"].map { _ in try int("SLURM_NTASKS_PER_NODE") }
                ?? env["SLURM_TASKS_PER_NODE"].flatMap { Int($0.prefix { $0.isNumber }) } ?? 1
            return try make(.slurm, rank: int("SLURM_PROCID"), size: int("SLURM_NTASKS"), localRank: int("SLURM_LOCALID", default: 0),
                            localSize: perNode)
        }
        if env["WORLD_SIZE"] != nil, env["RANK"] != nil {
            let master = env["MASTER_ADDR"].map { a in env["MASTER_PORT"].map { "\(a):\($0)" } ?? a }
            return try make(.torchrun, rank: int("RANK"), size: int("WORLD_SIZE"), localRank: int("LOCAL_RANK", default: 0),
                            localSize: int("LOCAL_WORLD_SIZE", default: 1), master: master)
        }
        if env["JOB_COMPLETION_INDEX"] != nil {
            return try make(.kubernetes, rank: int("JOB_COMPLETION_INDEX"), size: int("QLORA_WORLD_SIZE", default: 1), localRank: 0,
                            localSize: 1)
        }
        return .single
    }
}
