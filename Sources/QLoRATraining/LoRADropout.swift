import CQLoRAKernels
import Foundation
import QLoRACore
import QLoRAModel

/// LoRA dropout (spec lora-and-peft-format §1): the input of each adapter's branch, never the base path, is
/// multiplied by a keep mask scaled by `1/(1 − p)` (inverted dropout), with a separate mask per module as PEFT
/// has one `nn.Dropout` per adapted layer.
///
/// Masks are never stored: they are counter-based. Element `i` of the `[R, in]` input of layer `l`, projection
/// `p` is kept when the top 24 bits of a hash of `(i, key)` are ≥ `⌈p·2²⁴⌉`, with `key = mix(stepSeed, l, p)`
/// (`qlk_dropout` in CQLoRAKernels). Every element is independent, so masks are made in parallel, vectorized,
/// and the backward (and a checkpointed block's recompute) replays exactly the forward's mask from the seed, as
/// does a resumed run from the step's seed. PyTorch's generator differs, so masks match PEFT's in distribution only.
struct LoRADropout {
    let probability: Float
    let key: UInt64

    init(probability: Double, stepSeed: UInt64, layer: Int, projection: Projection) {
        self.probability = Float(probability)
        // SplitMix64-style mix of (step seed, layer, projection) into one key.
        var z = stepSeed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(layer * 8 + projection.index + 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        key = z ^ (z >> 31)
    }

    /// Elements whose top 24 hash bits fall below this are dropped: P(drop) = threshold / 2²⁴ ≈ p.
    var threshold: UInt32 { UInt32((Double(probability) * 16_777_216).rounded(.up)) }

    /// `values[i] = values[i] · mask[i] / (1 − p)`.
    func apply(_ values: inout [Float]) {
        values.withUnsafeMutableBufferPointer { v in run(UnsafePointer(v.baseAddress!), v.baseAddress!, v.count) }
    }

    /// `dropout(source)` as a new array.
    func applied(to source: [Float]) -> [Float] {
        [Float](unsafeUninitializedCapacity: source.count) { out, initialized in
            source.withUnsafeBufferPointer { s in run(s.baseAddress!, out.baseAddress!, s.count) }
            initialized = source.count
        }
    }

    private func run(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ count: Int) {
        guard count > 0 else { return }
        let threshold = self.threshold, scale = 1 / (1 - probability), key = self.key
        let parts = min(ProcessInfo.processInfo.activeProcessorCount, max(1, count / 65_536))
        Parallel.forEachRange(count, parts: parts) { range in
            qlk_dropout(src + range.lowerBound, dst + range.lowerBound, Int64(range.count), UInt64(range.lowerBound), key,
                        threshold, scale)
        }
    }
}
