import Testing
import QLoRACore
import QLoRACPU

/// Hand-checkable vectors of spec nf4-and-double-quant.md §9 and agreement of the fast paths with the
/// scalar reference (bit for bit).
@Suite struct FourBitCodecTests {
    let nf4 = FourBitType.nf4.codebook
    let plain = FourBitOptions(type: .nf4, blocksize: 64, doubleQuant: false)

    private func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func codeTablesMatchTheSpec() {
        #expect(nf4.first == -1 && nf4.last == 1 && nf4[7] == 0)
        #expect(nf4[1].bitPattern == 0xbf32_39b1 && nf4[14].bitPattern == 0x3f39_13b3)
        let t = FourBitType.nf4.quantizeTable.thresholds
        #expect(t.count == 15)
        #expect(t[0].bitPattern == 0xbf59_1cd8 && t[7].bitPattern == 0x3d22_faff && t[14].bitPattern == 0x3f5c_89da)
        let d = DynamicMap.signed
        #expect(d.count == 256)
        let bits: [UInt32] = [0, 126, 127, 128, 254, 255].map { d[$0].bitPattern }
        #expect(bits == [0xbf7e_3333, 0xb513_a3b7, 0, 0x3513_a3b7, 0x3f7e_3333, 0x3f80_0000])
        let total: Double = d.reduce(0.0) { $0 + Double($1) }
        #expect(total == 1.0)
    }

    @Test func t1ExactCodes() {
        let values = (0..<64).map { 2 * nf4[$0 % 16] }
        let q = FourBitQuantizer.quantize(values, shape: [4, 16], options: plain)
        #expect(q.scales == .plain([2]))
        #expect(hex(q.packed) == String(repeating: "0123456789abcdef", count: 4))
        #expect(FourBitQuantizer.dequantizeReference(q) == values)
    }

    @Test func t2TiesGoToTheLowerCode() {
        let t = FourBitType.nf4.quantizeTable.thresholds
        let block = [Float(1)] + t + [Float](repeating: 0, count: 48)
        let q = FourBitQuantizer.quantize(block, shape: [64], options: plain)
        let codes = q.packed.flatMap { [$0 >> 4, $0 & 15] }
        let want: [UInt8] = [15, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 7]
        #expect(Array(codes.prefix(17)) == want)
        let up = [Float(1)] + t.map { $0.nextUp } + [Float](repeating: 0, count: 48)
        let q2 = FourBitQuantizer.quantize(up, shape: [64], options: plain)
        let codes2: [UInt8] = q2.packed.flatMap { [$0 >> 4, $0 & 15] }
        let want2: [UInt8] = [15, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
        #expect(Array(codes2.prefix(16)) == want2)
    }

    @Test func t3Ramp() {
        let ramp = (0..<64).map { Float(2 * $0 - 63) / 63 }
        let q = FourBitQuantizer.quantize(ramp, shape: [64], options: plain)
        #expect(hex(q.packed) == "00000111111112222233344445556667788899aaabbbccccddddeeeeeeefffff")
    }

    @Test func t4OddLength() {
        let q = FourBitQuantizer.quantize([1, -1, 0.5], shape: [3], options: plain)
        #expect(q.packed == [0xF0, 0xC7])
        #expect(q.scales == .plain([1]))
    }

    @Test func t6DoubleQuantNearestRule() {
        var x = [Float](repeating: 0, count: 192)
        x[0] = 1; x[64] = -2; x[128] = 3
        let q = FourBitQuantizer.quantize(x, shape: [192], options: FourBitOptions(doubleQuant: true, nestedRounding: .nearest))
        guard case .nested(let n) = q.scales else { Issue.record("not nested"); return }
        #expect(n.offset == 2 && n.absmax == [1] && n.codes == [0, 127, 255])
        let scales: [Float] = [q.scale(ofBlock: 0), q.scale(ofBlock: 1), q.scale(ofBlock: 2)]
        #expect(scales == [1.00703125, 2, 3])
        let bytes: [UInt8] = [q.packed[0], q.packed[32], q.packed[64]]
        #expect(bytes == [0xF7, 0x07, 0xF7])
    }

    @Test func t7DegenerateNestedBlock() {
        var x = [Float](repeating: 0, count: 128)
        x[0] = 1; x[64] = -1
        let q = FourBitQuantizer.quantize(x, shape: [128], options: FourBitOptions(doubleQuant: true))
        guard case .nested(let n) = q.scales else { Issue.record("not nested"); return }
        #expect(n.offset == 1 && n.absmax == [0] && n.codes == [0, 0])
        let scales: [Float] = [q.scale(ofBlock: 0), q.scale(ofBlock: 1)]
        #expect(scales == [1, 1])
        let bytes: [UInt8] = [q.packed[0], q.packed[32]]
        #expect(bytes == [0xF7, 0x07])
    }

    @Test func t9ZeroBlockUsesTheCPURule() {
        let q = FourBitQuantizer.quantize([Float](repeating: 0, count: 64), shape: [64], options: plain)
        #expect(q.scales == .plain([0]))
        #expect(q.packed == [UInt8](repeating: 0x77, count: 32))
        #expect(FourBitQuantizer.dequantizeReference(q).allSatisfy { $0 == 0 })
    }

    @Test func nearestIndexIsTheExactNearestWithEvenTies() {
        let d = DynamicMap.signed
        var rng = SeededGenerator(seed: 3)
        for _ in 0..<20_000 {
            let z = Float(Double(rng.next() % 2_000_001) / 1_000_000 - 1) * (rng.next() % 2 == 0 ? 1 : 1e-3)
            let best = (0..<256).min { a, b in
                let da = abs(Double(d[a]) - Double(z)), db = abs(Double(d[b]) - Double(z))
                return da != db ? da < db : a % 2 == 0
            }!
            // Exact-nearest in float64; the kernel compares against float32 midpoints, so only
            // values within an ulp of a midpoint may differ.
            let got = Int(FourBitQuantizer.nearestIndex(z, d))
            if got != best {
                let mid = (d[min(got, best)] + d[max(got, best)]) * 0.5
                #expect(abs(z - mid) <= mid.ulp * 2, "z=\(z) got \(got) want \(best)")
            }
        }
    }

    private func randomValues(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { i in
            let u = Float(rng.next() % 2_000_001) / 1_000_000 - 1
            // Mix of scales, exact zeros and an outlier so all code paths run.
            if i % 97 == 0 { return 0 }
            if i % 1013 == 0 { return u * 1000 }
            return u * (i % 3 == 0 ? 0.02 : 1)
        }
    }

    @Test(arguments: [(64, 1), (64, 7), (33, 70), (128, 512)], [32, 64, 256, 4096])
    func fastQuantizeMatchesReference(shape: (Int, Int), blocksize: Int) {
        let values = randomValues(shape.0 * shape.1, seed: UInt64(shape.0 * 31 + blocksize))
        for type in FourBitType.allCases {
            for dq in [false, true] {
                let o = FourBitOptions(type: type, blocksize: blocksize, doubleQuant: dq)
                let fast = FourBitQuantizer.quantize(values, shape: [shape.0, shape.1], options: o)
                let ref = FourBitQuantizer.quantizeReference(values, shape: [shape.0, shape.1], options: o)
                #expect(fast == ref, "\(type) bs \(blocksize) dq \(dq)")
            }
        }
    }

    @Test(arguments: KernelPath.allCases)
    func simdDequantizeMatchesReferenceBitForBit(path: KernelPath) {
        for (rows, cols, bs) in [(33, 70, 64), (16, 576, 64), (7, 96, 32), (4, 4096, 4096), (1, 3, 64)] {
            let values = randomValues(rows * cols, seed: UInt64(rows * cols))
            for type in FourBitType.allCases {
                let q = FourBitQuantizer.quantize(values, shape: [rows, cols],
                                                  options: FourBitOptions(type: type, blocksize: bs, doubleQuant: true))
                let ref = FourBitQuantizer.dequantizeReference(q)
                let fast = FourBitKernels.dequantize(q, threads: 2, path: path)
                #expect(fast.map(\.bitPattern) == ref.map(\.bitPattern), "\(path) \(type) \(rows)x\(cols)")
                // A sub-rectangle with odd offsets.
                var sub = [Float](repeating: 0, count: 3 * 5)
                if rows >= 4, cols >= 6 {
                    sub.withUnsafeMutableBufferPointer { o in
                        FourBitKernels.dequantizeRows(q, scales: q.scales(ofBlocks: 0..<q.blockCount), codebook: type.codebook,
                                                      rows: 1..<4, columns: 1..<6, into: o.baseAddress!, threads: 1,
                                                      path: path)
                    }
                    let want = (1..<4).flatMap { r in (1..<6).map { c in ref[r * cols + c] } }
                    #expect(sub == want)
                }
            }
        }
    }

    @Test(arguments: [(1, 40, 64), (9, 256, 192), (70, 576, 1536), (33, 1536, 576)])
    func fourBitLinearMatchesReference(m: Int, n: Int, k: Int) {
        let w = FourBitQuantizer.quantize(randomValues(n * k, seed: UInt64(n + k)), shape: [n, k])
        let x = randomValues(m * k, seed: 9).map { $0 * 0.5 }
        let dense = FourBitQuantizer.dequantizeReference(w)
        let cpu = CPUBackend(threads: 2)
        var want = [Float](repeating: 0.25, count: m * n), got = want
        cpu.matmulTransposed(x, dense, &want, m: m, n: n, k: k, accumulate: true)
        cpu.linear(x, w, &got, rows: m, accumulate: true)
        let scale = want.map(abs).max()! + 1
        #expect(zip(got, want).allSatisfy { abs($0 - $1) <= 1e-5 * scale })
        let dy = randomValues(m * n, seed: 5)
        var dxWant = [Float](repeating: 0, count: m * k), dxGot = dxWant
        cpu.matmul(dy, dense, &dxWant, m: m, n: k, k: n, accumulate: false)
        cpu.linearBackwardInput(dy, w, &dxGot, rows: m, accumulate: false)
        let s2 = dxWant.map(abs).max()! + 1
        #expect(zip(dxGot, dxWant).allSatisfy { abs($0 - $1) <= 1e-5 * s2 })
        if m <= 9 {
            var r = [Float](repeating: 0, count: m * n)
            ReferenceBackend().linear(x, w, &r, rows: m, accumulate: false)
            var c = r
            cpu.linear(x, w, &c, rows: m, accumulate: false)
            #expect(zip(c, r).allSatisfy { abs($0 - $1) <= 1e-4 * scale })
        }
    }
}
