import CMPI
import Foundation
import QLoRACore

/// Open MPI's MPI_COMM_WORLD, loaded at run time (Sources/CMPI). One per process: MPI is initialized once and
/// finalized at exit (`finish`).
///
/// Every transfer is non-blocking and polled every 50 µs–1 ms: a stop request (`cancellation`, set by SIGTERM,
/// which mpirun and Slurm send to every rank when one fails) or `timeout` seconds without completion end the wait
/// with a `CollectiveError` instead of a hang.
public final class MPICollective: Collective, @unchecked Sendable {
    public let rank: Int
    public let size: Int
    /// "Open MPI v4.1.4, …" (first line of MPI_Get_library_version) and the file it came from.
    public let library: String
    public let libraryPath: String
    public let timeout: Double
    /// Seconds a wait goes on after a stop request (QLORA_STOP_GRACE, default 20).
    public let stopGrace: Double
    private let cancellation: Cancellation
    private static let chunk = 1 << 30

    /// The paths tried, in order: `QLORA_MPI_LIBRARY`, then Open MPI's soname (Debian's openmpi-bin, most
    /// distributions and HPC modules put it on the loader path).
    public static func candidates(environment: [String: String]) -> [String] {
        (environment["QLORA_MPI_LIBRARY"].map { [$0] } ?? []) + ["libmpi.so.40", "libmpi.so"]
    }

    /// Loads Open MPI and initializes it. Throws a message naming every path tried when none loads.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment, cancellation: Cancellation,
                timeout: Double, stopGrace: Double) throws {
        var failures: [String] = []
        var loaded: String?
        for path in Self.candidates(environment: environment) {
            var error = [CChar](repeating: 0, count: 1024)
            if qlora_mpi_load(path, &error, error.count) == 0 {
                loaded = path
                break
            }
            failures.append(Self.text(error))
        }
        guard let loaded else {
            throw DistributedError("cannot load Open MPI (install openmpi-bin, or set QLORA_MPI_LIBRARY to its libmpi.so.40): "
                                   + failures.joined(separator: "; "))
        }
        var r: Int32 = 0, s: Int32 = 0
        let rc = qlora_mpi_init(&r, &s)
        guard rc == 0 else { throw DistributedError("MPI_Init_thread failed: \(Self.message(rc))") }
        rank = Int(r)
        size = Int(s)
        libraryPath = loaded
        var version = [CChar](repeating: 0, count: 8192)
        library = qlora_mpi_library_version(&version, Int32(version.count)) == 0
            ? Self.text(version).split(separator: "\n").first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? "" : "unknown"
        self.cancellation = cancellation
        self.timeout = timeout
        self.stopGrace = stopGrace
    }

    /// MPI_Finalize after a clean end (every rank reaches it); MPI_Abort otherwise, which tells the launcher to
    /// stop the other ranks at once rather than leave them waiting for this one.
    public func finish(clean: Bool, code: Int32) {
        if clean { _ = qlora_mpi_finalize() } else { _ = qlora_mpi_abort(code) }
    }

    public func send(_ bytes: UnsafeRawBufferPointer, to rank: Int) throws {
        try chunks(bytes.count) { offset, count in
            var request: UnsafeMutableRawPointer?
            try check(qlora_mpi_isend(bytes.baseAddress! + offset, Int32(count), Int32(rank), 0, &request), "MPI_Isend to rank \(rank)")
            try wait(&request, "send to rank \(rank)")
        }
    }

    public func receive(_ bytes: UnsafeMutableRawBufferPointer, from rank: Int) throws {
        try chunks(bytes.count) { offset, count in
            var request: UnsafeMutableRawPointer?
            try check(qlora_mpi_irecv(bytes.baseAddress! + offset, Int32(count), Int32(rank), 0, &request), "MPI_Irecv from rank \(rank)")
            try wait(&request, "receive from rank \(rank)")
        }
    }

    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        try chunks(bytes.count) { offset, count in
            var request: UnsafeMutableRawPointer?
            try check(qlora_mpi_ibcast(bytes.baseAddress! + offset, Int32(count), Int32(root), &request), "MPI_Ibcast from rank \(root)")
            try wait(&request, "broadcast from rank \(root)")
        }
    }

    public func announcement(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
        var request: UnsafeMutableRawPointer?
        try check(qlora_mpi_ibcast(bytes.baseAddress!, Int32(bytes.count), Int32(root), &request), "MPI_Ibcast from rank \(root)")
        try wait(&request, "waiting for rank \(root)", timeout: .infinity)
    }

    public func maximum(_ values: inout [Int32]) throws {
        let n = Int32(values.count)
        // MPI writes into the buffer until the request completes: start and wait inside the one access.
        try values.withUnsafeMutableBufferPointer { buffer in
            var request: UnsafeMutableRawPointer?
            try check(qlora_mpi_iallreduce_max_int(buffer.baseAddress, n, &request), "MPI_Iallreduce")
            try wait(&request, "all-reduce (max)")
        }
    }

    private func chunks(_ total: Int, _ body: (Int, Int) throws -> Void) throws {
        var offset = 0
        repeat {
            let n = min(Self.chunk, total - offset)
            try body(offset, n)
            offset += n
        } while offset < total
    }

    private func check(_ rc: Int32, _ operation: String) throws {
        if rc != 0 { throw CollectiveError(.library(Self.message(rc)), operation: operation, rank: rank) }
    }

    /// Polls `request` until it completes, backing off from 50 µs to 1 ms between tests. A stop request gives
    /// the other ranks `stopGrace` seconds more: a launcher that stops every rank lets them finish the step and
    /// agree to stop (rank 0 then saves a checkpoint); a rank that died never answers.
    private func wait(_ request: inout UnsafeMutableRawPointer?, _ operation: String, timeout: Double? = nil) throws {
        let limit = timeout ?? self.timeout
        let start = DispatchTime.now().uptimeNanoseconds
        var stopSeen: UInt64?
        var pause: UInt32 = 50
        while true {
            var done: Int32 = 0
            try check(qlora_mpi_test(&request, &done), operation)
            if done != 0 { return }
            let now = DispatchTime.now().uptimeNanoseconds
            if cancellation.isRequested {
                if stopSeen == nil { stopSeen = now }
                if Double(now - stopSeen!) / 1e9 > stopGrace { throw CollectiveError(.interrupted, operation: operation, rank: rank) }
            }
            if Double(now - start) / 1e9 > limit {
                throw CollectiveError(.timedOut(seconds: limit), operation: operation, rank: rank)
            }
            usleep(pause)
            pause = min(pause * 2, 1000)
        }
    }

    /// A NUL-terminated C buffer as text.
    static func text(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func message(_ rc: Int32) -> String {
        var text = [CChar](repeating: 0, count: 1024)
        qlora_mpi_error_string(rc, &text, Int32(text.count))
        return MPICollective.text(text)
    }
}

/// A distributed launch that cannot go ahead (exit 2: fix the environment or the command).
public struct DistributedError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
