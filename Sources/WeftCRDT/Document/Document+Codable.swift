// The Codable bridge: store a Swift struct in a Document and read it back.
//
// Mapping (documented in the "Modelling data as CRDT documents" article):
//   String, Bool, integers, Float/Double, [UInt8]     -> LWW register of a Scalar
//   a property marked @Counter                        -> PN-counter
//   Set<T> where T is String, an integer type or Bool -> add-wins OR-set
//   a nested struct (keyed container)                 -> nested Document
//   nil / a missing optional                          -> the field is absent
//   [String: V]                                       -> nested Document, one field per key
//   arrays and other unkeyed containers               -> nested Document keyed by positions
//                                                        (Document+CodableLists)
//   dictionaries keyed by anything but String         -> DocumentCodingError.unsupportedType

/// Marks an `Int64` property of a `Codable` struct as a counter: stored as a ``PNCounter``, so
/// concurrent increments on different replicas add up instead of overwriting each other.
@propertyWrapper
public struct Counter: Codable, Hashable, Sendable, ExpressibleByIntegerLiteral {
    /// The counter's value.
    public var wrappedValue: Int64

    /// Creates a counter field.
    public init(wrappedValue: Int64) { self.wrappedValue = wrappedValue }
    public init(integerLiteral value: Int64) { self.wrappedValue = value }

    public init(from decoder: any Decoder) throws {
        wrappedValue = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

/// A `Set` whose elements map to ``Scalar``s, stored as an add-wins ``ORSet``.
public protocol ScalarSetRepresentable {
    /// The elements as scalars.
    var scalarElements: Set<Scalar> { get }
    /// Rebuilds the set from scalars, or returns `nil` if one does not fit the element type.
    init?(scalarElements: Set<Scalar>)
}

/// A type stored as one ``Scalar``.
public protocol ScalarConvertible: Hashable {
    /// The value as a scalar.
    var scalar: Scalar { get }
    /// The value from a scalar, or `nil` if the scalar is of another kind or out of range.
    init?(scalar: Scalar)
}

extension String: ScalarConvertible {
    public var scalar: Scalar { .string(self) }
    public init?(scalar: Scalar) {
        guard case .string(let value) = scalar else { return nil }
        self = value
    }
}

extension Bool: ScalarConvertible {
    public var scalar: Scalar { .bool(self) }
    public init?(scalar: Scalar) {
        guard case .bool(let value) = scalar else { return nil }
        self = value
    }
}

extension Int: ScalarConvertible {
    public var scalar: Scalar { .int(Int64(self)) }
    public init?(scalar: Scalar) {
        guard case .int(let value) = scalar, let exact = Int(exactly: value) else { return nil }
        self = exact
    }
}

extension Int64: ScalarConvertible {
    public var scalar: Scalar { .int(self) }
    public init?(scalar: Scalar) {
        guard case .int(let value) = scalar else { return nil }
        self = value
    }
}

extension Set: ScalarSetRepresentable where Element: ScalarConvertible {
    public var scalarElements: Set<Scalar> { Set<Scalar>(map(\.scalar)) }
    public init?(scalarElements: Set<Scalar>) {
        var result = Set<Element>()
        for scalar in scalarElements {
            guard let element = Element(scalar: scalar) else { return nil }
            result.insert(element)
        }
        self = result
    }
}

/// An error from the Codable bridge of ``Document``.
public struct DocumentCodingError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable { case unsupportedType, notAKeyedValue, valueOutOfRange }
    private let code: Code
    /// The dotted path of the field that failed.
    public let path: String
    /// What went wrong.
    public let detail: String

    /// A value has no CRDT mapping (a dictionary keyed by integers, say).
    public static func unsupportedType(path: String, _ detail: String) -> DocumentCodingError {
        DocumentCodingError(code: .unsupportedType, path: path, detail: detail)
    }
    /// The top-level value did not encode as a keyed container (a struct or dictionary).
    public static func notAKeyedValue(path: String) -> DocumentCodingError {
        DocumentCodingError(code: .notAKeyedValue, path: path, detail: "a document must be a struct with named fields")
    }
    /// A number does not fit a 64-bit signed integer.
    public static func valueOutOfRange(path: String, _ detail: String) -> DocumentCodingError {
        DocumentCodingError(code: .valueOutOfRange, path: path, detail: detail)
    }

    /// Whether the error is ``unsupportedType(path:_:)``.
    public var isUnsupportedType: Bool { code == .unsupportedType }

    public var description: String { "field '\(path)': \(detail)" }
}
