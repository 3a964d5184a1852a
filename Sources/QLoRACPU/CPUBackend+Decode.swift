import QLoRACore

// The decode step's special forms (Backend.linear over several weights, resident matrices): one-row products
// read 4-bit weights in place (FourBitGEMV.swift) and the LM head from its exact block-int8 copy
// (BlockInt8Matrix.swift) when it has one.
extension CPUBackend {
    /// One row: every weight's GEMV in one parallel region (the same values as one `linear` each); more rows:
    /// one `linear` after another.
    public func linear(_ x: UnsafePointer<Float>, _ ws: [FourBitTensor], _ ys: [UnsafeMutablePointer<Float>], rows m: Int) {
        precondition(ws.count == ys.count, "\(ws.count) weights for \(ys.count) outputs")
        if m == 1 {
            FourBitKernels.gemv(ws, Array(repeating: x, count: ws.count), ys, accumulate: false, threads: threads, pool: pool, path: kernels)
            return
        }
        for (w, y) in zip(ws, ys) { linear(x, w, y, rows: m, accumulate: false) }
    }

    /// The exact block-int8 copy of `w` (1.125 bytes per weight instead of 4, the same values), when every block of
    /// 32 is of that form (a GGUF Q8_0 tensor dequantized); else nil.
    public func makeResident(_ w: UnsafeBufferPointer<Float>, rows: Int, cols: Int) -> (any ResidentMatrix)? {
        BlockInt8Matrix.exact(w, rows: rows, cols: cols).map(ResidentBlockInt8.init)
    }

    public func matrixVector(_ w: any ResidentMatrix, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
        guard let w = w as? ResidentBlockInt8 else { preconditionFailure("not a matrix CPUBackend made resident") }
        w.matrix.gemv(x, y, threads: threads, pool: pool, path: kernels)
    }
}

/// A `BlockInt8Matrix` held for `CPUBackend.matrixVector`.
final class ResidentBlockInt8: ResidentMatrix {
    let matrix: BlockInt8Matrix
    var rows: Int { matrix.rows }
    var cols: Int { matrix.cols }

    init(_ matrix: BlockInt8Matrix) { self.matrix = matrix }
}
