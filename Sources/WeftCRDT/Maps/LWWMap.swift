/// A map whose keys are last-writer-wins registers; removals are stamped tombstones.
///
/// Each key holds the write with the greatest ``HLCTimestamp``; a removal is a write of
/// "absent". Tombstones are kept so that an old write arriving late cannot resurrect a key.
/// Use ``ORMap`` when values are CRDTs themselves and concurrent updates must be merged.
public struct LWWMap<Key: Hashable & BinaryCodable & Sendable, Value: BinaryCodable & Equatable & Sendable>:
    EmptyInitializableCRDT
{
    /// One key's winning write: a value, or `nil` for a removal.
    public struct Entry: Equatable, Sendable {
        /// The stamp of the write.
        public var stamp: HLCTimestamp
        /// The value written, or `nil` when the write was a removal.
        public var value: Value?

        /// Creates an entry.
        @inlinable
        public init(stamp: HLCTimestamp, value: Value?) {
            self.stamp = stamp
            self.value = value
        }

        /// Whether `other` wins against `self`: a greater stamp, or for identical stamps
        /// the greater encoding (a deterministic tie-break that only misuse can reach).
        @inlinable
        public func isBeaten(by other: Entry) -> Bool {
            if other.stamp != stamp { return stamp < other.stamp }
            // Compare encodings, not `==`: values that are equal but encode differently (0.0 and
            // -0.0, say) must still pick one winner on every replica.
            return value.binaryBytes.lexicographicallyPrecedes(other.value.binaryBytes)
        }
    }

    /// Every key ever written, with its winning write (including tombstones).
    ///
    /// Any dictionary of entries is a valid state, so the setter is public.
    public var entries: [Key: Entry]

    /// The empty map.
    @inlinable
    public init() { entries = [:] }

    /// Creates a map with room for `capacity` keys.
    @inlinable
    public init(minimumCapacity capacity: Int) { entries = Dictionary(minimumCapacity: capacity) }

    /// The value for `key`, or `nil` if it is absent or removed.
    /// - Complexity: O(1).
    public subscript(key: Key) -> Value? { entries[key]?.value ?? nil }

    /// The live keys and values.
    @inlinable
    public var values: [Key: Value] { entries.compactMapValues(\.value) }

    /// The number of live keys.
    /// - Complexity: O(*n*), counting past tombstones.
    @inlinable
    public var count: Int { entries.values.lazy.filter { $0.value != nil }.count }

    /// Writes `value` for `key` at `stamp`, returning the delta (a one-key map).
    /// - Complexity: O(1).
    @discardableResult
    @inlinable
    public mutating func set(_ key: Key, to value: Value, at stamp: HLCTimestamp) -> LWWMap {
        write(key, Entry(stamp: stamp, value: value))
    }

    /// Removes `key` at `stamp`, returning the delta (a one-key tombstone).
    /// - Complexity: O(1).
    @discardableResult
    @inlinable
    public mutating func removeValue(forKey key: Key, at stamp: HLCTimestamp) -> LWWMap {
        write(key, Entry(stamp: stamp, value: nil))
    }

    @inlinable
    mutating func write(_ key: Key, _ entry: Entry) -> LWWMap {
        if let current = entries[key] {
            if current.isBeaten(by: entry) { entries[key] = entry }
        } else {
            entries[key] = entry
        }
        var delta = LWWMap()
        delta.entries[key] = entry
        return delta
    }

    /// Keeps the winning write for every key.
    /// - Complexity: O(*m*) in the keys of `other`.
    @inlinable
    public mutating func merge(_ other: LWWMap) {
        if entries.isEmpty {
            entries = other.entries
            return
        }
        for (key, theirs) in other.entries {
            if let index = entries.index(forKey: key) {
                if entries.values[index].isBeaten(by: theirs) { entries.values[index] = theirs }
            } else {
                entries[key] = theirs
            }
        }
    }
}

extension LWWMap.Entry: Hashable where Value: Hashable {}
extension LWWMap: Hashable where Value: Hashable {}
