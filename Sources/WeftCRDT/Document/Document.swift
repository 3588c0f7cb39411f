/// A dynamic JSON-like document: the shape apps store.
///
/// A document is an ``ORMap`` from field names to ``DocumentValue``s: last-writer-wins
/// registers of ``Scalar``s, counters, add-wins sets and nested documents. Each mutator takes
/// the ``HLCTimestamp`` of the edit (the replica that makes the edit is the stamp's replica)
/// and returns a delta; joining the delta into any older copy gives the edited document.
///
/// ```swift
/// var clock = HybridLogicalClock(replica: .random())
/// var doc = Document()
/// doc.set("title", to: "Pump 7", at: clock.now())
/// doc.increment("visits", by: 1, at: clock.now())
/// doc.insert("valve", intoSet: "tags", at: clock.now())
/// ```
///
/// Removing a field while another replica concurrently updates it keeps the field with that
/// update (update wins); see ``ORMap``.
public struct Document: EmptyInitializableCRDT, Hashable {
    /// The fields.
    public internal(set) var fields: ORMap<String, DocumentValue>

    /// The empty document.
    public init() { fields = ORMap() }

    public static func == (lhs: Document, rhs: Document) -> Bool { lhs.fields == rhs.fields }
    /// Hashes the field names only, which is consistent with `==` (equal documents have equal
    /// field sets) even where equal strings differ in their Unicode normalisation.
    public func hash(into hasher: inout Hasher) { hasher.combine(Set(fields.keys)) }

    public mutating func merge(_ other: Document) { fields.merge(other.fields) }

    // MARK: Reading

    /// The field names present.
    public var keys: [String] { fields.keys.sorted() }

    /// The value of field `key`, if present.
    public subscript(key: String) -> DocumentValue? { fields[key] }

    /// The scalar in register `key`, if it is one.
    public func scalar(_ key: String) -> Scalar? {
        if case .register(let register)? = fields[key] { return register.value }
        return nil
    }

    /// The string in register `key`, if it is one.
    public func string(_ key: String) -> String? {
        if case .string(let value)? = scalar(key) { return value }
        return nil
    }

    /// The integer in register `key`, if it is one.
    public func int(_ key: String) -> Int64? {
        if case .int(let value)? = scalar(key) { return value }
        return nil
    }

    /// The double in register `key`, if it is one.
    public func double(_ key: String) -> Double? {
        if case .double(let value)? = scalar(key) { return value }
        return nil
    }

    /// The Boolean in register `key`, if it is one.
    public func bool(_ key: String) -> Bool? {
        if case .bool(let value)? = scalar(key) { return value }
        return nil
    }

    /// The value of counter `key`, if it is one.
    public func counter(_ key: String) -> Int64? {
        if case .counter(let counter)? = fields[key] { return counter.value }
        return nil
    }

    /// The elements of set `key`, if it is one.
    public func set(_ key: String) -> Set<Scalar>? {
        if case .set(let set)? = fields[key] { return set.elements }
        return nil
    }

    /// The nested document `key`, if it is one.
    public func map(_ key: String) -> Document? {
        if case .map(let document)? = fields[key] { return document }
        return nil
    }

    // MARK: Writing

    /// Sets register `key` to `value`. A field of another kind is replaced.
    @discardableResult
    public mutating func set(_ key: String, to value: Scalar, at stamp: HLCTimestamp) -> Document {
        var register = LWWRegister(value, stamp: stamp)
        if case .register(let current)? = fields[key] {
            register = current
            register.set(value, at: stamp)
        }
        return Document(fields: fields.set(key, to: .register(register), by: stamp.replica))
    }

    /// ``set(_:to:at:)`` without building the delta: the same state, for editors that keep the
    /// whole document (the replica's write path).
    @_spi(Editing)
    public mutating func assign(_ key: String, to value: Scalar, at stamp: HLCTimestamp) {
        fields.assign(key, by: stamp.replica) { current in
            guard case .register(var register)? = current else { return .register(LWWRegister(value, stamp: stamp)) }
            register.set(value, at: stamp)
            return .register(register)
        }
    }

    /// ``increment(_:by:at:)`` without building the delta.
    @_spi(Editing)
    public mutating func add(_ amount: Int64, toCounter key: String, at stamp: HLCTimestamp) {
        fields.assign(key, by: stamp.replica) { current in
            var counter = PNCounter()
            if case .counter(let existing)? = current { counter = existing }
            counter.add(amount, replica: stamp.replica)
            return .counter(counter)
        }
    }

    /// Reserves room for `count` fields (a hint for editors building a new document; the state
    /// is unchanged).
    public mutating func reserveCapacity(_ count: Int) { fields.reserveCapacity(count) }

    /// Adds `amount` to counter `key`, creating it at zero if absent.
    @discardableResult
    public mutating func increment(_ key: String, by amount: Int64, at stamp: HLCTimestamp) -> Document {
        var counter = PNCounter()
        if case .counter(let current)? = fields[key] { counter = current }
        counter.increment(by: amount, replica: stamp.replica)
        return Document(fields: fields.set(key, to: .counter(counter), by: stamp.replica))
    }

    /// Adds `element` to set `key`, creating the set if absent.
    @discardableResult
    public mutating func insert(_ element: Scalar, intoSet key: String, at stamp: HLCTimestamp) -> Document {
        var set = ORSet<Scalar>()
        if case .set(let current)? = fields[key] { set = current }
        set.insert(element, by: stamp.replica)
        return Document(fields: fields.set(key, to: .set(set), by: stamp.replica))
    }

    /// Removes `element` from set `key`.
    @discardableResult
    public mutating func remove(_ element: Scalar, fromSet key: String, at stamp: HLCTimestamp) -> Document {
        guard case .set(var set)? = fields[key], set.contains(element) else { return Document() }
        set.remove(element)
        return Document(fields: fields.set(key, to: .set(set), by: stamp.replica))
    }

    /// Edits nested document `key` in place, creating it if absent.
    @discardableResult
    public mutating func updateMap(
        _ key: String, at stamp: HLCTimestamp, _ body: (inout Document) throws -> Void
    ) rethrows -> Document {
        var nested = Document()
        if case .map(let current)? = fields[key] { nested = current }
        try body(&nested)
        return Document(fields: fields.set(key, to: .map(nested), by: stamp.replica))
    }

    /// Removes field `key`.
    @discardableResult
    public mutating func removeField(_ key: String) -> Document {
        Document(fields: fields.removeValue(forKey: key))
    }

    init(fields: ORMap<String, DocumentValue>) { self.fields = fields }

    /// The document with every register stamp above `limit` replaced by `stamp` (nested
    /// documents included); dots, counters and sets are unchanged.
    ///
    /// For repairing writes made by a clock that ran ahead and that no one else has accepted:
    /// the writes keep their identity (their dots) and take a correct time.
    /// - Complexity: O(*n*) in the fields, nested fields included.
    public func restamped(above limit: HLCTimestamp, to stamp: HLCTimestamp) -> Document {
        var copy = self
        for (key, versions) in fields.entries {
            copy.fields.entries[key] = versions.map { version in
                ORMap<String, DocumentValue>.Version(dot: version.dot, value: version.value.restamped(above: limit, to: stamp))
            }
        }
        return copy
    }
}

extension Document: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 10 }

    /// Layout: the fields' ``ORMap`` body; nesting is bounded by ``DecodingLimits/maximumDepth``.
    public func encode(to writer: inout BinaryWriter) { fields.encode(to: &writer) }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        fields = try reader.nested { (inner: inout BinaryReader) throws(CodecError) in
            try ORMap<String, DocumentValue>(from: &inner)
        }
    }
}
