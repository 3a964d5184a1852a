// GGUFDequantizer: GGUF tensor data (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K) to
// Float32, bit-identical to ggml's and gguf-py's dequantizers (spec/safetensors-and-gguf.md §2.4–§2.6).
// Large inputs are split into block ranges and decoded on all cores.

import Foundation
import QLoRACore

/// A tensor that cannot be dequantized: the type has no decoder here, or the sizes do not fit.
public struct GGUFDequantizeError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        /// No dequantizer for this type (for example Q2_K, IQ4_NL or an unknown id).
        case unsupportedType(GGUFTensorType)
        /// The element count is negative or not a multiple of the type's block size.
        case countNotBlockMultiple(count: Int, blockSize: Int, type: GGUFTensorType)
        /// The input holds fewer bytes than `count` elements need.
        case inputTooShort(needed: Int, available: Int)
        /// A row range outside `0..<rowCount` (a row is ne0 elements).
        case rowsOutOfRange(lower: Int, upper: Int, rowCount: Int)
        /// The element or byte count overflows Int.
        case sizeOverflow

        public var description: String {
            switch self {
            case .unsupportedType(let type):
                "cannot dequantize tensor type \(type) (id \(type.rawValue)): supported types are "
                    + GGUFDequantizer.supportedTypes.map(\.description).joined(separator: ", ")
            case .countNotBlockMultiple(let count, let blockSize, let type):
                "element count \(count) is not a multiple of the \(type) block size \(blockSize)"
            case .inputTooShort(let needed, let available):
                "tensor data too short: needs \(needed) bytes, has \(available)"
            case .rowsOutOfRange(let lower, let upper, let rowCount):
                "rows \(lower)..<\(upper) are outside 0..<\(rowCount)"
            case .sizeOverflow: "element or byte count overflows"
            }
        }
    }

    /// The file, when known.
    public let path: String?
    /// The tensor, when known.
    public let tensor: String?
    public let kind: Kind

    public init(path: String? = nil, tensor: String? = nil, kind: Kind) {
        self.path = path
        self.tensor = tensor
        self.kind = kind
    }

    public var description: String {
        var parts: [String] = []
        if let path { parts.append(path) }
        if let tensor { parts.append("tensor '\(tensor)'") }
        parts.append(kind.description)
        return parts.joined(separator: ": ")
    }
}

/// Decodes GGUF tensor data to Float32, bit for bit as ggml does (spec §2.6: Float32 arithmetic, `d·sc`
/// formed before multiplying by the quant). Stateless and thread-safe.
public enum GGUFDequantizer {
    /// The types `dequantize` decodes.
    public static let supportedTypes: [GGUFTensorType] = [
        .f32, .f16, .bf16, .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q4_K, .q5_K, .q6_K,
    ]

    /// Whether `dequantize` decodes `type`.
    public static func supports(_ type: GGUFTensorType) -> Bool { kernel(for: type) != nil }

    /// Decodes the first `count` elements of `bytes` (whole blocks of `type`, little-endian, as stored in
    /// GGUF) into `out[0..<count]`. `count` must be a multiple of `type.blockSize`; `bytes` may be longer
    /// than needed and need not be aligned. Inputs of 64 Ki elements or more are decoded on all cores.
    /// Throws `GGUFDequantizeError` for an unsupported type or sizes that do not fit; never traps.
    public static func dequantize(_ type: GGUFTensorType, _ bytes: UnsafeRawBufferPointer, count: Int,
                                  into out: UnsafeMutablePointer<Float>) throws {
        guard let kernel = kernel(for: type) else {
            throw GGUFDequantizeError(kind: .unsupportedType(type))
        }
        let blockSize = type.blockSize, blockBytes = type.bytesPerBlock
        guard count >= 0, count % blockSize == 0 else {
            throw GGUFDequantizeError(kind: .countNotBlockMultiple(count: count, blockSize: blockSize, type: type))
        }
        let blocks = count / blockSize
        let (needed, overflow) = blocks.multipliedReportingOverflow(by: blockBytes)
        guard !overflow else { throw GGUFDequantizeError(kind: .sizeOverflow) }
        guard bytes.count >= needed else {
            throw GGUFDequantizeError(kind: .inputTooShort(needed: needed, available: bytes.count))
        }
        guard blocks > 0, let base = bytes.baseAddress else { return }
        run(kernel, base, out, blocks: blocks, blockSize: blockSize, blockBytes: blockBytes)
    }

    /// Decodes rows `rows` of tensor `info` from `file` into `out` (`rows.count × ne0` values, row-major).
    /// A row is ne0 = `info.dims[0]` elements, so the tensor has `elementCount / ne0` rows (ne1·ne2·ne3).
    /// Throws `GGUFError` when the data is not readable, `GGUFDequantizeError` for an unsupported type
    /// or a row range outside the tensor.
    public static func dequantizeRows(_ info: GGUFTensorInfo, from file: GGUFFile, rows: Range<Int>,
                                      into out: UnsafeMutablePointer<Float>) throws {
        let (ne0, _, rowBytes) = try rowGeometry(info, rows: rows, path: file.path)
        try withExtendedLifetime(file) {
            let data = try file.tensorData(info)
            let start = rows.lowerBound * rowBytes
            let length = rows.count * rowBytes
            guard start + length <= data.count else {
                throw GGUFDequantizeError(path: file.path, tensor: info.name,
                                          kind: .inputTooShort(needed: start + length, available: data.count))
            }
            let slice = UnsafeRawBufferPointer(rebasing: data[start..<(start + length)])
            do {
                try dequantize(info.type, slice, count: rows.count * ne0, into: out)
            } catch let error as GGUFDequantizeError {
                throw GGUFDequantizeError(path: file.path, tensor: info.name, kind: error.kind)
            }
        }
    }

    // MARK: Internals

    /// Checks that `info` has a decoder and that `rows` lies inside it; returns (ne0, row count, bytes per row).
    static func rowGeometry(_ info: GGUFTensorInfo, rows: Range<Int>, path: String) throws
        -> (ne0: Int, rowCount: Int, rowBytes: Int) {
        guard supports(info.type) else {
            throw GGUFDequantizeError(path: path, tensor: info.name, kind: .unsupportedType(info.type))
        }
        let ne0 = info.dims.first ?? 1
        guard ne0 > 0, ne0 % info.type.blockSize == 0 else {
            throw GGUFDequantizeError(path: path, tensor: info.name,
                                      kind: .countNotBlockMultiple(count: ne0, blockSize: info.type.blockSize,
                                                                   type: info.type))
        }
        let rowCount = info.elementCount / ne0
        guard rows.lowerBound >= 0, rows.upperBound <= rowCount else {
            throw GGUFDequantizeError(path: path, tensor: info.name,
                                      kind: .rowsOutOfRange(lower: rows.lowerBound, upper: rows.upperBound,
                                                            rowCount: rowCount))
        }
        return (ne0, rowCount, ne0 / info.type.blockSize * info.type.bytesPerBlock)
    }

    static func kernel(for type: GGUFTensorType) -> DequantKernels.Kernel? {
        switch type {
        case .f32: DequantKernels.f32
        case .f16: DequantKernels.f16
        case .bf16: DequantKernels.bf16
        case .q4_0: DequantKernels.q4_0
        case .q4_1: DequantKernels.q4_1
        case .q5_0: DequantKernels.q5_0
        case .q5_1: DequantKernels.q5_1
        case .q8_0: DequantKernels.q8_0
        case .q4_K: DequantKernels.q4_K
        case .q5_K: DequantKernels.q5_K
        case .q6_K: DequantKernels.q6_K
        default: nil
        }
    }

    /// Below this many output elements the work stays on the calling thread.
    static let parallelThreshold = 1 << 16
    /// Target output elements per parallel task (256 KiB of Float32).
    static let chunkElements = 1 << 16
    /// Cores to spread large inputs over, read once (on Linux the query reads cgroup files).
    static let workerCount = max(1, ProcessInfo.processInfo.activeProcessorCount)

    private static func run(_ kernel: DequantKernels.Kernel, _ src: UnsafeRawPointer,
                            _ dst: UnsafeMutablePointer<Float>, blocks: Int, blockSize: Int, blockBytes: Int) {
        let count = blocks * blockSize
        let cores = workerCount
        guard cores > 1, count >= parallelThreshold else {
            kernel(src, dst, blocks)
            return
        }
        // Enough tasks to balance load across cores, each a whole number of blocks.
        let tasks = min(blocks, max(cores, (count + chunkElements - 1) / chunkElements))
        Parallel.forEachChunk(blocks, chunk: (blocks + tasks - 1) / tasks, threads: cores) { range in
            kernel(src + range.lowerBound * blockBytes, dst + range.lowerBound * blockSize, range.count)
        }
    }
}

public extension GGUFFile {
    /// The whole tensor as Float32, row-major with ne0 fastest: the HF layout `[ne1, ne0]` (and
    /// `[ne3, ne2, ne1, ne0]` in general). Throws `GGUFError` for unreadable data and
    /// `GGUFDequantizeError` for a type without a decoder.
    func floats(_ info: GGUFTensorInfo) throws -> [Float] {
        try floats(info, rows: 0..<(info.elementCount / max(info.dims.first ?? 1, 1)))
    }

    /// Rows `rows` of the tensor (a row is ne0 elements) as Float32, row-major.
    func floats(_ info: GGUFTensorInfo, rows: Range<Int>) throws -> [Float] {
        let (ne0, _, _) = try GGUFDequantizer.rowGeometry(info, rows: rows, path: path)
        let count = rows.count * ne0
        guard count > 0 else { return [] }  // see SafetensorsFile.floats: no zero-capacity initializer
        return try [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0, let base = buffer.baseAddress {
                try GGUFDequantizer.dequantizeRows(info, from: self, rows: rows, into: base)
            }
            initialized = count
        }
    }
}
