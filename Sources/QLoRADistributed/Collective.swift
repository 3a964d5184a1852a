import Foundation
import QLoRACore

/// The ranks of one data-parallel job and the few collectives training needs (docs/DISTRIBUTED.md).
///
/// Every operation is made of point-to-point byte transfers and broadcasts whose result does not depend on timing:
/// the trainer sums gradients in a fixed order along a chain of ranks (Trainer.swift), so nothing here adds floats.
/// Waits are polled: a stop request (SIGTERM from the launcher when another rank died) or the timeout ends them
/// with a `CollectiveError` instead of a hang.
public protocol Collective: AnyObject, Sendable {
    var rank: Int { get }
    var size: Int { get }
    /// Sends `bytes` to `rank` (matched in order with that rank's `receive`).
    func send(_ bytes: UnsafeRawBufferPointer, to rank: Int) throws
    /// Receives exactly `bytes.count` bytes from `rank`.
    func receive(_ bytes: UnsafeMutableRawBufferPointer, from rank: Int) throws
    /// `bytes` of `root` copied to every rank.
    func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws
    /// A broadcast without the timeout, for waits as long as a stage (the other ranks wait for rank 0's ingest,
    /// tokenize and prepare); a stop request still ends it.
    func announcement(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Element-wise maximum over the ranks, in place (integers: exact whatever the order).
    func maximum(_ values: inout [Int32]) throws
}

extension Collective {
    public var isWriter: Bool { rank == 0 }

    /// Whether any rank says true.
    public func any(_ flag: Bool) throws -> Bool {
        if size == 1 { return flag }
        var v: [Int32] = [flag ? 1 : 0]
        try maximum(&v)
        return v[0] != 0
    }

    /// Broadcasts an array whose length every rank knows.
    public func broadcast<T: BitwiseCopyable>(_ values: inout [T], root: Int) throws {
        if size == 1 { return }
        try values.withUnsafeMutableBytes { b in try broadcast(b, root: root) }
    }

    public func send<T: BitwiseCopyable>(_ values: [T], to rank: Int) throws {
        try values.withUnsafeBytes { b in try send(b, to: rank) }
    }

    public func receive<T: BitwiseCopyable>(_ values: inout [T], from rank: Int) throws {
        try values.withUnsafeMutableBytes { b in try receive(b, from: rank) }
    }
}

/// Why a collective did not complete.
public struct CollectiveError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// A stop request arrived while waiting (the launcher stops every rank when one fails).
        case interrupted
        /// No progress within the timeout: a rank died or hangs.
        case timedOut(seconds: Double)
        /// The MPI library reported an error.
        case library(String)
    }
    public var kind: Kind
    public var operation: String
    public var rank: Int

    public init(_ kind: Kind, operation: String, rank: Int) {
        self.kind = kind
        self.operation = operation
        self.rank = rank
    }

    public var description: String {
        switch kind {
        case .interrupted: "rank \(rank): stopped while waiting in \(operation)"
        case .timedOut(let s): "rank \(rank): \(operation) did not complete within \(Int(s)) s (another rank died or hangs; QLORA_COLLECTIVE_TIMEOUT sets the limit)"
        case .library(let m): "rank \(rank): \(operation) failed: \(m)"
        }
    }
}

/// One process: every collective is trivial.
public final class SingleProcess: Collective {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func send(_ bytes: UnsafeRawBufferPointer, to rank: Int) throws {
        preconditionFailure("a single process has no rank \(rank) to send to")
    }
    public func receive(_ bytes: UnsafeMutableRawBufferPointer, from rank: Int) throws {
        preconditionFailure("a single process has no rank \(rank) to receive from")
    }
    public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {}
    public func announcement(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {}
    public func maximum(_ values: inout [Int32]) throws {}
}

/// Ranks as threads of one process, exchanging through shared mailboxes: the data-parallel trainer tested without
/// an MPI launcher (the same chain and broadcasts as under mpirun; Tests/QLoRATrainingTests).
public final class ThreadGroup: @unchecked Sendable {
    public let size: Int
    private let condition = NSCondition()
    /// FIFO of messages per (from, to).
    private var mailboxes: [[[UInt8]]]
    private var maxima: [Int: [Int32]] = [:]
    private var maximaArrived: [Int: Int] = [:]
    private var maximaTaken: [Int: Int] = [:]

    public init(size: Int) {
        self.size = size
        mailboxes = Array(repeating: [], count: size * size)
    }

    /// The collective of `rank` in this group.
    public func member(_ rank: Int) -> Collective { Member(group: self, rank: rank) }

    fileprivate func post(_ bytes: [UInt8], from: Int, to: Int) {
        condition.lock()
        mailboxes[from * size + to].append(bytes)
        condition.broadcast()
        condition.unlock()
    }

    fileprivate func take(from: Int, to: Int) -> [UInt8] {
        condition.lock()
        defer { condition.unlock() }
        while mailboxes[from * size + to].isEmpty { condition.wait() }
        return mailboxes[from * size + to].removeFirst()
    }

    fileprivate func reduceMax(_ values: [Int32], generation: Int) -> [Int32] {
        condition.lock()
        defer { condition.unlock() }
        maxima[generation] = zip(maxima[generation] ?? values, values).map { max($0, $1) }
        maximaArrived[generation, default: 0] += 1
        condition.broadcast()
        while maximaArrived[generation]! < size { condition.wait() }
        let result = maxima[generation]!
        maximaTaken[generation, default: 0] += 1
        if maximaTaken[generation] == size { maxima[generation] = nil; maximaArrived[generation] = nil; maximaTaken[generation] = nil }
        return result
    }

    private final class Member: Collective, @unchecked Sendable {
        let group: ThreadGroup
        let rank: Int
        var size: Int { group.size }
        var reductions = 0

        init(group: ThreadGroup, rank: Int) {
            self.group = group
            self.rank = rank
        }

        func send(_ bytes: UnsafeRawBufferPointer, to rank: Int) throws {
            group.post([UInt8](bytes), from: self.rank, to: rank)
        }

        func receive(_ bytes: UnsafeMutableRawBufferPointer, from rank: Int) throws {
            let message = group.take(from: rank, to: self.rank)
            precondition(message.count == bytes.count, "rank \(self.rank) expected \(bytes.count) bytes from \(rank), got \(message.count)")
            message.withUnsafeBytes { bytes.copyMemory(from: $0) }
        }

        func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
            if rank == root {
                for r in 0..<size where r != root { group.post([UInt8](bytes), from: root, to: r) }
            } else {
                try receive(bytes, from: root)
            }
        }

        func announcement(_ bytes: UnsafeMutableRawBufferPointer, root: Int) throws {
            try broadcast(bytes, root: root)
        }

        func maximum(_ values: inout [Int32]) throws {
            values = group.reduceMax(values, generation: reductions)
            reductions += 1
        }
    }
}
