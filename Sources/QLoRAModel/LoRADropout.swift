import QLoRACore


/// LoRA dropout (Hu et al. 2021, as PEFT applies it): the input of each adapter's branch, never the base path, is
/// multiplied by a keep mask scaled by `1/(1 − p)` (inverted dropout), with a separate mask per module as PEFT
/// has one `nn.Dropout` per adapted layer.
///
/// Masks are never stored: they are counter-based (`DropoutMask`, applied by `Backend.dropout`), keyed by
/// `mix(stepSeed, l, p)`. The backward (and a checkpointed block's recompute) replays exactly the forward's mask
/// from the seed, as does a resumed run from the step's seed. PyTorch's generator differs, so masks match PEFT's
/// in distribution only.
public enum LoRADropout {
    /// The mask of layer `layer`, projection `projection` in the micro-batch seeded `stepSeed`.
    public static func mask(probability: Double, stepSeed: UInt64, layer: Int, projection: Projection) -> DropoutMask {
        // SplitMix64-style mix of (step seed, layer, projection) into one key.
        var z = stepSeed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(layer * 8 + projection.index + 1)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return DropoutMask(probability: Float(probability), key: z ^ (z >> 31))
    }
}
