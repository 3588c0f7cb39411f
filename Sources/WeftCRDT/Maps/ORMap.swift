/// An observed-remove map whose values are CRDTs themselves.
///
/// Every update of a key takes a new dot and stores the key's whole new value under it,
/// replacing the versions the updating replica had seen. Concurrent updates of one key
/// therefore leave several versions, which are read (and later collapsed) as their join.
/// Removing a key forgets the versions the remover has seen; the ``CausalContext`` carries
/// that knowledge to other replicas.
///
/// **Removal semantics.** An update concurrent with a removal has a dot the remover never
/// saw, so the key survives with that update's value: *update wins*. The surviving value is
/// the updating replica's whole value for the key, including what it had before the
/// concurrent removal. Updates that the remover had seen are gone.
///
/// Storage is bounded by concurrency, not by history: a key holds one version per
/// concurrent writer, and a replica's next update folds them back into one.
///
/// **Nested dot-based values and re-created keys.** Each value keeps its own causal context. A
/// key removed and written again starts its value afresh, so a nested ``ORSet`` or ``ORMap``
/// issues dots it already used before the removal, and merging with a replica that had seen the
/// old value can drop additions made after the re-creation. ``Document`` does not have this
/// problem (one causal context for all its values); use it for nested collections, or never
/// re-create a removed key whose value is dot-based. `Tests/WeftTestingTests` keeps an OR-map of
/// OR-sets as the example the intent checker must catch.
public struct ORMap<Key: Hashable & BinaryCodable & Sendable, Value: CRDT & BinaryCodable>: EmptyInitializableCRDT {
    /// One version of a key's value: the value stored by the update with this dot.
    public struct Version: Equatable, Sendable {
        /// The update's dot.
        public var dot: Dot
        /// The value as of that update.
        public var value: Value

        @usableFromInline
        init(dot: Dot, value: Value) {
            self.dot = dot
            self.value = value
        }
    }

    /// Live keys with their versions (sorted by dot, never empty).
    public internal(set) var entries: [Key: [Version]]
    /// Every update seen.
    public internal(set) var context: CausalContext

    /// The empty map.
    public init() {
        entries = [:]
        context = CausalContext()
    }

    /// A map of these entries and context (the decoder's, which has checked them).
    @usableFromInline
    init(checkedEntries entries: [Key: [Version]], context: CausalContext) {
        self.entries = entries
        self.context = context
    }

    /// Reserves room for `count` keys (a hint: the state is unchanged).
    public mutating func reserveCapacity(_ count: Int) { entries.reserveCapacity(count) }

    /// The live keys.
    public var keys: Dictionary<Key, [Version]>.Keys { entries.keys }

    /// The number of live keys.
    public var count: Int { entries.count }

    /// The value of `key`: the join of its versions, or `nil` if absent.
    /// - Complexity: O(*v*) joins in the number of concurrent versions, usually one.
    public subscript(key: Key) -> Value? {
        guard let versions = entries[key], var value = versions.first?.value else { return nil }
        for version in versions.dropFirst() { value.merge(version.value) }
        return value
    }

    /// Replaces the value of `key` with `value` as `replica`, returning the delta.
    ///
    /// The versions this replica has seen are superseded; concurrent ones stay until merged.
    @discardableResult
    public mutating func set(_ key: Key, to value: Value, by replica: ReplicaID) -> ORMap {
        let dot = context.nextDot(for: replica)
        var delta = ORMap()
        var seen = CausalContext()
        for version in entries[key] ?? [] { seen.insert(version.dot) }
        seen.insert(dot)
        delta.context = seen
        delta.entries[key] = [Version(dot: dot, value: value)]
        entries[key] = [Version(dot: dot, value: value)]
        return delta
    }

    /// Replaces the value of `key` with `transform` of its current value (`nil` if absent) as
    /// `replica`, without building a delta: ``update(_:by:default:_:)`` for editors that keep
    /// the whole state, with one hash lookup of `key`.
    /// - Complexity: O(*v*) joins in the key's concurrent versions, usually one.
    @_spi(Editing)
    public mutating func assign(_ key: Key, by replica: ReplicaID, _ transform: (Value?) -> Value) {
        let dot = context.nextDot(for: replica)
        Self.replace(&entries[key, default: []], dot: dot, transform)
    }

    private static func replace(_ versions: inout [Version], dot: Dot, _ transform: (Value?) -> Value) {
        var current: Value?
        if var value = versions.first?.value {
            for version in versions.dropFirst() { value.merge(version.value) }
            current = value
        }
        let value = transform(current)
        if versions.count == 1 {
            versions[0] = Version(dot: dot, value: value)
        } else {
            versions = [Version(dot: dot, value: value)]
        }
    }

    /// Updates the value of `key` in place as `replica`, returning the delta.
    ///
    /// `body` receives the current value (the join of all versions), or `makeInitial()` when
    /// the key is absent. The result is stored as the key's single new version.
    @discardableResult
    public mutating func update(
        _ key: Key, by replica: ReplicaID, default makeInitial: @autoclosure () -> Value,
        _ body: (inout Value) throws -> Void
    ) rethrows -> ORMap {
        var value = self[key] ?? makeInitial()
        try body(&value)
        return set(key, to: value, by: replica)
    }

    /// Gives every version of `key` the value `value`, keeping their dots: a conflict
    /// resolution that picks one value among concurrent versions without writing a new one.
    mutating func replaceValues(of key: Key, with value: Value) {
        guard let versions = entries[key] else { return }
        entries[key] = versions.map { Version(dot: $0.dot, value: value) }
    }

    /// Removes `key`, returning the delta (the removed versions' dots, as a context).
    @discardableResult
    public mutating func removeValue(forKey key: Key) -> ORMap {
        var delta = ORMap()
        guard let versions = entries.removeValue(forKey: key) else { return delta }
        delta.context = CausalContext(vector: VersionVector(), cloud: Set(versions.map(\.dot)))
        return delta
    }

    /// The join: a version survives if both sides have it or the side without it has not seen it.
    ///
    /// Works in place: merging a small map (a delta) into a large one allocates nothing for the
    /// keys the delta does not touch.
    /// - Complexity: O(*n* + *m*) in the keys of both sides, plus the joins of shared versions.
    public mutating func merge(_ other: ORMap) {
        // Keys only on this side: drop the versions the other side has seen (it removed them).
        if !other.context.isEmpty && !entries.isEmpty {
            var changed = [(Key, [Version])]()
            for (key, versions) in entries where other.entries[key] == nil {
                if versions.contains(where: { other.context.contains($0.dot) }) {
                    changed.append((key, versions.filter { !other.context.contains($0.dot) }))
                }
            }
            for (key, kept) in changed { entries[key] = kept.isEmpty ? nil : kept }
        }
        for (key, theirs) in other.entries {
            if let mine = entries[key] {
                let joined = Self.join(mine, context, theirs, other.context)
                entries[key] = joined.isEmpty ? nil : joined
            } else {
                let kept = theirs.filter { !context.contains($0.dot) }
                if !kept.isEmpty { entries[key] = kept }
            }
        }
        context.merge(other.context)
    }

    private static func join(
        _ mine: [Version], _ myContext: CausalContext, _ theirs: [Version], _ theirContext: CausalContext
    ) -> [Version] {
        if mine == theirs { return mine }
        var result = [Version]()
        for version in mine {
            if let match = theirs.first(where: { $0.dot == version.dot }) {
                // The same dot always carries the same value; join anyway so a diverged copy still converges.
                result.append(Version(dot: version.dot, value: version.value.merged(with: match.value)))
            } else if !theirContext.contains(version.dot) {
                result.append(version)
            }
        }
        for version in theirs where !mine.contains(where: { $0.dot == version.dot }) && !myContext.contains(version.dot) {
            result.append(version)
        }
        result.sort { $0.dot < $1.dot }
        return result
    }
}

extension ORMap.Version: Hashable where Value: Hashable {}
extension ORMap: Hashable where Value: Hashable {}

extension ORMap: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 9 }

    /// Layout: context; key count; then keys in the order of their first dot, each as
    /// key, version count, and `(dot, value)` pairs in dot order.
    @inlinable
    public func encode(to writer: inout BinaryWriter) {
        context.encode(to: &writer)
        writer.writeVarint(UInt64(entries.count))
        // Keys in the order of their first dot, sorted through a scratch buffer of (dot, index)
        // pairs on the stack rather than a sorted copy of the entries.
        withUnsafeTemporaryAllocation(of: (Dot, Dictionary<Key, [Version]>.Index).self, capacity: entries.count) { order in
            var filled = 0
            for index in entries.indices {
                order.initializeElement(at: filled, to: (entries[index].value[0].dot, index))
                filled += 1
            }
            var slice = UnsafeMutableBufferPointer(rebasing: order[0..<filled])
            slice.sort { $0.0 < $1.0 }
            for (_, index) in slice {
                let (key, versions) = entries[index]
                key.encode(to: &writer)
                writer.writeVarint(UInt64(versions.count))
                for version in versions {
                    writer.writeDot(version.dot)
                    version.value.encode(to: &writer)
                }
            }
            _ = slice.deinitialize()
        }
    }

    @inlinable
    public init(from reader: inout BinaryReader) throws(CodecError) {
        let context = try CausalContext(from: &reader)
        let count = try reader.readCount(minimumElementSize: 3)
        var entries = [Key: [Version]](minimumCapacity: count)
        // Every dot names one version of one key. Keys come in increasing order of their first
        // dot, so with one version per key (the usual case) the dots are distinct already;
        // only extra versions need the duplicate check below.
        let mapStart = reader.offset
        var severalVersions = false
        var previousFirst: Dot?
        for _ in 0..<count {
            let start = reader.offset
            let key = try Key(from: &reader)
            let versionCount = try reader.readCount(minimumElementSize: 3)
            guard versionCount > 0 else { throw .invariantViolation(at: start, "a key without versions") }
            var versions = [Version]()
            versions.reserveCapacity(versionCount)
            for _ in 0..<versionCount {
                let dotStart = reader.offset
                let dot = try reader.readDot()
                if let last = versions.last, !(last.dot < dot) { throw .nonCanonical(at: dotStart, "versions out of order") }
                guard context.contains(dot) else { throw .invariantViolation(at: dotStart, "dot \(dot) missing from the context") }
                // Only recursive types (Document) can nest without bound; they count depth themselves.
                let value = try Value(from: &reader)
                versions.append(Version(dot: dot, value: value))
            }
            if let previousFirst, !(previousFirst < versions[0].dot) { throw .nonCanonical(at: start, "keys out of order") }
            previousFirst = versions[0].dot
            if versionCount > 1 { severalVersions = true }
            guard entries.updateValue(versions, forKey: key) == nil else { throw .invariantViolation(at: start, "key appears twice") }
        }
        if severalVersions {
            let dots = entries.values.flatMap { $0.map(\.dot) }.sorted()
            for index in dots.indices.dropFirst() where dots[index] == dots[index - 1] {
                throw .invariantViolation(at: mapStart, "dot \(dots[index]) on two keys")
            }
        }
        self.init(checkedEntries: entries, context: context)
    }
}
