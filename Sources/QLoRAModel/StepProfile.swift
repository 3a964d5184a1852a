import Dispatch

/// Wall time spent in each part of training steps (for `qlora bench train`'s profile of where the time goes).
///
/// A model with a profile attached (`LlamaModel.profile`) adds the time of every op it runs to the op's part.
/// One model, one caller: parts are timed from the calling thread (the backend's own threads run inside them).
public final class StepProfile: @unchecked Sendable {
    public enum Part: String, CaseIterable, Sendable {
        case embedding = "embedding"
        case baseForward = "frozen 4-bit linears, forward (x·Wᵀ)"
        case baseBackward = "frozen 4-bit linears, backward (dy·W)"
        case loraForward = "LoRA branch, forward"
        case loraBackward = "LoRA branch, backward (dA, dB, dx)"
        case dropout = "LoRA dropout masks"
        case attentionForward = "attention, forward"
        case attentionBackward = "attention, backward"
        case elementwiseForward = "norms, RoPE, SwiGLU, forward"
        case elementwiseBackward = "norms, RoPE, SwiGLU, backward"
        case head = "final norm, lm_head, cross-entropy (fwd + bwd)"
        case optimizer = "clipping + AdamW"
    }

    public private(set) var nanoseconds: [Part: UInt64] = [:]

    public init() {}

    @inline(__always)
    public func measure<T>(_ part: Part, _ body: () throws -> T) rethrows -> T {
        let t0 = DispatchTime.now().uptimeNanoseconds
        defer { nanoseconds[part, default: 0] += DispatchTime.now().uptimeNanoseconds - t0 }
        return try body()
    }

    public func reset() { nanoseconds = [:] }
}
