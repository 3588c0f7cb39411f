/// A dynamic JSON-like document: the shape apps store.
///
/// A document maps field names to values of four kinds: last-writer-wins registers of
/// ``Scalar``s, counters, add-wins sets and nested documents. Each mutator takes the
/// ``HLCTimestamp`` of the edit (the replica that makes the edit is the stamp's replica) and
/// returns a delta; joining the delta into any older copy gives the edited document.
///
/// ```swift
/// var clock = HybridLogicalClock(replica: .random())
/// var doc = Document()
/// doc.set("title", to: "Pump 7", at: clock.now())
/// doc.increment("visits", by: 1, at: clock.now())
/// doc.insert("valve", intoSet: "tags", at: clock.now())
/// ```
///
/// ## One causal context
///
/// Every entry of the document, at any depth (a register write, a replica's part of a counter,
/// a set element's addition, a nested field), carries a ``Dot`` from the document's one
/// ``context``. A dot is issued once and never again: removing a field forgets its entries but
/// keeps their dots in the context, so a field removed and created again starts from dots no
/// one has used, and no edit made after a removal can be mistaken for one made before it.
///
/// ## Merge semantics (observed-remove everywhere)
///
/// The join keeps an entry if both sides hold it, or if the side without it has not seen its
/// dot. So:
/// - **A write replaces what its writer has seen.** Setting a register replaces every write of
///   that field the writer had seen, whatever their stamps; concurrent writes stay side by
///   side and the greatest stamp is read (``scalar(_:)``). Two writes of one field in one edit
///   (one stamp): the later one wins, here and after every merge.
/// - **Removal removes what the remover has seen.** ``removeField(_:)`` and
///   ``remove(_:fromSet:at:)`` drop the entries the replica holds; an addition or update
///   concurrent with the removal survives (add wins, update wins), without resurrecting what
///   the remover had removed.
/// - **Counters are causal.** Each replica's part of a counter is one entry, replaced at each of
///   its changes. Removing the counter forgets the parts the remover had seen; a counter
///   created again counts from zero, and a concurrent change by another replica keeps that
///   replica's part.
/// - **Kinds.** A write of one kind replaces the entries of the other kinds it has seen. If
///   replicas concurrently write different kinds to one field, all are kept and readers see
///   the highest in the order register < counter < set < nested document; the next write of the
///   field, having seen them all, replaces them.
///
/// - Complexity: a join is O(*n* + *m*) in the entries of both sides; a write of one field is
///   O(*k*) in that field's entries (nested fields included for ``updateMap(_:at:_:)``).
public struct Document: EmptyInitializableCRDT, Hashable {
    /// The live fields, none empty.
    var fields: FieldTable
    /// Every dot this document has seen, nested values included.
    public internal(set) var context: CausalContext
    /// Which document value this is, in memory only: copies, edits, merges and nested views
    /// keep it. ``updateMap(_:at:_:)`` draws one (if the document has none yet: 0) and uses it
    /// to tell an edit of the nested document from a document built elsewhere put in its place.
    /// Not part of the state (`==` ignores it).
    var lineage: UInt64

    /// The empty document.
    public init() {
        fields = [:]
        context = CausalContext()
        lineage = 0
    }

    init(fields: FieldTable, context: CausalContext, lineage: UInt64 = 0) {
        self.fields = fields
        self.context = context
        self.lineage = lineage
    }

    public static func == (lhs: Document, rhs: Document) -> Bool { lhs.fields == rhs.fields && lhs.context == rhs.context }
    /// Hashes the field names only, which is consistent with `==` (equal documents have equal
    /// field sets) even where equal strings differ in their Unicode normalisation.
    public func hash(into hasher: inout Hasher) { hasher.combine(Set(fields.keys)) }

    /// The join (see "Merge semantics" above).
    /// - Complexity: O(*n* + *m*) in the entries of both sides; a small `other` (a delta) adds
    ///   one look at each of this document's fields.
    public mutating func merge(_ other: Document) {
        FieldStore.joinFields(into: &fields, context, other.fields, other.context)
        context.merge(other.context)
    }

    // MARK: Reading

    /// The field names present.
    public var keys: [String] { fields.keys.sorted() }

    /// The number of fields present.
    public var count: Int { fields.count }

    /// The value of field `key`, if present: the highest kind it holds.
    public subscript(key: String) -> DocumentValue? {
        guard let store = fields[key] else { return nil }
        return DocumentValue(store, context: context, lineage: lineage)
    }

    /// The scalar in register `key`, if it is one: the write with the greatest stamp.
    public func scalar(_ key: String) -> Scalar? {
        guard let store = fields[key], store.visibleRank == 0 else { return nil }
        return store.winningRegister?.value
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
        guard let store = fields[key], store.visibleRank == 1 else { return nil }
        return store.counterValue
    }

    /// The elements of set `key`, if it is one.
    public func set(_ key: String) -> Set<Scalar>? {
        guard let store = fields[key], store.visibleRank == 2, let set = store.set else { return nil }
        return Set(set.elements.keys)
    }

    /// The nested document `key`, if it is one. It shares this document's context.
    public func map(_ key: String) -> Document? {
        guard let store = fields[key], let map = store.map else { return nil }
        return Document(fields: map.fields, context: context, lineage: lineage)
    }

    /// The values written concurrently to register `key` and not yet replaced, greatest stamp
    /// first: what a resolver or a field rule chooses among.
    public func concurrentWrites(_ key: String) -> [LWWRegister<Scalar>] {
        guard let store = fields[key] else { return [] }
        return store.registers
            .sorted { $0.stamp != $1.stamp ? $0.stamp > $1.stamp : $1.dot < $0.dot }
            .map { LWWRegister($0.value, stamp: $0.stamp) }
    }

    /// The greatest stamp of any register write in the document, nested fields included.
    /// - Complexity: O(*n*) in the entries.
    public var greatestStamp: HLCTimestamp? {
        var best: HLCTimestamp?
        for store in fields.values {
            if let stamp = store.greatestStamp, best.map({ stamp > $0 }) ?? true { best = stamp }
        }
        return best
    }

    // MARK: Writing

    /// Sets register `key` to `value`, replacing every write of the field this document has
    /// seen (of any kind).
    @discardableResult
    public mutating func set(_ key: String, to value: Scalar, at stamp: HLCTimestamp) -> Document {
        let before = fields[key]
        let dot = context.nextDot(for: stamp.replica)
        let store = FieldStore(register: RegisterEntry(dot: dot, stamp: stamp, value: value))
        fields[key] = store
        return Self.delta(key, before: before, after: store, issued: [dot])
    }

    /// ``set(_:to:at:)`` without building the delta: the same state, for editors that keep the
    /// whole document (the replica's write path).
    @_spi(Editing)
    public mutating func assign(_ key: String, to value: Scalar, at stamp: HLCTimestamp) {
        let dot = context.nextDot(for: stamp.replica)
        fields[key] = FieldStore(register: RegisterEntry(dot: dot, stamp: stamp, value: value))
    }

    /// Adds `amount` (which may be negative) to counter `key`, creating it at zero if absent.
    /// A field of another kind is replaced.
    @discardableResult
    public mutating func increment(_ key: String, by amount: Int64, at stamp: HLCTimestamp) -> Document {
        let dot = context.nextDot(for: stamp.replica)
        var store = fields.removeValue(forKey: key) ?? FieldStore()
        var dropped = store.keepOnly(.counter)
        let entry = Self.adding(amount, to: &store, dot: dot, dropped: &dropped)
        fields[key] = store
        // The delta: this replica's new part, and the dots it replaced.
        var part = FieldStore()
        part.counter = [entry]
        return Self.delta(key, part, dots: dropped + [dot])
    }

    /// ``increment(_:by:at:)`` without building the delta.
    @_spi(Editing)
    public mutating func add(_ amount: Int64, toCounter key: String, at stamp: HLCTimestamp) {
        let dot = context.nextDot(for: stamp.replica)
        var store = fields.removeValue(forKey: key) ?? FieldStore()
        var dropped = store.keepOnly(.counter)
        _ = Self.adding(amount, to: &store, dot: dot, dropped: &dropped)
        fields[key] = store
    }

    /// Adds `amount` as `dot.replica` to the counter in `store`: that replica's parts become
    /// one part under `dot` (their dots go to `dropped`); other replicas' parts stay.
    static func adding(_ amount: Int64, to store: inout FieldStore, dot: Dot, dropped: inout [Dot]) -> CounterEntry {
        var up: UInt64 = 0
        var down: UInt64 = 0
        var kept = [CounterEntry]()
        kept.reserveCapacity(store.counter.count + 1)
        for entry in store.counter {
            if entry.dot.replica == dot.replica {
                up = up.addingSaturating(entry.up)
                down = down.addingSaturating(entry.down)
                dropped.append(entry.dot)
            } else {
                kept.append(entry)
            }
        }
        if amount >= 0 { up = up.addingSaturating(UInt64(amount)) } else { down = down.addingSaturating(amount.magnitude) }
        let entry = CounterEntry(dot: dot, up: up, down: down)
        let index = kept.firstIndex { dot < $0.dot } ?? kept.endIndex
        kept.insert(entry, at: index)
        store.counter = kept
        return entry
    }

    /// Adds `element` to set `key`, creating the set if absent. A field of another kind is replaced.
    @discardableResult
    public mutating func insert(_ element: Scalar, intoSet key: String, at stamp: HLCTimestamp) -> Document {
        let (issued, dropped) = insertElement(element, intoSet: key, replica: stamp.replica)
        // The delta: the element's new addition (and a new mark), and the dots they replaced.
        var part = SetStore()
        if issued.count > 1 { part.marks = [issued[0]] }
        part.elements[element] = [issued[issued.count - 1]]
        return Self.delta(key, FieldStore(set: part), dots: dropped + issued)
    }

    /// Inserts without building a delta; returns the dots issued (a new mark, if any, first)
    /// and the dots replaced.
    @discardableResult
    mutating func insertElement(_ element: Scalar, intoSet key: String, replica: ReplicaID) -> (issued: [Dot], dropped: [Dot]) {
        var store = fields.removeValue(forKey: key) ?? FieldStore()
        var dropped = store.keepOnly(.set)
        var set = store.set ?? SetStore()
        store.set = nil
        var issued = [Dot]()
        if set.marks.isEmpty {
            let mark = context.nextDot(for: replica)
            set.marks = [mark]
            issued.append(mark)
        }
        let dot = context.nextDot(for: replica)
        issued.append(dot)
        if let old = set.elements.updateValue([dot], forKey: element) { dropped += old }
        store.set = set
        fields[key] = store
        return (issued, dropped)
    }

    /// Removes `element` from set `key`: the additions of it this document has seen.
    @discardableResult
    public mutating func remove(_ element: Scalar, fromSet key: String, at stamp: HLCTimestamp) -> Document {
        guard let dots = fields[key]?.set?.elements[element] else { return Document() }
        removeElement(element, fromSet: key)
        var delta = Document()
        delta.context = CausalContext(vector: VersionVector(), cloud: Set(dots))
        return delta
    }

    /// Removes without building a delta; returns whether the element was there.
    @discardableResult
    mutating func removeElement(_ element: Scalar, fromSet key: String) -> Bool {
        guard var store = fields.removeValue(forKey: key) else { return false }
        defer { fields[key] = store.isEmpty ? nil : store }
        guard var set = store.set, set.elements[element] != nil else { return false }
        store.set = nil
        set.elements[element] = nil
        store.set = set.isEmpty ? nil : set
        return true
    }

    /// Edits nested document `key` in place, creating it if absent (a field of another kind is
    /// replaced). The nested document `body` receives shares this document's context, so its
    /// edits take dots no one has used. If `body` throws, nothing changes.
    @discardableResult
    public mutating func updateMap(
        _ key: String, at stamp: HLCTimestamp, _ body: (inout Document) throws -> Void
    ) rethrows -> Document {
        let before = fields[key]
        let start = context.vector[stamp.replica]
        try editMap(key, stamp: stamp, body)
        return Self.delta(key, before: before, after: fields[key], issued: context.issued(by: stamp.replica, after: start))
    }

    /// ``updateMap(_:at:_:)`` without building a delta.
    mutating func editMap(_ key: String, stamp: HLCTimestamp, _ body: (inout Document) throws -> Void) rethrows {
        var store = fields[key] ?? FieldStore()
        _ = store.keepOnly(.map)
        var map = store.map ?? MapStore()
        if lineage == 0 { lineage = UInt64.random(in: 1...UInt64.max) }
        var nested = Document(fields: map.fields, context: context, lineage: lineage)
        if map.marks.isEmpty { map.marks = [nested.context.nextDot(for: stamp.replica)] }
        let original = nested
        map.fields = [:]
        try body(&nested)
        if nested.lineage != lineage {
            // The body put a document built elsewhere in place: its dots belong to another
            // history. Write its content as new edits instead.
            var rebuilt = original
            rebuilt.assignContent(of: nested, at: stamp)
            nested = rebuilt
        }
        map.fields = nested.fields
        store.map = map
        fields[key] = store
        context.merge(nested.context)
    }

    /// Removes field `key`: the entries of it this document has seen. Their dots stay in the
    /// context, so they are never issued again.
    @discardableResult
    public mutating func removeField(_ key: String) -> Document {
        guard let before = fields.removeValue(forKey: key) else { return Document() }
        return Self.delta(key, before: before, after: nil, issued: [])
    }

    /// Reserves room for `count` fields (a hint for editors building a new document; the state
    /// is unchanged).
    public mutating func reserveCapacity(_ count: Int) { fields.reserveCapacity(count) }

    /// A delta holding `part` for field `key`, with a context of `dots`.
    static func delta(_ key: String, _ part: FieldStore, dots: [Dot]) -> Document {
        var delta = Document()
        delta.fields[key] = part
        delta.context = CausalContext(vector: VersionVector(), cloud: Set(dots))
        return delta
    }

    /// The delta of an edit of field `key`: the field as it is now, and a context of every dot
    /// the field held before or holds now, and every dot the edit issued.
    static func delta(_ key: String, before: FieldStore?, after: FieldStore?, issued: [Dot]) -> Document {
        var dots = Set(issued)
        before?.forEachDot { dots.insert($0) }
        after?.forEachDot { dots.insert($0) }
        var delta = Document()
        if let after { delta.fields[key] = after }
        delta.context = CausalContext(vector: VersionVector(), cloud: dots)
        return delta
    }

    /// The document with every register stamp above `limit` replaced by `stamp` (nested
    /// documents included); dots, counters and sets are unchanged.
    ///
    /// For repairing writes made by a clock that ran ahead and that no one else has accepted:
    /// the writes keep their identity (their dots) and take a correct time.
    /// - Complexity: O(*n*) in the entries, nested fields included.
    public func restamped(above limit: HLCTimestamp, to stamp: HLCTimestamp) -> Document {
        Document(fields: fields.mapValues { $0.restamped(above: limit, to: stamp) }, context: context, lineage: lineage)
    }
}

extension FieldStore {
    func restamped(above limit: HLCTimestamp, to stamp: HLCTimestamp) -> FieldStore {
        var copy = self
        for index in copy.registers.indices where copy.registers[index].stamp > limit { copy.registers[index].stamp = stamp }
        if var map = copy.map {
            map.fields = map.fields.mapValues { $0.restamped(above: limit, to: stamp) }
            copy.map = map
        }
        return copy
    }
}

extension UInt64 {
    /// `self + other`, or `UInt64.max` if that overflows.
    func addingSaturating(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}

extension CausalContext {
    /// The dots of `replica` above `counter` in the vector: the dots an edit by that replica
    /// issued, if the vector stood at `counter` before it. At most 2²⁰ (an edit that merged a
    /// foreign document with far larger counters is not an edit's own issue).
    func issued(by replica: ReplicaID, after counter: UInt64) -> [Dot] {
        let now = vector[replica]
        guard now > counter, now - counter <= 1 << 20 else { return [] }
        return (counter + 1...now).map { Dot(replica: replica, counter: $0) }
    }
}
