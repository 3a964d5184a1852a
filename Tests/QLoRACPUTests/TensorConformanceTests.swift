import Testing
import QLoRABackends
import QLoRABench
import QLoRACore

/// Every backend (`Backends.available`) through its tensor handles, against `ReferenceBackend` through its own:
/// the memory ops (upload, views, write/read, copy, zero, download) and every op of the `Backend` protocol, inputs
/// uploaded, outputs downloaded (`BackendConformance` in Sources/QLoRABench, which `qlora bench ops` also runs;
/// llama.cpp's `test-backend-ops` is the model). This is the suite a device backend
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
    func everyOpMatchesTheReference(name: String) throws {
        let b = try backend(name)
        let results = BackendConformance(candidate: b, reference: reference).run()
        #expect(results.count >= 30)
        for r in results { #expect(r.passed, "\(name): \(r.op): error \(r.maxError) > \(r.tolerance)") }
    }

    @Test func theErrorMeasureSeesEveryDifference() {
        #expect(BackendConformance.error([1, 2], [1, 2]) == 0)
        #expect(BackendConformance.error([1, 2.001], [1, 2]) > 0.0004)
        #expect(BackendConformance.error([-0.0], [0]) > 0, "a sign of zero differs from an exact op's")
        #expect(BackendConformance.error([.nan], [1]) == .infinity)
        #expect(BackendConformance.error([1], [1, 2]) == .infinity)
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
}
