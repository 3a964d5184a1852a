import QLoRACore

/// Length-grouped order (as HF's `LengthGroupedSampler`): a seeded shuffle cut into megabatches of
/// `megabatch` sequences, each sorted by length, longest first; batches taken in this order hold
/// sequences of similar length, so little compute goes to padding. The longest sequence leads, so an
/// out-of-memory error shows up on the first step.
enum LengthGrouping {
    static func order(lengths: [Int], seed: UInt64, megabatch: Int = 64) -> [Int] {
        var rng = SeededGenerator(seed: seed)
        var indices = Array(lengths.indices)
        rng.shuffle(&indices)
        var out: [Int] = []
        out.reserveCapacity(indices.count)
        var start = 0
        while start < indices.count {
            let chunk = indices[start..<min(indices.count, start + megabatch)]
            out += chunk.sorted { lengths[$0] != lengths[$1] ? lengths[$0] > lengths[$1] : $0 < $1 }
            start += megabatch
        }
        if let longest = out.indices.max(by: { lengths[out[$0]] < lengths[out[$1]] }), longest != 0 {
            out.swapAt(0, longest)
        }
        return out
    }
}
