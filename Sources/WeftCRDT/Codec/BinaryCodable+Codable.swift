// Codable conformances for the CRDTs.
//
// A CRDT's Codable form is its canonical binary encoding (with the envelope) as one base64
// string. Decoding therefore runs the same validating decoder as the wire and the database:
// a JSON or property-list copy can never smuggle in a state that breaks an invariant, and it
// round-trips bit for bit.

enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index + 3 <= bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int(n >> UInt32(shift) & 63)]) }
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            var n = UInt32(bytes[index]) << 16
            if rest == 2 { n |= UInt32(bytes[index + 1]) << 8 }
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(rest == 2 ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes canonical padded base64; returns `nil` for anything else.
    static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 4 * 3)
        func value(_ c: UInt8) -> UInt32? {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): return UInt32(c - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): return UInt32(c - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(c - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): return 62
            case UInt8(ascii: "/"): return 63
            default: return nil
            }
        }
        var index = 0
        while index < chars.count {
            let isLast = index + 4 == chars.count
            let padding = isLast ? chars[index..<index + 4].reversed().prefix { $0 == UInt8(ascii: "=") }.count : 0
            guard padding <= 2 else { return nil }
            var n: UInt32 = 0
            for offset in 0..<4 {
                if offset >= 4 - padding {
                    n <<= 6
                } else {
                    guard let v = value(chars[index + offset]) else { return nil }
                    n = n << 6 | v
                }
            }
            out.append(UInt8(n >> 16 & 0xff))
            if padding < 2 { out.append(UInt8(n >> 8 & 0xff)) }
            if padding < 1 { out.append(UInt8(n & 0xff)) }
            // Canonical form: the bits dropped by padding must be zero.
            if padding == 1 && n & 0xff != 0 { return nil }
            if padding == 2 && n & 0xffff != 0 { return nil }
            index += 4
        }
        return out
    }
}

extension BinaryCodable {
    /// Decodes the Codable form: the envelope encoding as one base64 string.
    public static func decodeBase64Envelope(from decoder: any Decoder) throws -> Self {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let bytes = Base64.decode(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not canonical base64")
        }
        do {
            return try BinaryFormat.decode(Self.self, from: bytes)
        } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "invalid \(Self.self): \(error)")
        }
    }

    /// Encodes the Codable form: the envelope encoding as one base64 string.
    public func encodeBase64Envelope(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(Base64.encode(BinaryFormat.encode(self)))
    }
}

/// A ``BinaryCodable`` type whose `Codable` form is its envelope encoding as one base64 string.
///
/// Conforming is all it takes: the `Codable` requirements come from this protocol's extension,
/// and decoding runs the same validating decoder as the wire and the database.
public protocol BinaryEnvelopeCodable: BinaryCodable, Codable {}

extension BinaryEnvelopeCodable {
    public init(from decoder: any Decoder) throws { self = try Self.decodeBase64Envelope(from: decoder) }
    public func encode(to encoder: any Encoder) throws { try encodeBase64Envelope(to: encoder) }
}

extension CausalContext: BinaryEnvelopeCodable {}
extension LWWRegister: BinaryEnvelopeCodable {}
extension MVRegister: BinaryEnvelopeCodable {}
extension GCounter: BinaryEnvelopeCodable {}
extension PNCounter: BinaryEnvelopeCodable {}
extension ORSet: BinaryEnvelopeCodable {}
extension LWWMap: BinaryEnvelopeCodable {}
extension ORMap: BinaryEnvelopeCodable {}
extension Document: BinaryEnvelopeCodable {}
