/// A grow-only counter: one non-decreasing tally per replica; the value is their sum.
///
/// The merge takes each replica's maximum, so a counter state delivered twice is counted once.
/// Tallies saturate at `UInt64.max` rather than wrap, which keeps every mutation an inflation.
public struct GCounter: EmptyInitializableCRDT, Hashable {
    /// The tallies, kept like a version vector's entries (sorted, no zeros).
    var storage: VersionVector

    /// Each replica's tally; zero tallies are not stored.
    public var tallies: [ReplicaID: UInt64] { storage.counters }

    /// The zero counter.
    public init() { storage = VersionVector() }

    /// The sum of all tallies, saturating at `UInt64.max`.
    /// - Complexity: O(*n*) in the number of replicas.
    public var value: UInt64 {
        storage.entries.reduce(0) { sum, entry in
            let (result, overflow) = sum.addingReportingOverflow(entry.counter)
            return overflow ? .max : result
        }
    }

    /// Adds `amount` to `replica`'s tally and returns the delta (that tally alone).
    /// - Complexity: O(1).
    @discardableResult
    public mutating func increment(by amount: UInt64 = 1, replica: ReplicaID) -> GCounter {
        let current = storage[replica]
        let (sum, overflow) = current.addingReportingOverflow(amount)
        let next = overflow ? UInt64.max : sum
        if next != 0 { storage[replica] = next }
        var delta = GCounter()
        if next != 0 { delta.storage[replica] = next }
        return delta
    }

    /// ``increment(by:replica:)`` without building the delta: the same state.
    /// - Complexity: O(log *n*), O(*n*) for a replica's first change.
    public mutating func add(_ amount: UInt64, replica: ReplicaID) {
        let (sum, overflow) = storage[replica].addingReportingOverflow(amount)
        storage[replica] = overflow ? UInt64.max : sum
    }

    /// Takes each replica's maximum.
    /// - Complexity: O(*n*) in the replicas of `other`.
    public mutating func merge(_ other: GCounter) {
        storage.merge(other.storage)
    }
}

extension GCounter: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 5 }

    /// Layout: like a ``VersionVector``: count, `(replica, tally)` in replica order.
    public func encode(to writer: inout BinaryWriter) { storage.encode(to: &writer) }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        storage = try VersionVector(from: &reader)
    }
}
