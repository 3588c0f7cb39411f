/// The stable 128-bit identity of one replica (one local database).
///
/// A replica identifier is created once, when a replica is first opened, and never changes.
/// Every dot, version-vector entry and HLC stamp names the replica that made it, so two
/// replicas must never share an identifier: create them with ``random(using:)`` or
/// ``random()``.
///
/// The canonical text form is 32 lowercase hexadecimal digits in the 8-4-4-4-12 grouping of a
/// UUID, for example `0f8e2b1c-3a4d-4e5f-8a9b-0c1d2e3f4a5b`. ``init(_:)`` accepts exactly that
/// form (upper-case digits are accepted and normalised); ``description`` produces it.
///
/// Identifiers are totally ordered by their 128-bit value. The order carries no meaning beyond
/// giving ties a deterministic winner.
public struct ReplicaID: Hashable, Comparable, Sendable {
    /// The high 64 bits.
    public let high: UInt64
    /// The low 64 bits.
    public let low: UInt64

    /// Creates an identifier from its two 64-bit halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Creates a random identifier from the given generator.
    public static func random<G: RandomNumberGenerator>(using generator: inout G) -> ReplicaID {
        ReplicaID(high: generator.next(), low: generator.next())
    }

    /// Creates a random identifier from the system's random number generator.
    public static func random() -> ReplicaID {
        var generator = SystemRandomNumberGenerator()
        return random(using: &generator)
    }

    public static func < (lhs: ReplicaID, rhs: ReplicaID) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }

    /// The 16 bytes of the identifier, most significant first.
    public var bytes: [UInt8] {
        var result = [UInt8]()
        result.reserveCapacity(16)
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 56, through: 0, by: -8) { result.append(UInt8(truncatingIfNeeded: low >> UInt64(shift))) }
        return result
    }

    /// Creates an identifier from exactly 16 bytes, most significant first.
    ///
    /// Returns `nil` when `bytes` does not hold exactly 16 bytes.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 16 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            if index < 8 { high = high << 8 | UInt64(byte) } else { low = low << 8 | UInt64(byte) }
        }
        self.init(high: high, low: low)
    }
}

extension ReplicaID: CustomStringConvertible, LosslessStringConvertible {
    /// The canonical text form: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase.
    public var description: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { out.append(UInt8(ascii: "-")) }
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses the canonical text form. Returns `nil` for anything else.
    ///
    /// - Complexity: O(1); the input is rejected as soon as it is longer than 36 characters.
    public init?(_ description: String) {
        let utf8 = Array(description.utf8.prefix(37))
        guard utf8.count == 36 else { return nil }
        var nibbles = [UInt8]()
        nibbles.reserveCapacity(32)
        for (index, character) in utf8.enumerated() {
            if index == 8 || index == 13 || index == 18 || index == 23 {
                guard character == UInt8(ascii: "-") else { return nil }
                continue
            }
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibbles.append(character - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibbles.append(character - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibbles.append(character - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(16)
        for pair in stride(from: 0, to: 32, by: 2) { bytes.append(nibbles[pair] << 4 | nibbles[pair + 1]) }
        self.init(bytes: bytes)
    }
}

extension ReplicaID: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let id = ReplicaID(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "Not a canonical replica identifier: \(text.prefix(40))")
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
