/// A JSON value: what a document's projection is made of (``Document/jsonValue``), and what the
/// server's document API reads and writes.
///
/// Numbers keep their kind: an integer that fits 64 bits is ``int(_:)``, any other number
/// ``double(_:)``.
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The value as JSON text in one canonical form: object members sorted by the UTF-8 bytes of
    /// their names, no insignificant space, `/` not escaped, and only the escapes JSON requires
    /// (`\"`, `\\`, and control characters, `\n`, `\t`… or `\u00XX`). Two equal values give the
    /// same text.
    ///
    /// Two characters are not written as themselves, so that every text is accepted by
    /// PostgreSQL's `jsonb` as well as by SQLite: U+0000, which `jsonb` cannot hold, is written
    /// as U+FFFD (the replacement character), and a non-finite double (which JSON has no
    /// number for) as the string `"inf"`, `"-inf"` or `"nan"`.
    /// - Complexity: O(*n* log *n*) in the members of the largest object, O(*n*) otherwise.
    public var text: String {
        var bytes = [UInt8]()
        write(into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    func write(into bytes: inout [UInt8]) {
        switch self {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let value): bytes.append(contentsOf: (value ? "true" : "false").utf8)
        case .int(let value): bytes.append(contentsOf: String(value).utf8)
        case .double(let value):
            if value.isFinite {
                // Swift's shortest round-trip form is JSON, except that it writes integers in
                // range as `1.0` and large ones as `1e+20`, both of which JSON accepts.
                bytes.append(contentsOf: String(value).utf8)
            } else {
                Self.writeString(value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf"), into: &bytes)
            }
        case .string(let value): Self.writeString(value, into: &bytes)
        case .array(let elements):
            bytes.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                element.write(into: &bytes)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            bytes.append(UInt8(ascii: "{"))
            let names = members.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, name) in names.enumerated() {
                if index > 0 { bytes.append(UInt8(ascii: ",")) }
                Self.writeString(name, into: &bytes)
                bytes.append(UInt8(ascii: ":"))
                members[name]?.write(into: &bytes)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ string: String, into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: #"\""#.utf8)
            case UInt8(ascii: "\\"): bytes.append(contentsOf: #"\\"#.utf8)
            case 0x0A: bytes.append(contentsOf: #"\n"#.utf8)
            case 0x0D: bytes.append(contentsOf: #"\r"#.utf8)
            case 0x09: bytes.append(contentsOf: #"\t"#.utf8)
            case 0x00: bytes.append(contentsOf: [0xEF, 0xBF, 0xBD])
            case 0x01..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: #"\u00"#.utf8)
                bytes.append(hex[Int(byte >> 4)])
                bytes.append(hex[Int(byte & 0x0F)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

extension JSONValue {
    /// A scalar as JSON: bytes as standard base64 text (RFC 4648, with padding).
    public init(_ scalar: Scalar) {
        switch scalar {
        case .null: self = .null
        case .bool(let value): self = .bool(value)
        case .int(let value): self = .int(value)
        case .double(let value): self = .double(value)
        case .string(let value): self = .string(value)
        case .bytes(let value): self = .string(Base64.encode(value))
        }
    }
}

extension JSONValue: Codable {
    /// Decodes any JSON value. A number whose value is an integer that fits 64 bits is
    /// ``int(_:)`` however it is written (`1`, `1.0`, `1e3`), any other ``double(_:)``.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .int(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        case .double(let value): try container.encode(value)
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
