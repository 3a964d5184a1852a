import CQLoRAKernelMath
import Foundation
import QLoRACore
import QLoRACPU
import QLoRAFormats
import Testing

/// The CUDA kernels' per-element math (Sources/QLoRACUDA/Kernels/qlora_math.h), compiled for the host
/// (Sources/CQLoRAKernelMath), against the CPU backend bit for bit: the GPU computes these same statements with
/// explicitly rounded operations, so the dequantized weights, bf16 roundings, dropout masks, AdamW updates and RoPE
/// rotations a GPU run makes are the CPU backend's.
@Suite struct KernelMathTests {
    static func random(_ count: Int, seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }

    /// `qlm_dequant4` of `w` (plain or double-quantized scales).
    static func hostDequant(_ w: FourBitTensor) -> [Float] {
        var out = [Float](repeating: 0, count: w.count)
        let book = w.type.codebook
        switch w.scales {
        case .plain(let absmax):
            qlm_dequant4(w.packed, book, absmax, nil, nil, nil, 0, 1, Int64(w.blocksize), Int64(w.count), &out)
        case .nested(let n):
            qlm_dequant4(w.packed, book, nil, n.codes, n.absmax, n.map, n.offset, Int64(n.blocksize), Int64(w.blocksize),
                         Int64(w.count), &out)
        }
        return out
    }

    @Test(arguments: FourBitType.allCases, [false, true])
    func dequantizationIsTheCPUBackends(_ type: FourBitType, _ doubleQuant: Bool) {
        for (n, k, blocksize) in [(7, 45, 32), (64, 577, 64), (130, 1000, 128), (3, 4100, 4096)] {
            let w = FourBitQuantizer.quantize(Self.random(n * k, seed: UInt64(n * k), scale: 0.3), shape: [n, k],
                                              options: FourBitOptions(type: type, blocksize: blocksize, doubleQuant: doubleQuant))
            let host = Self.hostDequant(w).map(\.bitPattern)
            #expect(host == FourBitQuantizer.dequantizeReference(w).map(\.bitPattern), "\(n)x\(k) bs\(blocksize)")
            #expect(host == FourBitKernels.dequantize(w, threads: 2).map(\.bitPattern), "\(n)x\(k) bs\(blocksize)")
        }
    }

    @Test func bf16RoundingIsTheSafetensorsWriters() {
        var values = Self.random(20_000, seed: 3, scale: 1000)
        // Ties (the low half exactly 0x8000, both parities), NaN, infinities, signed zeros, subnormals, the largest
        // finite value (rounds up to infinity).
        values += [0x3F80_8000, 0x3F81_8000, 0x7FC0_0001, 0xFFC1_2345, 0x7F80_0000, 0xFF80_0000, 0x8000_0000, 0, 1, 0x0000_8000,
                   0x807F_FFFF, 0x7F7F_FFFF].map { Float(bitPattern: $0) }
        var bits = [UInt16](repeating: 0, count: values.count)
        qlm_bf16_from_float(values, &bits, Int64(values.count))
        #expect(bits == values.map { SafetensorsConversion.bf16(from: $0) })
        var back = [Float](repeating: 0, count: values.count)
        qlm_bf16_to_float(bits, &back, Int64(bits.count))
        #expect(back.map(\.bitPattern) == bits.map { SafetensorsConversion.float(fromBF16: $0).bitPattern })
    }

    @Test(arguments: [Float(0.05), 0.1, 0.5])
    func dropoutMasksAreTheCPUBackends(_ probability: Float) {
        let count = 10_007
        let src = Self.random(count, seed: 4)
        let mask = DropoutMask(probability: probability, key: 0x1234_5678_9ABC_DEF0)
        var cpu = [Float](repeating: 0, count: count), host = cpu
        CPUBackend(threads: 2).dropout(src, &cpu, count: count, mask: mask)
        qlm_dropout(src, &host, Int64(count), 0, mask.key, mask.threshold, mask.scale)
        #expect(host.map(\.bitPattern) == cpu.map(\.bitPattern))
        // A kernel launched on a slice starts counting at the slice's first index.
        var tail = [Float](repeating: 0, count: count - 1000)
        src.withUnsafeBufferPointer { s in
            qlm_dropout(s.baseAddress! + 1000, &tail, Int64(count - 1000), 1000, mask.key, mask.threshold, mask.scale)
        }
        #expect(tail.map(\.bitPattern) == cpu[1000...].map(\.bitPattern))
    }

    @Test(arguments: [(0.9, 0.999, 0.01), (0.3, 0.99, 0.0), (0.0, 0.5, 0.1)])
    func adamWIsTheCPUBackends(_ betas: (Double, Double, Double)) {
        let count = 4099
        var p = Self.random(count, seed: 5), m = [Float](repeating: 0, count: count), v = m
        var hp = p, hm = m, hv = v
        for t in 1...5 {
            let g = Self.random(count, seed: UInt64(10 + t), scale: 0.01 * Float(t))
            let step = AdamWStep(learningRate: 2e-4, beta1: betas.0, beta2: betas.1, epsilon: 1e-8, weightDecay: betas.2, t: t)
            CPUBackend(threads: 2).adamW(&p, gradient: g, m: &m, v: &v, count: count, step: step)
            let s = qlm_adamw_step(decay: step.decay ?? 1, hasDecay: step.decay == nil ? 0 : 1, w1: step.w1, b2: step.b2, w2: step.w2,
                                   stepSize: step.stepSize, bc2Sqrt: step.bc2Sqrt, epsilon: step.epsilon)
            qlm_adamw(&hp, g, &hm, &hv, Int64(count), s)
            #expect(hp.map(\.bitPattern) == p.map(\.bitPattern), "step \(t): parameters")
            #expect(hm.map(\.bitPattern) == m.map(\.bitPattern), "step \(t): first moment")
            #expect(hv.map(\.bitPattern) == v.map(\.bitPattern), "step \(t): second moment")
        }
    }

    @Test func ropeIsTheCPUBackends() {
        let rows = 9, heads = 3, headDim = 64, half = headDim / 2
        let x = Self.random(rows * heads * headDim, seed: 6, scale: 3)
        let angles = (0..<(rows * half)).map { i in Float(i / half) * Foundation.pow(10_000, -Float(i % half) / Float(half)) }
        let cos = angles.map { Foundation.cos($0) }, sin = angles.map { Foundation.sin($0) }
        for inverse in [false, true] {
            var cpu = x, reference = x, host = x
            if inverse {
                CPUBackend(threads: 2).ropeBackward(&cpu, rows: rows, heads: heads, headDim: headDim, cos: cos, sin: sin)
                ReferenceBackend().ropeBackward(&reference, rows: rows, heads: heads, headDim: headDim, cos: cos, sin: sin)
            } else {
                CPUBackend(threads: 2).rope(&cpu, rows: rows, heads: heads, headDim: headDim, cos: cos, sin: sin)
                ReferenceBackend().rope(&reference, rows: rows, heads: heads, headDim: headDim, cos: cos, sin: sin)
            }
            qlm_rope(&host, cos, sin, Int64(rows), Int64(heads), Int64(headDim), inverse ? 1 : 0)
            #expect(host.map(\.bitPattern) == reference.map(\.bitPattern), "inverse \(inverse): reference")
            #expect(host.map(\.bitPattern) == cpu.map(\.bitPattern), "inverse \(inverse): cpu")
        }
    }
}
