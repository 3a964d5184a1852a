/// GPT-2's reversible byte ↔ Unicode mapping (spec §5.4): printable bytes map to themselves, the other
/// 68 bytes to U+0100 + n in increasing byte order, so every byte sequence becomes visible text.
public enum ByteLevel {
    /// Scalar for each byte.
    public static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(0x100 + n)!
                n += 1
            }
        }
        return table
    }()

    /// Byte for a scalar of the table, or nil for scalars outside it.
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        if v < 0x100 {
            let b = Int(v)
            if (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b) { return UInt8(b) }
            return nil
        }
        return v < 0x100 + 68 ? inverse[Int(v - 0x100)] : nil
    }

    private static let inverse: [UInt8] = {
        var out = [UInt8](repeating: 0, count: 68)
        for b in 0..<256 {
            let v = byteToScalar[b].value
            if v >= 0x100 { out[Int(v - 0x100)] = UInt8(b) }
        }
        return out
    }()

    /// The byte-level string of `text`'s UTF-8 bytes.
    public static func encode(_ text: Substring) -> String {
        var out = String.UnicodeScalarView()
        for b in text.utf8 { out.append(byteToScalar[Int(b)]) }
        return String(out)
    }

    /// Inverse of `encode`; a scalar outside the table contributes its own UTF-8 bytes.
    public static func decodeBytes(_ text: String, into bytes: inout [UInt8]) {
        for scalar in text.unicodeScalars {
            if let b = byte(for: scalar) { bytes.append(b) } else { bytes.append(contentsOf: Array(String(scalar).utf8)) }
        }
    }
}
