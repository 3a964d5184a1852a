import QLoRACore

/// Keys and values of every layer for the positions seen so far (generation reuses them), held by the backend.
///
/// One tensor for all keys and one for all values, fixed at creation and allocated by the model's backend at the
/// first forward: layer `l`'s keys are rows `l·capacity ..< (l+1)·capacity` of `[layers·capacity, kvHeads·headDim]`,
/// so appending a token copies its rows in place (`Backend.copy` into a row view) and attention reads the cache
/// where it lies. A value type: a copy shares the tensors until either side appends (copy on write, of the filled
/// rows only).
public struct KVCache: Sendable {
    public private(set) var length = 0
    public let capacity: Int
    /// Floats per position (`kvHeads · headDim`).
    let width: Int
    let layers: Int
    private var storage: Storage?

    final class Storage: @unchecked Sendable {
        let keys: Tensor, values: Tensor
        let backend: any Backend

        init(backend: any Backend, layers: Int, capacity: Int, width: Int) {
            self.backend = backend
            keys = backend.allocate([max(1, layers * capacity), width], .f32)
            values = backend.allocate([max(1, layers * capacity), width], .f32)
        }
    }

    public init(config: LlamaConfig, capacity: Int) {
        self.capacity = capacity
        width = config.kvHeads * config.headDim
        layers = config.layers
    }

    /// Layer `l`'s key and value rows `[capacity, width]` (after `prepare`).
    func layer(_ l: Int) -> (keys: Tensor, values: Tensor) {
        let s = storage!, rows = (l * capacity)..<((l + 1) * capacity)
        return (s.keys.rows(rows), s.values.rows(rows))
    }

    /// Allocates the tensors on `backend` at first use, and gives this cache its own if a copy shares them.
    mutating func prepare(_ backend: any Backend) {
        guard let s = storage else {
            storage = Storage(backend: backend, layers: layers, capacity: capacity, width: width)
            return
        }
        if !isKnownUniquelyReferenced(&storage) {
            let copy = Storage(backend: s.backend, layers: layers, capacity: capacity, width: width)
            if length > 0 {
                for l in 0..<layers {
                    let filled = (l * capacity)..<(l * capacity + length)
                    s.backend.copy(s.keys.rows(filled), to: copy.keys.rows(filled))
                    s.backend.copy(s.values.rows(filled), to: copy.values.rows(filled))
                }
            }
            storage = copy
        }
    }

    mutating func advance(by n: Int) { length += n }
}
