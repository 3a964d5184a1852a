// bitsandbytes 4-bit checkpoint entries (spec nf4-and-double-quant.md §8): the tensors `Linear4bit` saves for
// one weight, the JSON quant state, and transformers' `quantization_config`.

import QLoRACore

/// Reading or writing a 4-bit entry failed; names the file and tensor.
public struct BitsAndBytesError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let tensor: String
    public let reason: String

    public init(path: String, tensor: String, _ reason: String) {
        self.path = path
        self.tensor = tensor
        self.reason = reason
    }

    public var description: String { "\(path): \(tensor): \(reason)" }
}

public enum BitsAndBytesFormat {
    /// Key suffixes `QuantState.from_dict` accepts (the last dotted component of each key).
    static let knownComponents: Set<String> = [
        "absmax", "quant_map", "nested_absmax", "nested_quant_map", "quant_state", "quant_type", "blocksize", "dtype",
        "shape", "nested_blocksize", "nested_dtype", "nested_offset",
    ]

    /// The JSON quant state exactly as bitsandbytes serializes it (`json.dumps` defaults: `", "` and `": "`).
    public static func quantStateJSON(_ t: FourBitTensor) -> String {
        var s = "{\"quant_type\": \"\(t.type.rawValue)\", \"blocksize\": \(t.blocksize), \"dtype\": \"\(t.dtype.rawValue)\", "
        s += "\"shape\": [\(t.shape.map(String.init).joined(separator: ", "))]"
        if case .nested(let n) = t.scales {
            s += ", \"nested_blocksize\": \(n.blocksize), \"nested_dtype\": \"float32\", \"nested_offset\": \(pythonRepr(n.offset))"
        }
        return s + "}"
    }

    /// Python's `repr` of a float32 widened to float64 (the shortest round-trip digits, both languages).
    static func pythonRepr(_ v: Float) -> String {
        let d = Double(v)
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        // Swift's description is also the shortest round-trip form, with Python's spellings ("2.0", "1e-05").
        return "\(d)"
    }

    /// The safetensors entries for the weight called `w` (e.g. `model.layers.0.mlp.up_proj.weight`).
    public static func tensors(for t: FourBitTensor, weightName w: String) -> [SafetensorsWriter.Tensor] {
        var out: [SafetensorsWriter.Tensor] = [
            (name: w, dtype: .u8, shape: [t.packed.count, 1], data: t.packed),
            (name: w + ".quant_map", dtype: .f32, shape: [16], data: floatBytes(t.type.codebook)),
        ]
        switch t.scales {
        case .plain(let absmax):
            out.append((name: w + ".absmax", dtype: .f32, shape: [absmax.count], data: floatBytes(absmax)))
        case .nested(let n):
            out.append((name: w + ".absmax", dtype: .u8, shape: [n.codes.count], data: n.codes))
            out.append((name: w + ".nested_absmax", dtype: .f32, shape: [n.absmax.count], data: floatBytes(n.absmax)))
            out.append((name: w + ".nested_quant_map", dtype: .f32, shape: [n.map.count], data: floatBytes(n.map)))
        }
        let json = Array(quantStateJSON(t).utf8)
        out.append((name: quantStateName(weightName: w, type: t.type), dtype: .u8, shape: [json.count], data: json))
        return out
    }

    /// Names, dtypes and shapes of the entries `tensors(for:weightName:)` will produce for a weight of `shape`,
    /// except the JSON quant state (its length depends on the offset's digits), known before quantizing so a
    /// streaming writer can lay the file out first.
    public static func plannedTensors(shape: [Int], options: FourBitOptions,
                                      weightName w: String) -> [(name: String, dtype: SafetensorsDType, shape: [Int])] {
        let n = shape.reduce(1, *)
        let blocks = (n + options.blocksize - 1) / options.blocksize
        var out: [(name: String, dtype: SafetensorsDType, shape: [Int])] = [
            (w, .u8, [(n + 1) / 2, 1]), (w + ".quant_map", .f32, [16]),
        ]
        if options.doubleQuant {
            out += [(w + ".absmax", .u8, [blocks]), (w + ".nested_absmax", .f32, [(blocks + 255) / 256]),
                    (w + ".nested_quant_map", .f32, [256])]
        } else {
            out.append((w + ".absmax", .f32, [blocks]))
        }
        return out
    }

    /// The key of the JSON quant state of weight `w` (`w.quant_state.bitsandbytes__nf4`).
    public static func quantStateName(weightName w: String, type: FourBitType) -> String {
        w + quantStateInfix + type.rawValue
    }

    /// True when `name` is the JSON quant state entry of a 4-bit weight.
    public static func isQuantState(_ name: String) -> Bool { name.contains(quantStateInfix) }

    /// Room reserved for one JSON quant state in a streamed file's trailing area (they are ~150 bytes).
    public static let quantStateMaxBytes = 512

    static let quantStateInfix = ".quant_state.bitsandbytes__"

    /// True when `name` is one of the auxiliary entries of a 4-bit weight (not a model tensor of its own).
    public static func isAuxiliary(_ name: String) -> Bool {
        guard let dot = name.range(of: ".weight.", options: .backwards) else { return false }
        let rest = name[dot.upperBound...]
        return rest == "absmax" || rest == "quant_map" || rest == "nested_absmax" || rest == "nested_quant_map"
            || rest.hasPrefix("quant_state.bitsandbytes__")
    }

    /// Reads the 4-bit weight stored under `weightName` (e.g. `model.layers.0.mlp.up_proj.weight`), or nil when
    /// that tensor is not 4-bit (no `quant_state.bitsandbytes__*` entry).
    public static func read(_ checkpoint: SafetensorsCheckpoint, weightName w: String) throws -> FourBitTensor? {
        let stateNames = ["nf4", "fp4"].map { "\(w).quant_state.bitsandbytes__\($0)" }.filter { checkpoint.tensor(named: $0) != nil }
        guard let stateName = stateNames.first else { return nil }
        let path = checkpoint.tensor(named: stateName)!.file.path
        func fail(_ why: String) -> BitsAndBytesError { BitsAndBytesError(path: path, tensor: w, why) }
        guard stateNames.count == 1 else { throw fail("has both an nf4 and an fp4 quant state") }
        func raw(_ name: String) -> (info: SafetensorsTensorInfo, bytes: [UInt8])? {
            guard let (file, info) = checkpoint.tensor(named: name) else { return nil }
            return (info, file.bytes(info))
        }
        func floats(_ name: String, count: Int? = nil) throws -> [Float] {
            guard let (file, info) = checkpoint.tensor(named: name) else { throw fail("\(name) is missing") }
            guard info.dtype == .f32 else { throw fail("\(name) is \(info.dtype.rawValue), expected F32") }
            let values = try file.floats(info)
            if let count, values.count != count { throw fail("\(name) has \(values.count) values, expected \(count)") }
            return values
        }

        let json: JSONObject
        do {
            guard let object = try JSONParser.parse(raw(stateName)!.bytes).objectValue else { throw fail("quant state is not a JSON object") }
            json = object
        } catch let e as BitsAndBytesError {
            throw e
        } catch {
            throw fail("quant state JSON: \(error)")
        }
        for key in json.keys where !knownComponents.contains(key) { throw fail("unknown quant state field \"\(key)\"") }
        guard let typeName = json["quant_type"]?.stringValue, let type = FourBitType(rawValue: typeName),
              stateName.hasSuffix("__" + typeName) else {
            throw fail("quant_type \(json["quant_type"].map { "\($0)" } ?? "missing") does not match \(stateName)")
        }
        guard let bsValue = json["blocksize"]?.numberValue, let bs = Int(exactly: bsValue),
              FourBitTensor.allowedBlocksizes.contains(bs) else {
            throw fail("blocksize must be one of \(FourBitTensor.allowedBlocksizes)")
        }
        guard let dtypeName = json["dtype"]?.stringValue, let dtype = FloatStorage(rawValue: dtypeName) else {
            throw fail("dtype must be float32, bfloat16 or float16")
        }
        guard let shapeValues = json["shape"]?.arrayValue,
              let shape = Optional(shapeValues.compactMap { $0.numberValue.flatMap { Int(exactly: $0) } }),
              shape.count == shapeValues.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw fail("shape must be a list of non-negative integers")
        }
        let n = shape.reduce(1, *)
        let blocks = (n + bs - 1) / bs
        guard let packed = raw(w) else { throw fail("the packed weight is missing") }
        guard packed.info.dtype == .u8, packed.bytes.count == (n + 1) / 2 else {
            throw fail("packed weight is \(packed.info.dtype.rawValue) \(packed.info.shape), expected U8 with \((n + 1) / 2) bytes for shape \(shape)")
        }
        if let map = try? floats(w + ".quant_map", count: 16), zip(map, type.codebook).contains(where: { $0 != $1 }) {
            throw fail("quant_map differs from the \(type.rawValue) code book")
        }
        guard let absmax = raw(w + ".absmax") else { throw fail("absmax is missing") }
        let scales: FourBitScales
        if checkpoint.tensor(named: w + ".nested_absmax") != nil {
            guard absmax.info.dtype == .u8, absmax.bytes.count == blocks else {
                throw fail("nested absmax must be U8 with \(blocks) entries, got \(absmax.info.dtype.rawValue) \(absmax.info.shape)")
            }
            let nestedBlocksize = json["nested_blocksize"]?.numberValue.flatMap { Int(exactly: $0) } ?? 256
            guard nestedBlocksize > 0 else { throw fail("nested_blocksize must be positive") }
            guard let offset = json["nested_offset"]?.numberValue else { throw fail("nested_offset is missing") }
            let nested = try floats(w + ".nested_absmax", count: (blocks + nestedBlocksize - 1) / nestedBlocksize)
            let map = try floats(w + ".nested_quant_map", count: 256)
            scales = .nested(NestedScales(codes: absmax.bytes, absmax: nested, offset: Float(offset), map: map,
                                          blocksize: nestedBlocksize))
        } else {
            scales = .plain(try floats(w + ".absmax", count: blocks))
        }
        return FourBitTensor(type: type, shape: shape, blocksize: bs, packed: packed.bytes, scales: scales, dtype: dtype)
    }

    /// transformers' `quantization_config` for a 4-bit checkpoint (`BitsAndBytesConfig.to_dict`, exactly this set),
    /// as JSON text: `llm_int8_threshold` must read back as a Python float (`6.0`), which a generic writer
    /// printing integral numbers as integers would break.
    public static func quantizationConfigJSON(type: FourBitType, doubleQuant: Bool, computeDType: String) -> String {
        """
        {"_load_in_4bit": true, "_load_in_8bit": false, "bnb_4bit_compute_dtype": "\(computeDType)", \
        "bnb_4bit_quant_storage": "uint8", "bnb_4bit_quant_type": "\(type.rawValue)", \
        "bnb_4bit_use_double_quant": \(doubleQuant), "llm_int8_enable_fp32_cpu_offload": false, \
        "llm_int8_has_fp16_weight": false, "llm_int8_skip_modules": null, "llm_int8_threshold": 6.0, \
        "load_in_4bit": true, "load_in_8bit": false, "quant_method": "bitsandbytes"}
        """
    }

    /// `config` (a JSON object's bytes, without `quantization_config`) with `quantization_config` appended.
    public static func addingQuantizationConfig(to config: [UInt8], type: FourBitType, doubleQuant: Bool,
                                                computeDType: String) -> [UInt8] {
        var bytes = config
        while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: " ") { bytes.removeLast() }
        guard bytes.last == UInt8(ascii: "}") else { return config }
        bytes.removeLast()
        let empty = bytes.drop { $0 == UInt8(ascii: "{") || $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") }.isEmpty
        bytes += Array(((empty ? "" : ",") + "\"quantization_config\":"
            + quantizationConfigJSON(type: type, doubleQuant: doubleQuant, computeDType: computeDType) + "}\n").utf8)
        return bytes
    }

    static func floatBytes(_ values: [Float]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: values.count * 4)
        for (i, v) in values.enumerated() {
            let b = v.bitPattern.littleEndian
            out[4 * i] = UInt8(truncatingIfNeeded: b)
            out[4 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
            out[4 * i + 2] = UInt8(truncatingIfNeeded: b >> 16)
            out[4 * i + 3] = UInt8(truncatingIfNeeded: b >> 24)
        }
        return out
    }
}
