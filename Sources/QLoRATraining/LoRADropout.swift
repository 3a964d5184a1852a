import QLoRACore
import QLoRAModel

/// LoRA dropout (spec lora-and-peft-format §1): the input of each adapter's branch, never the base path, is
/// multiplied by a keep mask scaled by `1/(1 − p)` (inverted dropout), with a separate mask per module as PEFT
/// has one `nn.Dropout` per adapted layer.
///
/// Masks are never stored: element `i` of the `[R, in]` input of layer `l`, projection `p` is kept when the
/// `i`-th draw of `SeededGenerator(seed: mix(stepSeed, l, p))` (top 24 bits as a uniform in [0, 1)) is ≥ `p`,
/// so the backward (and a checkpointed block's recompute) replays exactly the forward's mask from the seed,
/// and a resumed run replays it from the step's seed. PyTorch's generator differs, so masks match PEFT's
/// in distribution only.
struct LoRADropout {
    let probability: Float
    let seed: UInt64

    init(probability: Double, stepSeed: UInt64, layer: Int, projection: Projection) {
        self.probability = Float(probability)
        // SplitMix64-style mix of (step seed, layer, projection) into one seed.
        var z = stepSeed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(layer * 8 + projection.index + 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        seed = z ^ (z >> 31)
    }

    /// `values[i] = values[i] · mask[i] / (1 − p)`.
    func apply(_ values: inout [Float]) {
        var rng = SeededGenerator(seed: seed)
        let keepScale = 1 / (1 - probability)
        for i in values.indices {
            let u = Float(rng.next() >> 40) * (1 / Float(1 << 24))
            values[i] = u >= probability ? values[i] * keepScale : 0
        }
    }
}
