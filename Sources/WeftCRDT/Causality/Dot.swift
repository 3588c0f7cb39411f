/// One event: the `counter`-th event of `replica`.
///
/// Dots identify the additions in observed-remove types. A dot is made once, by
/// ``CausalContext/nextDot(for:)``, and never reused.
public struct Dot: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The replica that made the event.
    public var replica: ReplicaID
    /// The event's position in the replica's sequence, starting at 1.
    public var counter: UInt64

    /// Creates a dot.
    public init(replica: ReplicaID, counter: UInt64) {
        self.replica = replica
        self.counter = counter
    }

    public static func < (lhs: Dot, rhs: Dot) -> Bool {
        lhs.replica != rhs.replica ? lhs.replica < rhs.replica : lhs.counter < rhs.counter
    }

    public var description: String { "(\(replica), \(counter))" }
}

extension Dot: Codable {}
