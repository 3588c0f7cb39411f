/// A plain value stored in a ``Document`` register or set.
///
/// Equality is exact, so it agrees with the encoding on every replica: doubles compare by bit
/// pattern (`NaN == NaN` here, `0.0 != -0.0`), and strings by their UTF-8 bytes (two spellings
/// of "é", composed and decomposed, are different scalars, unlike Swift's `String ==`).
public enum Scalar: Sendable, Hashable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case bytes([UInt8])

    public static func == (lhs: Scalar, rhs: Scalar) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.int(let a), .int(let b)): return a == b
        case (.double(let a), .double(let b)): return a.bitPattern == b.bitPattern
        case (.string(let a), .string(let b)): return a.utf8.elementsEqual(b.utf8)
        case (.bytes(let a), .bytes(let b)): return a == b
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(1); hasher.combine(value)
        case .int(let value): hasher.combine(2); hasher.combine(value)
        case .double(let value): hasher.combine(3); hasher.combine(value.bitPattern)
        case .string(let value):
            hasher.combine(4)
            for byte in value.utf8 { hasher.combine(byte) }
        case .bytes(let value): hasher.combine(5); hasher.combine(value)
        }
    }

    public var description: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return String(value)
        case .int(let value): return String(value)
        case .double(let value): return String(value)
        case .string(let value): return "\"\(value)\""
        case .bytes(let value): return "<\(value.count) bytes>"
        }
    }
}

extension Scalar: BinaryCodable {
    /// Layout: a tag byte (0 null, 1 false, 2 true, 3 int, 4 double, 5 string, 6 bytes), then the payload.
    public func encode(to writer: inout BinaryWriter) {
        switch self {
        case .null: writer.writeByte(0)
        case .bool(let value): writer.writeByte(value ? 2 : 1)
        case .int(let value): writer.writeByte(3); writer.writeSignedVarint(value)
        case .double(let value): writer.writeByte(4); writer.writeDouble(value)
        case .string(let value): writer.writeByte(5); writer.writeString(value)
        case .bytes(let value): writer.writeByte(6); writer.writeLengthPrefixed(value)
        }
    }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        let start = reader.offset
        switch try reader.readByte() {
        case 0: self = .null
        case 1: self = .bool(false)
        case 2: self = .bool(true)
        case 3: self = .int(try reader.readSignedVarint())
        case 4: self = .double(try reader.readDouble())
        case 5: self = .string(try reader.readString())
        case 6: self = .bytes(Array(try reader.readLengthPrefixed()))
        case let tag: throw .invalidTag(UInt64(tag), at: start, "Scalar")
        }
    }
}

extension Scalar: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
}
