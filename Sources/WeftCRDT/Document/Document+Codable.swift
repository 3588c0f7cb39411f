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

/// What a typed write does with the fields of the document that the value does not encode.
public enum UnknownFieldPolicy: Sendable, Hashable {
    /// Keep them, unless the value's type knows them (a `nil` optional it skipped): an older
    /// app version, or a struct that shows part of a document, never deletes fields it does not
    /// know. The default.
    case keep
    /// Remove them: the document becomes exactly the value.
    case remove
}

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
    /// added and removed, nested structs field by field.
    ///
    /// Fields the value does not encode: with ``UnknownFieldPolicy/keep`` (the default) a field
    /// is removed only if the value's type knows it, that is if decoding the document (or, if
    /// the document does not decode as the type, a probe of the type) asks for it: an optional
    /// set to `nil` is removed, a field the type has never heard of is kept. With
    /// ``UnknownFieldPolicy/remove`` every such field is removed.
    ///
    /// - Throws: ``DocumentCodingError`` when a field has no CRDT mapping; the document is then unchanged.
    @discardableResult
    public mutating func update<T: Encodable>(
        from value: T, at stamp: HLCTimestamp, unknownFields: UnknownFieldPolicy = .keep
    ) throws -> Document {
        try update(from: value, at: stamp, unknownFields: unknownFields, comparingWith: nil)
    }

    /// ``update(from:at:unknownFields:)``, deciding which top-level registers differ by their
    /// value in `view` (a presentation of this document, such as field rules give) instead of
    /// their winning write.
    @_spi(Editing)
    @discardableResult
    public mutating func update<T: Encodable>(
        from value: T, at stamp: HLCTimestamp, unknownFields: UnknownFieldPolicy, comparingWith view: Document?
    ) throws -> Document {
        let box = NodeBox()
        try NodeEncoder.encode(value, into: box, path: [])
        guard case .map(let fieldsNode)? = box.resolved() else { throw DocumentCodingError.notAKeyedValue(path: "") }
        let removal: FieldRemoval = unknownFields == .remove ? .all : .known(Self.knownFields(of: T.self, in: self))
        var copy = self
        let changed = try copy.apply(fieldsNode, at: stamp, path: [], removal: removal, view: view)
        let delta = Self.delta(of: changed, before: self, after: copy, replica: stamp.replica)
        self = copy
        return delta
    }

    /// The delta of edits of fields `keys`: those fields as they are now, and a context of every
    /// dot they held before or hold now, and every dot `replica` issued.
    static func delta(of keys: Set<String>, before: Document, after: Document, replica: ReplicaID) -> Document {
        guard !keys.isEmpty else { return Document() }
        var dots = Set(after.context.issued(by: replica, after: before.context.vector[replica]))
        var delta = Document()
        for key in keys {
            before.fields[key]?.forEachDot { dots.insert($0) }
            if let store = after.fields[key] {
                store.forEachDot { dots.insert($0) }
                delta.fields[key] = store
            }
        }
        delta.context = CausalContext(vector: VersionVector(), cloud: dots)
        return delta
    }

    /// Which absent fields a typed write removes.
    enum FieldRemoval {
        case all
        /// The dotted paths of the fields the type knows.
        case known(Set<[String]>)

        func removes(_ path: [String]) -> Bool {
            switch self {
            case .all: return true
            case .known(let paths): return paths.contains(path)
            }
        }
    }

    /// The fields type `T` reads: recorded while decoding `document` as a `T`, or, if that
    /// fails, while probing `T` with a decoder that answers every question. Empty for a type
    /// that is not `Decodable`.
    static func knownFields<T>(of type: T.Type, in document: Document) -> Set<[String]> {
        guard let decodable = T.self as? any Decodable.Type else { return [] }
        let recorder = KeyRecorder()
        if (try? decodable.init(from: DocumentDecoder(value: .map(document), codingPath: [], recorder: recorder))) != nil {
            return recorder.paths
        }
        _ = try? decodable.init(from: KeyProbeDecoder(codingPath: [], recorder: recorder))
        return recorder.paths
    }

    /// Applies `node` to the fields at `path`; returns the top-level keys it changed.
    private mutating func apply(
        _ node: [String: FieldNode], at stamp: HLCTimestamp, path: [String], removal: FieldRemoval, view: Document? = nil
    ) throws -> Set<String> {
        var changed = Set<String>()
        let replica = stamp.replica
        for key in node.keys.sorted() {
            guard let field = node[key] else { continue }
            let fieldPath = path + [key]
            switch field {
            case .scalar(let scalar):
                if case .register(let register)? = (view ?? self)[key], register.value == scalar { continue }
                assign(key, to: scalar, at: stamp)
                changed.insert(key)
            case .counter(let target):
                let current = counter(key)
                if current == target { continue }
                let (difference, overflow) = target.subtractingReportingOverflow(current ?? 0)
                guard !overflow else {
                    throw DocumentCodingError.valueOutOfRange(path: fieldPath.joined(separator: "."), "counter change overflows Int64")
                }
                add(difference, toCounter: key, at: stamp)
                changed.insert(key)
            case .set(let target):
                if makeSet(key, hold: target, replica: replica) { changed.insert(key) }
            case .map(let nestedNode):
                let before = fields[key]
                let contextBefore = context
                var failure: (any Error)?
                editMap(key, stamp: stamp) { nested in
                    do {
                        _ = try nested.apply(nestedNode, at: stamp, path: fieldPath, removal: removal)
                    } catch {
                        failure = error
                    }
                }
                if let failure { throw failure }
                if fields[key] != before || context != contextBefore { changed.insert(key) }
            }
        }
        let absent = fields.keys.filter { node[$0] == nil && removal.removes(path + [$0]) }
        for key in absent {
            removeField(key)
            changed.insert(key)
        }
        return changed
    }

    /// Makes field `key` a set (empty if it was not one), with a mark so it stays present.
    mutating func ensureSet(_ key: String, replica: ReplicaID) {
        var store = fields.removeValue(forKey: key) ?? FieldStore()
        _ = store.keepOnly(.set)
        var set = store.set ?? SetStore()
        if set.marks.isEmpty { set.marks = [context.nextDot(for: replica)] }
        store.set = set
        fields[key] = store
    }
}

extension Scalar {
    /// A fixed order of scalars (by their encodings), for doing things in the same order everywhere.
    static func canonicalOrder(_ a: Scalar, _ b: Scalar) -> Bool {
        a.binaryBytes.lexicographicallyPrecedes(b.binaryBytes)
    }
}

/// The dotted paths a decoder was asked about.
final class KeyRecorder: @unchecked Sendable {
    private(set) var paths = Set<[String]>()
    func record(_ path: [any CodingKey]) { paths.insert(path.map(\.stringValue)) }
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
    var recorder: KeyRecorder?
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(value: DocumentValue?, codingPath: [any CodingKey], recorder: KeyRecorder? = nil) {
        self.value = value
        self.codingPath = codingPath
        self.recorder = recorder
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .map(let document)? = value else {
            throw DecodingError.typeMismatch(
                Document.self, .init(codingPath: codingPath, debugDescription: "expected a nested document"))
        }
        return KeyedDecodingContainer(KeyedDocumentContainer<Key>(document: document, codingPath: codingPath, recorder: recorder))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        throw DecodingError.typeMismatch(
            [Any].self, .init(codingPath: codingPath, debugDescription: "documents hold no arrays"))
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleDocumentContainer(value: value, codingPath: codingPath, recorder: recorder)
    }

    static func decode<T: Decodable>(_ type: T.Type, from value: DocumentValue?, path: [any CodingKey], recorder: KeyRecorder?) throws -> T {
        if T.self == Counter.self {
            guard case .counter(let counter)? = value else { throw mismatch(T.self, path, "a counter") }
            return try cast(Counter(wrappedValue: counter), path)
        }
        if let setType = T.self as? any ScalarSetRepresentable.Type {
            guard case .set(let set)? = value else { throw mismatch(T.self, path, "a set") }
            guard let result = setType.init(scalarElements: set) else {
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
        return try T(from: DocumentDecoder(value: value, codingPath: path, recorder: recorder))
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
    var recorder: KeyRecorder?
    var allKeys: [Key] { document.keys.compactMap { Key(stringValue: $0) } }

    private func note(_ key: Key) { recorder?.record(codingPath + [key]) }

    func contains(_ key: Key) -> Bool {
        note(key)
        return document[key.stringValue] != nil
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        note(key)
        guard let value = document[key.stringValue] else { return true }
        if case .register(let register) = value, register.value == .null { return true }
        return false
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        note(key)
        guard let value = document[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "field is absent"))
        }
        return try DocumentDecoder.decode(T.self, from: value, path: codingPath + [key], recorder: recorder)
    }

    func nestedContainer<NestedKey: CodingKey>(
        keyedBy type: NestedKey.Type, forKey key: Key
    ) throws -> KeyedDecodingContainer<NestedKey> {
        note(key)
        return try DocumentDecoder(value: document[key.stringValue], codingPath: codingPath + [key], recorder: recorder)
            .container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        note(key)
        return try DocumentDecoder(value: nil, codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { DocumentDecoder(value: .map(document), codingPath: codingPath, recorder: recorder) }
    func superDecoder(forKey key: Key) throws -> any Decoder {
        note(key)
        return DocumentDecoder(value: document[key.stringValue], codingPath: codingPath + [key], recorder: recorder)
    }
}

struct SingleDocumentContainer: SingleValueDecodingContainer {
    let value: DocumentValue?
    var codingPath: [any CodingKey]
    var recorder: KeyRecorder?

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
        if case .counter(let counter)? = value { return counter }
        return try integer(type)
    }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try DocumentDecoder.decode(T.self, from: value, path: codingPath, recorder: recorder)
    }
}

// MARK: - Probing a type for its fields

/// A decoder that answers every question with a default and records the keys it is asked
/// for: the fields a `Decodable` type knows, found without a document that decodes as it.
/// A type whose `init(from:)` rejects the defaults stops the probe early; the keys asked for
/// until then are recorded.
struct KeyProbeDecoder: Decoder {
    var codingPath: [any CodingKey]
    let recorder: KeyRecorder
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    /// Recursive types would be probed for ever: stop at this depth.
    static let maximumDepth = 16

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard codingPath.count < Self.maximumDepth else {
            throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription: "probe depth"))
        }
        return KeyedDecodingContainer(Keyed<Key>(codingPath: codingPath, recorder: recorder))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(codingPath: codingPath) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(codingPath: codingPath, recorder: recorder) }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        var codingPath: [any CodingKey]
        let recorder: KeyRecorder
        var allKeys: [Key] { [] }
        private func note(_ key: Key) -> [any CodingKey] {
            recorder.record(codingPath + [key])
            return codingPath + [key]
        }
        func contains(_ key: Key) -> Bool {
            _ = note(key)
            return true
        }
        func decodeNil(forKey key: Key) throws -> Bool {
            _ = note(key)
            return false
        }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            try T(from: KeyProbeDecoder(codingPath: note(key), recorder: recorder))
        }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
            -> KeyedDecodingContainer<NestedKey>
        {
            try KeyProbeDecoder(codingPath: note(key), recorder: recorder).container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { Unkeyed(codingPath: note(key)) }
        func superDecoder() throws -> any Decoder { KeyProbeDecoder(codingPath: codingPath, recorder: recorder) }
        func superDecoder(forKey key: Key) throws -> any Decoder { KeyProbeDecoder(codingPath: note(key), recorder: recorder) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        var codingPath: [any CodingKey]
        var count: Int? { 0 }
        var isAtEnd: Bool { true }
        var currentIndex: Int { 0 }
        private func end() -> DecodingError { .valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "probe")) }
        mutating func decodeNil() throws -> Bool { throw end() }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { throw end() }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            throw end()
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { throw end() }
        mutating func superDecoder() throws -> any Decoder { throw end() }
    }

    struct Single: SingleValueDecodingContainer {
        var codingPath: [any CodingKey]
        let recorder: KeyRecorder
        func decodeNil() -> Bool { false }
        func decode(_ type: Bool.Type) throws -> Bool { false }
        func decode(_ type: String.Type) throws -> String { "" }
        func decode(_ type: Double.Type) throws -> Double { 0 }
        func decode(_ type: Float.Type) throws -> Float { 0 }
        func decode(_ type: Int.Type) throws -> Int { 0 }
        func decode(_ type: Int8.Type) throws -> Int8 { 0 }
        func decode(_ type: Int16.Type) throws -> Int16 { 0 }
        func decode(_ type: Int32.Type) throws -> Int32 { 0 }
        func decode(_ type: Int64.Type) throws -> Int64 { 0 }
        func decode(_ type: UInt.Type) throws -> UInt { 0 }
        func decode(_ type: UInt8.Type) throws -> UInt8 { 0 }
        func decode(_ type: UInt16.Type) throws -> UInt16 { 0 }
        func decode(_ type: UInt32.Type) throws -> UInt32 { 0 }
        func decode(_ type: UInt64.Type) throws -> UInt64 { 0 }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: KeyProbeDecoder(codingPath: codingPath, recorder: recorder)) }
    }
}
