import WeftCRDT

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A value as queries compare and sort it: the storage classes of SQLite, so that a query
/// answered by an index and one answered by reading every document agree exactly.
///
/// A `Scalar` (WeftCRDT) maps to it as follows: `null` to ``null``; a Boolean to the integer 0 or 1;
/// an integer to ``integer(_:)``; a double to ``real(_:)`` (NaN to ``null``); a string to
/// ``text(_:)``; bytes to ``blob(_:)``.
///
/// **Order.** null < numbers < text < blobs. Numbers compare by value, integers and reals
/// alike (`1 == 1.0`); text compares by its UTF-8 bytes; blobs by their bytes. This is
/// SQLite's order for values without a declared type, which the indexes hold.
public enum QueryValue: Sendable, CustomStringConvertible {
    /// No value: an absent field, an explicit null, a set or a nested document.
    case null
    /// An integer (or a Boolean, as 0 or 1).
    case integer(Int64)
    /// A double other than NaN.
    case real(Double)
    /// Text, compared by its UTF-8 bytes.
    case text(String)
    /// Bytes, compared as they are.
    case blob([UInt8])

    /// The value a scalar compares as.
    public init(_ scalar: Scalar) {
        switch scalar {
        case .null: self = .null
        case .bool(let value): self = .integer(value ? 1 : 0)
        case .int(let value): self = .integer(value)
        case .double(let value): self = value.isNaN ? .null : .real(value)
        case .string(let value): self = .text(value)
        case .bytes(let value): self = .blob(value)
        }
    }

    /// The value as a scalar (an integer stays an integer: a Boolean is not told apart).
    public var scalar: Scalar {
        switch self {
        case .null: return .null
        case .integer(let value): return .int(value)
        case .real(let value): return .double(value)
        case .text(let value): return .string(value)
        case .blob(let value): return .bytes(value)
        }
    }

    public var description: String { scalar.description }

    var storageClass: Int {
        switch self {
        case .null: return 0
        case .integer, .real: return 1
        case .text: return 2
        case .blob: return 3
        }
    }

    /// The order described on the type: negative, zero or positive as `self` is below, equal
    /// to or above `other`.
    public func compare(_ other: QueryValue) -> Int {
        let (a, b) = (storageClass, other.storageClass)
        guard a == b else { return a < b ? -1 : 1 }
        switch (self, other) {
        case (.integer(let x), .integer(let y)): return x == y ? 0 : (x < y ? -1 : 1)
        case (.real(let x), .real(let y)): return x == y ? 0 : (x < y ? -1 : 1)
        case (.integer(let x), .real(let y)): return Self.compare(x, y)
        case (.real(let x), .integer(let y)): return -Self.compare(y, x)
        case (.text(let x), .text(let y)): return Self.compareBytes(Array(x.utf8), Array(y.utf8))
        case (.blob(let x), .blob(let y)): return Self.compareBytes(x, y)
        default: return 0  // both null
        }
    }

    /// An integer against a double, exactly (a double is not always an integer, nor an
    /// integer a double).
    static func compare(_ integer: Int64, _ real: Double) -> Int {
        if real < -9_223_372_036_854_775_808.0 { return 1 }
        if real >= 9_223_372_036_854_775_808.0 { return -1 }
        let whole = real.rounded(.down)
        let truncated = Int64(whole)
        if integer != truncated { return integer < truncated ? -1 : 1 }
        return real > whole ? -1 : 0
    }

    static func compareBytes(_ x: [UInt8], _ y: [UInt8]) -> Int {
        let common = min(x.count, y.count)
        if common > 0 {
            let order = x.withUnsafeBufferPointer { a in
                y.withUnsafeBufferPointer { b in
                    guard let p = a.baseAddress, let q = b.baseAddress else { return Int32(0) }
                    return memcmp(p, q, common)
                }
            }
            if order != 0 { return order < 0 ? -1 : 1 }
        }
        return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
    }

    /// Equal in the order (so `integer(1) == real(1.0)`).
    public static func == (lhs: QueryValue, rhs: QueryValue) -> Bool { lhs.compare(rhs) == 0 }
}

extension QueryValue: Equatable {}
