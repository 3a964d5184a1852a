import Testing
import QLoRABackends
import QLoRACore

/// Every backend (`Backends.available`) through its tensor handles, against `ReferenceBackend` through its own:
/// the memory ops (upload, views, write/read, copy, zero, download) and every op of the `Backend` protocol, inputs
/// uploaded, outputs downloaded (llama.cpp's `test-backend-ops` is the model). This is the suite a device backend
/// must pass; the kernel suites beside it check host kernels over raw pointers in more shapes.
@Suite struct TensorConformanceTests {
    static let backends = Backends.available(threads: 2)
    let reference: any Backend = ReferenceBackend()

    private func random(_ n: Int, _ seed: UInt64, scale: Float = 1) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<n).map { _ in (Float(rng.next() % 2_000_001) / 1_000_000 - 1) * scale }
    }

    private func close(_ a: [Float], _ b: [Float], tolerance: Float = 1e-4) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tolerance * max(1, abs($1)) }
    }

    private func backend(_ name: String) throws -> any Backend {
        try #require(Self.backends.first { $0.name == name }).backend
    }

    /// `op` on `backend` and on the reference: `inputs` uploaded (f32), `outputs` allocated with the given initial
    /// values; returns both sides' downloaded outputs.
    private func both(_ b: any Backend, inputs: [([Float], [Int])], outputs: [([Float], [Int])],
                      _ op: (any Backend, [Tensor], [Tensor]) -> Void) -> (ours: [[Float]], reference: [[Float]]) {
        func run(_ x: any Backend) -> [[Float]] {
            let ins = inputs.map { x.upload($0.0, shape: $0.1) }
            let outs = outputs.map { x.upload($0.0, shape: $0.1) }
            op(x, ins, outs)
            x.synchronize()
            return outs.map { x.download($0) }
        }
        return (run(b), run(reference))
    }

    @Test(arguments: backends.map(\.name))
    func memoryOpsRoundTrip(name: String) throws {
        let b = try backend(name)
        let values = random(24, 1)
        let t = b.upload(values, shape: [6, 4])
        #expect(b.download(t) == values)
        #expect(b.download(t.rows(2..<4)) == Array(values[8..<16]))
        let frozen = b.upload(frozen: values, shape: [6, 4])
        #expect(b.download(frozen.rows(5..<6)) == Array(values[20..<24]))
        let z = b.allocate([3, 4], .f32)
        #expect(b.download(z) == [Float](repeating: 0, count: 12))
        b.copy(frozen.rows(1..<3), to: z.rows(1..<3))
        #expect(b.download(z) == [Float](repeating: 0, count: 4) + Array(values[4..<12]))
        let patch: [Float] = [9, 8, 7, 6]
        patch.withUnsafeBufferPointer { b.write($0, into: z.rows(0..<1)) }
        var back = [Float](repeating: 0, count: 4)
        back.withUnsafeMutableBufferPointer { b.read(z.rows(0..<1), into: $0) }
        #expect(back == patch)
        b.zero(z.rows(2..<3))
        #expect(Array(b.download(z)[8..<12]) == [0, 0, 0, 0])
        let ids = b.upload([Int32(3), -100, 7], shape: [3])
        #expect(b.download(ids) == [3, -100, 7])
        #expect(b.storageTypes.contains(.f32) && b.storageTypes.contains(.i32) && b.storageTypes.contains(.fourBit))
    }

    @Test(arguments: backends.map(\.name))
    func productsMatchReference(name: String) throws {
        let b = try backend(name)
        let m = 5, n = 7, k = 33
        let a = random(m * k, 2), w = random(n * k, 3), c0 = random(m * n, 4)
        var r = both(b, inputs: [(a, [m, k]), (w, [n, k])], outputs: [(c0, [m, n])]) { x, i, o in
            x.matmulTransposed(i[0], i[1], o[0], m: m, n: n, k: k, accumulate: true)
        }
        #expect(close(r.ours[0], r.reference[0]))
        let bkn = random(k * n, 5)
        r = both(b, inputs: [(a, [m, k]), (bkn, [k, n])], outputs: [(c0, [m, n])]) { x, i, o in
            x.matmul(i[0], i[1], o[0], m: m, n: n, k: k, accumulate: false)
        }
        #expect(close(r.ours[0], r.reference[0]))
        let akm = random(k * m, 6)
        r = both(b, inputs: [(akm, [k, m]), (bkn, [k, n])], outputs: [(c0, [m, n])]) { x, i, o in
            x.matmulTransposedA(i[0], i[1], o[0], m: m, n: n, k: k, accumulate: true)
        }
        #expect(close(r.ours[0], r.reference[0]))
    }

    @Test(arguments: backends.map(\.name), [1, 6])
    func frozenLinearsMatchReference(name: String, rows: Int) throws {
        let b = try backend(name)
        let out = 24, inF = 128
        let x = random(rows * inF, 7), dense = random(out * inF, 8, scale: 0.1), dy = random(rows * out, 9)
        let q = FourBitQuantizer.quantize(dense, shape: [out, inF], options: FourBitOptions())
        for fourBit in [false, true] {
            func weight(_ z: any Backend) -> Tensor { fourBit ? z.upload(q) : z.upload(frozen: dense, shape: [out, inF]) }
            var r = both(b, inputs: [(x, [rows, inF])], outputs: [(random(rows * out, 10), [rows, out])]) { z, i, o in
                z.linear(i[0], weight(z), o[0], rows: rows, accumulate: true)
            }
            #expect(close(r.ours[0], r.reference[0]), "linear, 4-bit \(fourBit)")
            r = both(b, inputs: [(x, [rows, inF])], outputs: [([Float](repeating: 1, count: rows * out), [rows, out]),
                                                               ([Float](repeating: 1, count: rows * out), [rows, out])]) { z, i, o in
                z.linear(i[0], [weight(z), weight(z)], o, rows: rows)
            }
            #expect(close(r.ours[0], r.reference[0]) && r.ours[0] == r.ours[1], "linear group, 4-bit \(fourBit)")
            r = both(b, inputs: [(dy, [rows, out])], outputs: [(random(rows * inF, 11), [rows, inF])]) { z, i, o in
                z.linearBackwardInput(i[0], weight(z), o[0], rows: rows, accumulate: fourBit)
            }
            #expect(close(r.ours[0], r.reference[0]), "linear backward, 4-bit \(fourBit)")
        }
    }

    @Test(arguments: backends.map(\.name))
    func residentMatrixVectorMatchesThePlainProduct(name: String) throws {
        let b = try backend(name)
        // Values of the block-int8 form (what a GGUF Q8_0 head dequantizes to), so a CPU backend makes it resident.
        let rows = 40, cols = 64
        var w = [Float](repeating: 0, count: rows * cols)
        for i in w.indices {
            let code = i % 32 == 0 ? 127 : (i * 7) % 253 - 126  // every block reaches 127: d = max|v| / 127 exactly
            let d = Float(i / 32 % 5 + 1) / 512
            w[i] = Float(code) * d
        }
        let x = random(cols, 12)
        let head = b.upload(frozen: w, shape: [rows, cols])
        let xs = b.upload(x, shape: [1, cols])
        let plain = b.allocate([1, rows], .f32)
        b.matmulTransposed(xs, head, plain, m: 1, n: rows, k: cols, accumulate: false)
        guard let resident = b.makeResident(head) else {
            #expect(name != "cpu", "the CPU backend keeps block-int8 heads resident")
            return  // a backend without a resident form uses the plain product
        }
        let y = b.allocate([1, rows], .f32)
        b.matrixVector(resident, xs, y)
        #expect(close(b.download(y), b.download(plain), tolerance: 1e-5))
    }

    @Test(arguments: backends.map(\.name))
    func forwardOpsMatchReference(name: String) throws {
        let b = try backend(name)
        let rows = 5, dim = 16, heads = 4, kvHeads = 2, d = 8, start = 3
        let x = random(rows * dim, 13), g = random(dim, 14)
        var r = both(b, inputs: [(x, [rows, dim]), (g, [dim])], outputs: [([Float](repeating: 0, count: rows * dim), [rows, dim])]) { z, i, o in
            z.rmsNorm(i[0], weight: i[1], o[0], rows: rows, dim: dim, eps: 1e-5)
        }
        #expect(close(r.ours[0], r.reference[0]))
        let cosT = random(rows * d / 2, 15), sinT = random(rows * d / 2, 16), qx = random(rows * heads * d, 17)
        r = both(b, inputs: [(cosT, [rows, d / 2]), (sinT, [rows, d / 2])], outputs: [(qx, [rows, heads * d])]) { z, i, o in
            z.rope(o[0], rows: rows, heads: heads, headDim: d, cos: i[0], sin: i[1])
        }
        #expect(close(r.ours[0], r.reference[0]))
        r = both(b, inputs: [(cosT, [rows, d / 2]), (sinT, [rows, d / 2])], outputs: [(qx, [rows, heads * d])]) { z, i, o in
            z.ropeBackward(o[0], rows: rows, heads: heads, headDim: d, cos: i[0], sin: i[1])
        }
        #expect(close(r.ours[0], r.reference[0]))
        let k = random((start + rows) * kvHeads * d, 18), v = random(k.count, 19)
        r = both(b, inputs: [(qx, [rows, heads * d]), (k, [start + rows, kvHeads * d]), (v, [start + rows, kvHeads * d])],
                 outputs: [([Float](repeating: 0, count: qx.count), [rows, heads * d])]) { z, i, o in
            z.attention(q: i[0], k: i[1], v: i[2], out: o[0], rows: rows, start: start, heads: heads, kvHeads: kvHeads, headDim: d,
                        scale: 0.35)
        }
        #expect(close(r.ours[0], r.reference[0]))
        let gate = random(40, 20, scale: 3), up = random(40, 21)
        r = both(b, inputs: [(gate, [40]), (up, [40])], outputs: [([Float](repeating: 0, count: 40), [40]), (gate, [40])]) { z, i, o in
            z.swiglu(gate: i[0], up: i[1], o[0], count: 40)
            z.add(o[1], i[1], count: 40)
        }
        #expect(close(r.ours[0], r.reference[0]) && r.ours[1] == r.reference[1])
    }

    @Test(arguments: backends.map(\.name))
    func trainingOpsMatchReference(name: String) throws {
        let b = try backend(name)
        let rows = 9, heads = 4, kvHeads = 2, d = 8, dim = 16, vocab = 50
        let docs: [Int32] = [0, 0, 0, 0, 1, 1, 1, 2, 2]
        let q = random(rows * heads * d, 22, scale: 2), k = random(rows * kvHeads * d, 23, scale: 2), v = random(k.count, 24)
        let dOut = random(q.count, 25)
        func attention(_ z: any Backend, _ i: [Tensor], _ o: [Tensor]) {
            let documents = z.upload(docs, shape: [rows])
            z.attentionTraining(q: i[0], k: i[1], v: i[2], out: o[0], logsumexp: o[1], documents: documents, rows: rows, heads: heads,
                                kvHeads: kvHeads, headDim: d, scale: 0.35)
            z.attentionBackward(dOut: i[3], q: i[0], k: i[1], v: i[2], out: o[0], logsumexp: o[1], dq: o[2], dk: o[3], dv: o[4],
                                documents: documents, rows: rows, heads: heads, kvHeads: kvHeads, headDim: d, scale: 0.35)
        }
        let zeros = { (n: Int, shape: [Int]) in ([Float](repeating: 0, count: n), shape) }
        var r = both(b, inputs: [(q, [rows, heads * d]), (k, [rows, kvHeads * d]), (v, [rows, kvHeads * d]), (dOut, [rows, heads * d])],
                     outputs: [zeros(q.count, [rows, heads * d]), zeros(rows * heads, [rows, heads]), zeros(q.count, [rows, heads * d]),
                               zeros(k.count, [rows, kvHeads * d]), zeros(k.count, [rows, kvHeads * d])], attention)
        for (ours, ref) in zip(r.ours, r.reference) { #expect(close(ours, ref)) }

        let dy = random(rows * dim, 26), x = random(rows * dim, 27), w = random(dim, 28)
        r = both(b, inputs: [(dy, [rows, dim]), (x, [rows, dim]), (w, [dim])],
                 outputs: [(random(rows * dim, 29), [rows, dim]), zeros(dim, [dim])]) { z, i, o in
            z.rmsNormBackward(i[0], x: i[1], weight: i[2], dx: o[0], dWeight: o[1], rows: rows, dim: dim, eps: 1e-5, accumulate: true)
        }
        for (ours, ref) in zip(r.ours, r.reference) { #expect(close(ours, ref)) }
        let gate = random(40, 30, scale: 3), up = random(40, 31), dAct = random(40, 32)
        r = both(b, inputs: [(gate, [40]), (up, [40])], outputs: [(dAct, [40]), zeros(40, [40])]) { z, i, o in
            z.swigluBackward(o[0], gate: i[0], up: i[1], dGate: o[0], dUp: o[1], count: 40)
        }
        for (ours, ref) in zip(r.ours, r.reference) { #expect(close(ours, ref)) }

        let logits = random(rows * vocab, 33, scale: 4)
        let targets: [Int32] = [3, CrossEntropy.ignoreIndex, 49, 0, 7, 7, CrossEntropy.ignoreIndex, 12, 1]
        var sums: [(Double, Int)] = []
        r = both(b, inputs: [], outputs: [(logits, [rows, vocab])]) { z, _, o in
            sums.append(z.crossEntropy(logits: o[0], targets: z.upload(targets, shape: [rows]), dLogits: o[0], rows: rows, vocab: vocab,
                                       gradScale: 1.0 / 7))
        }
        #expect(close(r.ours[0], r.reference[0], tolerance: 1e-5))
        #expect(sums[0].1 == 7 && sums[1].1 == 7 && abs(sums[0].0 - sums[1].0) <= 1e-4 * abs(sums[1].0))
    }

    @Test(arguments: backends.map(\.name))
    func smallOpsGiveTheReferenceBits(name: String) throws {
        let b = try backend(name)
        let vocab = 11, dim = 13, rows = 6
        let table = random(vocab * dim, 34), dOut = random(rows * dim, 35)
        let ids: [Int32] = [3, 0, 10, 3, 7, 3]
        var r = both(b, inputs: [(table, [vocab, dim]), (dOut, [rows, dim])],
                     outputs: [([Float](repeating: 0, count: rows * dim), [rows, dim]), (random(vocab * dim, 36), [vocab, dim])]) { z, i, o in
            let t = z.upload(ids, shape: [rows])
            z.embedding(i[0], ids: t, o[0], rows: rows, dim: dim)
            z.embeddingBackward(i[1], ids: t, dTable: o[1], rows: rows, dim: dim)
        }
        #expect(r.ours == r.reference)
        let bias = random(dim, 37), xs = random(rows * dim, 38)
        r = both(b, inputs: [(bias, [dim])], outputs: [(xs, [rows, dim]), (xs, [rows, dim])]) { z, i, o in
            z.addBias(o[0], i[0], rows: rows, width: dim)
            z.scale(o[0], by: 0.37, count: rows * dim)
            z.dropout(o[0], o[1], count: rows * dim, mask: DropoutMask(probability: 0.3, key: 99))
        }
        #expect(r.ours == r.reference)
        let p = random(50, 39), g = random(50, 40), m = random(50, 41, scale: 0.1), v = random(50, 42, scale: 0.1).map(abs)
        let step = AdamWStep(learningRate: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01, t: 3)
        var squares: [Double] = []
        r = both(b, inputs: [(g, [50])], outputs: [(p, [50]), (m, [50]), (v, [50])]) { z, i, o in
            z.adamW(o[0], gradient: i[0], m: o[1], v: o[2], count: 50, step: step)
            squares.append(z.sumOfSquares(o[0], count: 50))
        }
        #expect(r.ours == r.reference)
        #expect(squares[0] == squares[1])
    }
}
