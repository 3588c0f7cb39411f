// The Codable bridge, writing: a value is encoded into a tree of field nodes, which is then
// applied to a document as the fewest edits that make the document show it.

// MARK: - Encoding into a node tree

indirect enum FieldNode: Equatable {
    case scalar(Scalar)
    case counter(Int64)
    case set(Set<Scalar>)
    case map([String: FieldNode])
    /// An array: a nested document whose keys are positions (`Document+CodableLists`).
    case list([FieldNode])
    /// A dictionary keyed by strings: a nested document, one field per key, whose removed keys
    /// are recorded (`Document+CodableLists`).
    case dictionary([String: FieldNode])
}

final class NodeBox {
    var node: FieldNode?
    var children: [String: NodeBox]?
    var elements: [NodeBox]?
    var isDictionary = false
    init() {}

    func resolved() -> FieldNode? {
        if let elements {
            // An element that encoded nothing is refused as it is encoded (ListNodeContainer).
            return .list(elements.compactMap { $0.resolved() })
        }
        if let children {
            var map = [String: FieldNode]()
            for (key, child) in children { if let node = child.resolved() { map[key] = node } }
            return isDictionary ? .dictionary(map) : .map(map)
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
        if box.elements == nil { box.elements = [] }
        return ListNodeContainer(box: box, codingPath: codingPath)
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
        } else if type(of: value) == [UInt8].self, let bytes = value as? [UInt8] {
            // Compared by type: `as? [UInt8]` also succeeds for an empty array of anything.
            box.node = .scalar(.bytes(bytes))
        } else if let scalar = value as? Scalar {
            box.node = .scalar(scalar)
        } else if value is any StringKeyedDictionary {
            // A dictionary keyed by strings is a nested document, one field per key: entries
            // merge key by key (different keys written concurrently both stay).
            box.isDictionary = true
            try value.encode(to: NodeEncoder(box: box, codingPath: path))
        } else if value is any SetAlgebra {
            // A set of elements no scalar holds: as a list its order would change from launch to
            // launch (hash seeds), and every write would move elements.
            throw DocumentCodingError.unsupportedType(
                path: pathString, "\(type(of: value)) has no CRDT mapping: use a Set of String, Int, Int64 or Bool")
        } else if value is any Collection<UInt8> {
            // Bytes other than [UInt8] (Foundation's Data, a slice) would become a list of
            // numbers, one field each.
            throw DocumentCodingError.unsupportedType(path: pathString, "\(type(of: value)) has no CRDT mapping: store bytes as [UInt8]")
        } else if value is any AnyDictionary {
            throw DocumentCodingError.unsupportedType(
                path: pathString, "\(type(of: value)) has no CRDT mapping: key dictionaries by String")
        } else {
            try value.encode(to: NodeEncoder(box: box, codingPath: path))
        }
    }
}

/// A dictionary keyed by strings: the bridge maps it to a nested document.
protocol StringKeyedDictionary {}
extension Dictionary: StringKeyedDictionary where Key == String {}
/// Any dictionary: those not keyed by strings are refused (Codable would make them arrays of
/// keys and values).
protocol AnyDictionary {}
extension Dictionary: AnyDictionary {}

struct UnsupportedUnkeyedContainer: UnkeyedEncodingContainer {
    var codingPath: [any CodingKey]
    var count: Int { 0 }
    private func fail() -> DocumentCodingError {
        .unsupportedType(path: codingPath.map(\.stringValue).joined(separator: "."), "this value has no CRDT mapping")
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
        guard failure == nil else { return UnsupportedUnkeyedContainer(codingPath: codingPath + [key]) }
        let child = NodeBox()
        child.elements = []
        box.children?[key.stringValue] = child
        return ListNodeContainer(box: child, codingPath: codingPath + [key])
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
        for key in node.keys.sorted() {
            guard let field = node[key] else { continue }
            if try applyField(key, field, at: stamp, path: path + [key], removal: removal, view: view) { changed.insert(key) }
        }
        let absent = fields.keys.filter { node[$0] == nil && removal.removes(path + [$0]) }
        for key in absent {
            removeField(key)
            changed.insert(key)
        }
        return changed
    }

    /// Makes field `key` show `field`; returns whether it changed. `fieldPath` is its path from
    /// the top of the value.
    mutating func applyField(
        _ key: String, _ field: FieldNode, at stamp: HLCTimestamp, path fieldPath: [String], removal: FieldRemoval, view: Document? = nil
    ) throws -> Bool {
        switch field {
        case .scalar(let scalar):
            if case .register(let register)? = (view ?? self)[key], register.value == scalar { return false }
            assign(key, to: scalar, at: stamp)
            return true
        case .counter(let target):
            let current = counter(key)
            if current == target { return false }
            let (difference, overflow) = target.subtractingReportingOverflow(current ?? 0)
            guard !overflow else {
                throw DocumentCodingError.valueOutOfRange(path: fieldPath.joined(separator: "."), "counter change overflows Int64")
            }
            add(difference, toCounter: key, at: stamp)
            return true
        case .set(let target):
            return makeSet(key, hold: target, replica: stamp.replica)
        case .map(let nestedNode):
            return try editNested(key, at: stamp) { nested throws in
                _ = try nested.apply(nestedNode, at: stamp, path: fieldPath, removal: removal)
            }
        case .list(let elements):
            return try editNested(key, at: stamp) { nested throws in
                _ = try nested.applyList(elements, at: stamp, path: fieldPath, removal: removal)
            }
        case .dictionary(let entries):
            return try editNested(key, at: stamp) { nested throws in
                _ = try nested.applyDictionary(entries, at: stamp, path: fieldPath, removal: removal)
            }
        }
    }

    /// Edits nested document `key` with `body`; returns whether the field or the context changed.
    private mutating func editNested(_ key: String, at stamp: HLCTimestamp, _ body: (inout Document) throws -> Void) throws -> Bool {
        let before = fields[key]
        let contextBefore = context
        var failure: (any Error)?
        editMap(key, stamp: stamp) { nested in
            do {
                try body(&nested)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        return fields[key] != before || context != contextBefore
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
