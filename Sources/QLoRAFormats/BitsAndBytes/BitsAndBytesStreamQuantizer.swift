import Foundation
import QLoRACore

/// The quantize-and-stream loop shared by the prepare stage (`ModelPreparer`) and `qlora quantize`: tensors go
/// one at a time from a source to a bitsandbytes-layout safetensors file, each either quantized to 4 bits
/// (`BitsAndBytesFormat.tensors(for:weightName:)`: codes, `.absmax`, `.quant_map`, nested scales, JSON quant
/// state) or kept. The file is laid out before anything is quantized (`plannedTensors`; the JSON quant states,
/// whose length depends on the data, go in a trailing area), so peak memory is about one source tensor in fp32
/// plus its quantized form, whatever the model size; each source tensor's pages are released once written.
public enum BitsAndBytesStreamQuantizer {
    /// What happens to one tensor.
    public enum Action {
        /// Quantized with the writer's `FourBitOptions`; `dtype` is the quant state's `dtype` (the dtype the weight
        /// dequantizes to). `load` gives the values in fp32, row-major.
        case quantize(dtype: FloatStorage, load: () throws -> [Float])
        /// Kept, stored as `dtype` (F32, BF16 or F16); `load` gives fp32 values, converted on write.
        case keepFloats(dtype: SafetensorsDType, load: () throws -> [Float])
        /// Kept byte for byte (`bytes` must hold exactly `dtype` × shape).
        case keepBytes(dtype: SafetensorsDType, bytes: () throws -> UnsafeRawBufferPointer)
    }

    /// One source tensor: its name and shape in the output, what to do with it, and how to release its pages.
    public struct Item {
        public var name: String
        public var shape: [Int]
        public var action: Action
        public var release: () -> Void

        public init(name: String, shape: [Int], action: Action, release: @escaping () -> Void = {}) {
            self.name = name
            self.shape = shape
            self.action = action
            self.release = release
        }

        var isQuantized: Bool { if case .quantize = action { true } else { false } }
    }

    /// What was written for one item.
    public struct Written: Sendable {
        public var name: String
        public var parameters: Int
        /// Bytes in the file (for a 4-bit weight: codes + scales, `FourBitTensor.storageBytes`).
        public var bytes: Int
        /// For a 4-bit weight: its storage bits per parameter (codes + block scales); nil when kept.
        public var bitsPerParameter: Double?
    }

    /// Writes `items` (in this order) to `url` atomically (`SafetensorsStreamWriter`), with header `metadata`.
    /// `progress(done, total, name)` is called before each tensor and once at the end (`done == total`).
    /// Returns one `Written` per item.
    public static func write(_ items: [Item], options: FourBitOptions, to url: URL, metadata: [String: String],
                             progress: (_ done: Int, _ total: Int, _ name: String) -> Void = { _, _, _ in }) throws -> [Written] {
        var fixed: [SafetensorsStreamWriter.Entry] = []
        var trailing: [(name: String, maxBytes: Int)] = []
        for item in items {
            switch item.action {
            case .quantize:
                fixed += BitsAndBytesFormat.plannedTensors(shape: item.shape, options: options, weightName: item.name)
                trailing.append((BitsAndBytesFormat.quantStateName(weightName: item.name, type: options.type),
                                 BitsAndBytesFormat.quantStateMaxBytes))
            case .keepFloats(let dtype, _), .keepBytes(let dtype, _):
                fixed.append((item.name, dtype, item.shape))
            }
        }
        let writer = try SafetensorsStreamWriter(url: url, fixed: fixed, trailing: trailing, metadata: metadata)
        var states: [String: [UInt8]] = [:]
        var out: [Written] = []
        out.reserveCapacity(items.count)
        for (i, item) in items.enumerated() {
            progress(i, items.count, item.name)
            switch item.action {
            case .quantize(let dtype, let load):
                let values = try load()
                item.release()
                let q = FourBitQuantizer.quantize(values, shape: item.shape, dtype: dtype, options: options)
                for entry in BitsAndBytesFormat.tensors(for: q, weightName: item.name) {
                    if BitsAndBytesFormat.isQuantState(entry.name) { states[entry.name] = entry.data } else { try writer.write(entry.name, entry.data) }
                }
                out.append(Written(name: item.name, parameters: q.count, bytes: q.storageBytes, bitsPerParameter: q.bitsPerParameter))
            case .keepFloats(let dtype, let load):
                let values = try load()
                item.release()
                let bytes: Int
                if dtype == .f32 {
                    // fp32 goes out as is (no second copy of a large embedding).
                    try writer.write(item.name, floats: values)
                    bytes = 4 * values.count
                } else {
                    guard let encoded = SafetensorsWriter.encode(values, as: dtype) else {
                        throw SafetensorsError(path: url.path, tensor: item.name, kind: .invalidTensor("cannot store floats as \(dtype.rawValue)"))
                    }
                    try writer.write(item.name, encoded)
                    bytes = encoded.count
                }
                out.append(Written(name: item.name, parameters: values.count, bytes: bytes, bitsPerParameter: nil))
            case .keepBytes(_, let bytes):
                let data = try bytes()
                try writer.write(item.name, data)
                item.release()
                out.append(Written(name: item.name, parameters: item.shape.reduce(1, *), bytes: data.count, bitsPerParameter: nil))
            }
        }
        progress(items.count, items.count, "")
        try writer.finish(trailing: states)
        return out
    }
}
