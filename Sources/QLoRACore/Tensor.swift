/// How a tensor's elements are stored. A backend says which it holds (`Backend.storageTypes`); every op's
/// arithmetic is fp32 on the CPU backends whatever the storage.
public enum TensorType: String, Sendable, Equatable, CaseIterable {
    /// IEEE single precision.
    case f32
    /// bfloat16 (the upper half of an f32): activations and gradients of a backend that computes in bf16.
    case bf16
    /// 32-bit signed integers: token ids, targets, document ids.
    case i32
    /// A frozen linear weight in bitsandbytes' 4-bit form (NF4/FP4 codes plus its quant state, `FourBitTensor`).
    case fourBit
}

/// A backend's memory for one tensor (host memory for the CPU backends, device memory for a GPU one). Only the
/// backend that made it reads or writes it; it is freed when the last `Tensor` handle on it goes away.
public protocol TensorStorage: AnyObject, Sendable {
    /// Elements the storage holds.
    var capacity: Int { get }
}

/// A handle on a backend's tensor: its storage, element type, shape, and where this view starts in the
/// storage. Handles are cheap values (copying one shares the storage); views of rows or of a flat range
/// share it too, so a KV cache's appended rows or one chunk of a batch are written where they lie.
///
/// Made by a `Backend` (`allocate`, `upload`), read back with `Backend.download`, given to that backend's ops.
public struct Tensor: @unchecked Sendable {
    public let storage: any TensorStorage
    public let type: TensorType
    /// Row-major shape; a 4-bit weight is `[out, in]`.
    public let shape: [Int]
    /// First element of this view in `storage`.
    public let offset: Int

    public init(storage: any TensorStorage, type: TensorType, shape: [Int], offset: Int = 0) {
        precondition(offset >= 0 && offset + shape.reduce(1, *) <= storage.capacity || type == .fourBit,
                     "a view of \(shape) at \(offset) does not fit a storage of \(storage.capacity) elements")
        self.storage = storage
        self.type = type
        self.shape = shape
        self.offset = offset
    }

    /// Number of elements.
    public var count: Int { shape.reduce(1, *) }

    /// Elements per row (the product of every dimension after the first).
    public var rowWidth: Int { shape.dropFirst().reduce(1, *) }

    /// Rows `range` of the first dimension, as a view.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(type != .fourBit, "a 4-bit weight has no row views")
        precondition(range.lowerBound >= 0 && range.upperBound <= (shape.first ?? 0), "rows \(range) of a tensor of shape \(shape)")
        return Tensor(storage: storage, type: type, shape: [range.count] + shape.dropFirst(), offset: offset + range.lowerBound * rowWidth)
    }

    /// The same elements seen with another shape (`count` must not grow past the storage).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        Tensor(storage: storage, type: type, shape: newShape, offset: offset)
    }

    /// `true` when both handles see the same storage (aliasing, for ops that allow it).
    public func sharesStorage(with other: Tensor) -> Bool { storage === other.storage }
}
