// The Codable bridge: store a Swift struct in a Document and read it back.
//
// Mapping (documented in the "Modelling data as CRDT documents" article):
//   String, Bool, integers, Float/Double, [UInt8]     -> LWW register of a Scalar
//   a property marked @Counter                        -> PN-counter
//   Set<T> where T is String, an integer type or Bool -> add-wins OR-set
//   a nested struct (keyed container)                 -> nested Document
//   nil / a missing optional                          -> the field is absent
//   arrays and other unkeyed containers               -> DocumentCodingError.unsupportedType

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

    /// A value has no CRDT mapping (an array, say).
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

// MARK: - Encoding into a node tree

indirect enum FieldNode: Equatable {
    case scalar(Scalar)
    case counter(Int64)
    case set(Set<Scalar>)
    case map([String: FieldNode])
}

final class NodeBox {
    var node: FieldNode?
    var children: [String: NodeBox]?
    init() {}

    func resolved() -> FieldNode? {
        if let children {
            var map = [String: FieldNode]()
            for (key, child) in children { if let node = child.resolved() { map[key] = node } }
            return .map(map)
        }
        return node
    }
}

struct NodeEncoder: Encoder {
    let box: NodeBox
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    var pathString: String { codingPath.map(\.stringValue).joined(separator: ".") }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if box.children == nil { box.children = [:] }
        return KeyedEncodingContainer(KeyedNodeContainer<Key>(box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        UnsupportedUnkeyedContainer(codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleNodeContainer(box: box, codingPath: codingPath)
    }

    /// Encodes `value` into `box`, recognising the types with a special CRDT mapping.
    static func encode(_ value: some Encodable, into box: NodeBox, path: [any CodingKey]) throws {
        let pathString = path.map(\.stringValue).joined(separator: ".")
        if let counter = value as? Counter {
            box.node = .counter(counter.wrappedValue)
        } else if let set = value as? any ScalarSetRepresentable {
            box.node = .set(set.scalarElements)
        } else if let bytes = value as? [UInt8] {
            box.node = .scalar(.bytes(bytes))
        } else if let scalar = value as? Scalar {
            box.node = .scalar(scalar)
        } else if value is any Collection, !(value is String) {
            throw DocumentCodingError.unsupportedType(
                path: pathString, "\(type(of: value)) has no CRDT mapping: use a Set, or a nested struct")
        } else {
            try value.encode(to: NodeEncoder(box: box, codingPath: path))
        }
    }
}

struct UnsupportedUnkeyedContainer: UnkeyedEncodingContainer {
    var codingPath: [any CodingKey]
    var count: Int { 0 }
    private func fail() -> DocumentCodingError {
        .unsupportedType(path: codingPath.map(\.stringValue).joined(separator: "."), "arrays have no CRDT mapping")
    }
    mutating func encodeNil() throws { throw fail() }
    mutating func encode<T: Encodable>(_ value: T) throws { throw fail() }
    mutating func nestedContainer<K: CodingKey>(keyedBy keyType: K.Type) -> KeyedEncodingContainer<K> {
        KeyedEncodingContainer(KeyedNodeContainer<K>(box: NodeBox(), codingPath: codingPath, failure: fail()))
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer { self }
    mutating func superEncoder() -> any Encoder { NodeEncoder(box: NodeBox(), codingPath: codingPath) }
}

struct KeyedNodeContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: NodeBox
    var codingPath: [any CodingKey]
    var failure: DocumentCodingError?

    init(box: NodeBox, codingPath: [any CodingKey], failure: DocumentCodingError? = nil) {
        self.box = box
        self.codingPath = codingPath
        self.failure = failure
    }

    private func child(_ key: Key) throws -> NodeBox {
        if let failure { throw failure }
        let child = NodeBox()
        box.children?[key.stringValue] = child
        return child
    }

    mutating func encodeNil(forKey key: Key) throws {
        if let failure { throw failure }
        box.children?[key.stringValue] = nil
    }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try NodeEncoder.encode(value, into: try child(key), path: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type, forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let child = NodeBox()
        child.children = [:]
        box.children?[key.stringValue] = child
        return KeyedEncodingContainer(KeyedNodeContainer<NestedKey>(box: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        UnsupportedUnkeyedContainer(codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { NodeEncoder(box: NodeBox(), codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let child = NodeBox()
        box.children?[key.stringValue] = child
        return NodeEncoder(box: child, codingPath: codingPath + [key])
    }
}

struct SingleNodeContainer: SingleValueEncodingContainer {
    let box: NodeBox
    var codingPath: [any CodingKey]

    private var path: String { codingPath.map(\.stringValue).joined(separator: ".") }

    mutating func encodeNil() throws { box.node = nil }
    mutating func encode(_ value: Bool) throws { box.node = .scalar(.bool(value)) }
    mutating func encode(_ value: String) throws { box.node = .scalar(.string(value)) }
    mutating func encode(_ value: Double) throws { box.node = .scalar(.double(value)) }
    mutating func encode(_ value: Float) throws { box.node = .scalar(.double(Double(value))) }
    mutating func encode(_ value: Int) throws { box.node = .scalar(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { box.node = .scalar(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { box.node = .scalar(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { box.node = .scalar(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { box.node = .scalar(.int(value)) }
    mutating func encode(_ value: UInt) throws { try encodeUnsigned(UInt64(value)) }
    mutating func encode(_ value: UInt8) throws { box.node = .scalar(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { box.node = .scalar(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { box.node = .scalar(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws { try encodeUnsigned(value) }

    private func encodeUnsigned(_ value: UInt64) throws {
        guard let exact = Int64(exactly: value) else {
            throw DocumentCodingError.valueOutOfRange(path: path, "\(value) does not fit Int64")
        }
        box.node = .scalar(.int(exact))
    }

    mutating func encode<T: Encodable>(_ value: T) throws {
        try NodeEncoder.encode(value, into: box, path: codingPath)
    }
}

// MARK: - Applying a node tree to a document

extension Document {
    /// Creates a document holding `value`, a struct with named fields.
    ///
    /// - Throws: ``DocumentCodingError`` when a field has no CRDT mapping.
    public init(encoding value: some Encodable, at stamp: HLCTimestamp) throws {
        self.init()
        try update(from: value, at: stamp)
    }

    /// Makes the document hold `value`, writing only the fields that differ, and returns the delta.
    ///
    /// Unchanged fields keep their stamps, so concurrent edits of other fields on other
    /// replicas are not overwritten. Counters change by the difference, sets by the elements
    /// added and removed, and fields absent from `value` are removed.
    ///
    /// - Throws: ``DocumentCodingError`` when a field has no CRDT mapping; the document is then unchanged.
    @discardableResult
    public mutating func update(from value: some Encodable, at stamp: HLCTimestamp) throws -> Document {
        let box = NodeBox()
        try NodeEncoder.encode(value, into: box, path: [])
        guard case .map(let fieldsNode)? = box.resolved() else { throw DocumentCodingError.notAKeyedValue(path: "") }
        var copy = self
        let delta = try copy.apply(fieldsNode, at: stamp, path: "")
        self = copy
        return delta
    }

    private mutating func apply(_ node: [String: FieldNode], at stamp: HLCTimestamp, path: String) throws -> Document {
        var delta = Document()
        for key in node.keys.sorted() {
            guard let field = node[key] else { continue }
            let fieldPath = path.isEmpty ? key : path + "." + key
            switch field {
            case .scalar(let scalar):
                if self.scalar(key) != scalar || self[key].map({ if case .register = $0 { false } else { true } }) == true {
                    delta.merge(set(key, to: scalar, at: stamp))
                }
            case .counter(let target):
                let current = counter(key)
                if current == nil || current != target {
                    let (difference, overflow) = target.subtractingReportingOverflow(current ?? 0)
                    guard !overflow else {
                        throw DocumentCodingError.valueOutOfRange(path: fieldPath, "counter change overflows Int64")
                    }
                    delta.merge(increment(key, by: difference, at: stamp))
                }
            case .set(let target):
                let current = set(key)
                if current == nil {
                    delta.merge(Document(fields: fields.set(key, to: .set(ORSet()), by: stamp.replica)))
                }
                let existing = current ?? []
                for element in target.subtracting(existing).sorted(by: { $0.description < $1.description }) {
                    delta.merge(insert(element, intoSet: key, at: stamp))
                }
                for element in existing.subtracting(target).sorted(by: { $0.description < $1.description }) {
                    delta.merge(remove(element, fromSet: key, at: stamp))
                }
            case .map(let nestedNode):
                var nested = map(key) ?? Document()
                let nestedDelta = try nested.apply(nestedNode, at: stamp, path: fieldPath)
                if map(key) == nil || nestedDelta != Document() {
                    delta.merge(updateMap(key, at: stamp) { $0 = nested })
                }
            }
        }
        for key in keys where node[key] == nil {
            delta.merge(removeField(key))
        }
        return delta
    }
}

// MARK: - Decoding

extension Document {
    /// Reads the document back as a `T`.
    ///
    /// - Throws: `DecodingError` when a field is missing or of another kind than `T` expects.
    public func decode<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try T(from: DocumentDecoder(value: .map(self), codingPath: []))
    }
}

struct DocumentDecoder: Decoder {
    let value: DocumentValue?
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .map(let document)? = value else {
            throw DecodingError.typeMismatch(
                Document.self, .init(codingPath: codingPath, debugDescription: "expected a nested document"))
        }
        return KeyedDecodingContainer(KeyedDocumentContainer<Key>(document: document, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch(
            [Any].self, .init(codingPath: codingPath, debugDescription: "documents hold no arrays"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleDocumentContainer(value: value, codingPath: codingPath)
    }

    static func decode<T: Decodable>(_ type: T.Type, from value: DocumentValue?, path: [any CodingKey]) throws -> T {
        if T.self == Counter.self {
            guard case .counter(let counter)? = value else { throw mismatch(T.self, path, "a counter") }
            return try cast(Counter(wrappedValue: counter.value), path)
        }
        if let setType = T.self as? any ScalarSetRepresentable.Type {
            guard case .set(let set)? = value else { throw mismatch(T.self, path, "a set") }
            guard let result = setType.init(scalarElements: set.elements) else {
                throw mismatch(T.self, path, "set elements of the declared type")
            }
            return try cast(result, path)
        }
        if T.self == [UInt8].self {
            guard case .register(let register)? = value, case .bytes(let bytes) = register.value else {
                throw mismatch(T.self, path, "bytes")
            }
            return try cast(bytes, path)
        }
        return try T(from: DocumentDecoder(value: value, codingPath: path))
    }

    /// Casts a value built for `T.self`; the cast cannot fail, but a failure would throw, not trap.
    private static func cast<T>(_ value: Any, _ path: [any CodingKey]) throws -> T {
        guard let typed = value as? T else { throw mismatch(T.self, path, "\(T.self)") }
        return typed
    }

    static func mismatch(_ type: Any.Type, _ path: [any CodingKey], _ expected: String) -> DecodingError {
        .typeMismatch(type, .init(codingPath: path, debugDescription: "expected \(expected)"))
    }
}

struct KeyedDocumentContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let document: Document
    var codingPath: [any CodingKey]
    var allKeys: [Key] { document.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { document[key.stringValue] != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let value = document[key.stringValue] else { return true }
        if case .register(let register) = value, register.value == .null { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let value = document[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "field is absent"))
        }
        return try DocumentDecoder.decode(T.self, from: value, path: codingPath + [key])
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        try DocumentDecoder(value: document[key.stringValue], codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try DocumentDecoder(value: nil, codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { DocumentDecoder(value: .map(document), codingPath: codingPath) }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        DocumentDecoder(value: document[key.stringValue], codingPath: codingPath + [key])
    }
}

struct SingleDocumentContainer: SingleValueDecodingContainer {
    let value: DocumentValue?
    var codingPath: [any CodingKey]

    private func scalar<T>(_ type: T.Type) throws -> Scalar {
        guard case .register(let register)? = value else {
            throw DocumentDecoder.mismatch(type, codingPath, "a scalar register")
        }
        return register.value
    }

    private func integer<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        guard case .int(let raw) = try scalar(type) else { throw DocumentDecoder.mismatch(type, codingPath, "an integer") }
        guard let exact = T(exactly: raw) else {
            throw DecodingError.dataCorruptedError(in: self, debugDescription: "\(raw) does not fit \(T.self)")
        }
        return exact
    }

    func decodeNil() -> Bool {
        guard let value else { return true }
        if case .register(let register) = value, register.value == .null { return true }
        return false
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let value) = try scalar(type) else { throw DocumentDecoder.mismatch(type, codingPath, "a Bool") }
        return value
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let value) = try scalar(type) else { throw DocumentDecoder.mismatch(type, codingPath, "a String") }
        return value
    }

    func decode(_ type: Double.Type) throws -> Double {
        switch try scalar(type) {
        case .double(let value): return value
        case .int(let value): return Double(value)
        default: throw DocumentDecoder.mismatch(type, codingPath, "a number")
        }
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }
    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 {
        if case .counter(let counter)? = value { return counter.value }
        return try integer(type)
    }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try DocumentDecoder.decode(T.self, from: value, path: codingPath)
    }
}
