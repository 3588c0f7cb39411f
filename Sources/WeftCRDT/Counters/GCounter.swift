/// A grow-only counter: one non-decreasing tally per replica; the value is their sum.
///
/// The merge takes each replica's maximum, so a counter state delivered twice is counted once.
/// Tallies saturate at `UInt64.max` rather than wrap, which keeps every mutation an inflation.
public struct GCounter: EmptyInitializableCRDT, Hashable {
    /// Each replica's tally; zero tallies are not stored.
    public private(set) var tallies: [ReplicaID: UInt64]

    /// The zero counter.
    public init() { tallies = [:] }

    /// The sum of all tallies, saturating at `UInt64.max`.
    /// - Complexity: O(*n*) in the number of replicas.
    public var value: UInt64 {
        tallies.values.reduce(0) { sum, tally in
            let (result, overflow) = sum.addingReportingOverflow(tally)
            return overflow ? .max : result
        }
    }

    /// Adds `amount` to `replica`'s tally and returns the delta (that tally alone).
    /// - Complexity: O(1).
    @discardableResult
    public mutating func increment(by amount: UInt64 = 1, replica: ReplicaID) -> GCounter {
        let current = tallies[replica] ?? 0
        let (sum, overflow) = current.addingReportingOverflow(amount)
        let next = overflow ? UInt64.max : sum
        if next != 0 { tallies[replica] = next }
        var delta = GCounter()
        if next != 0 { delta.tallies[replica] = next }
        return delta
    }

    /// Takes each replica's maximum.
    /// - Complexity: O(*n*) in the replicas of `other`.
    public mutating func merge(_ other: GCounter) {
        for (replica, tally) in other.tallies where tally > (tallies[replica] ?? 0) {
            tallies[replica] = tally
        }
    }
}

extension GCounter: BinaryCodable {
    public static var binaryTypeTag: UInt8 { 5 }

    /// Layout: like a ``VersionVector``: count, `(replica, tally)` in replica order.
    public func encode(to writer: inout BinaryWriter) { VersionVector(tallies).encode(to: &writer) }

    public init(from reader: inout BinaryReader) throws(CodecError) {
        self.init()
        tallies = try VersionVector(from: &reader).counters
    }
}
