import Foundation

/// Learning-rate schedules with warmup, as transformers defines them (`get_constant_schedule`,
/// `get_constant_schedule_with_warmup`, `get_linear_schedule_with_warmup`, `get_cosine_schedule_with_warmup`
/// with 0.5 cycles): the multiplier for the update with 0-based index `step`.
///
/// `constant` with `warmupSteps > 0` warms up linearly (transformers' `constant_with_warmup`); the QLoRA
/// recipe's plain `constant` ignores warmup, which here is the same as `warmupSteps: 0`.
public struct LearningRateSchedule: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case constant, linear, cosine }

    public var kind: Kind
    public var peak: Double
    public var warmupSteps: Int
    public var totalSteps: Int

    public init(kind: Kind, peak: Double, warmupSteps: Int, totalSteps: Int) {
        self.kind = kind
        self.peak = peak
        self.warmupSteps = max(0, warmupSteps)
        self.totalSteps = max(1, totalSteps)
    }

    /// The multiplier of `peak` for update `step` (0-based).
    public func factor(_ step: Int) -> Double {
        if step < warmupSteps { return Double(step) / Double(max(1, warmupSteps)) }
        switch kind {
        case .constant:
            return 1
        case .linear:
            return max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine:
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            return max(0, 0.5 * (1 + Foundation.cos(Double.pi * 0.5 * 2 * progress)))
        }
    }

    /// The learning rate of update `step`.
    public func learningRate(_ step: Int) -> Double { peak * factor(step) }
}
