/// A hybrid-logical-clock stamp: wall milliseconds, a logical counter and the replica.
///
/// Stamps are totally ordered: by wall time, then counter, then replica. Two stamps made by
/// different replicas are therefore never equal, which gives last-writer-wins a
/// deterministic winner even when two replicas write in the same millisecond.
public struct HLCTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Milliseconds since the Unix epoch, as the issuing clock saw it.
    public var wallMilliseconds: UInt64
    /// The logical counter that orders events within one wall millisecond.
    public var counter: UInt32
    /// The replica whose clock issued the stamp.
    public var replica: ReplicaID

    /// Creates a stamp.
    public init(wallMilliseconds: UInt64, counter: UInt32, replica: ReplicaID) {
        self.wallMilliseconds = wallMilliseconds
        self.counter = counter
        self.replica = replica
    }

    public static func < (lhs: HLCTimestamp, rhs: HLCTimestamp) -> Bool {
        if lhs.wallMilliseconds != rhs.wallMilliseconds { return lhs.wallMilliseconds < rhs.wallMilliseconds }
        if lhs.counter != rhs.counter { return lhs.counter < rhs.counter }
        return lhs.replica < rhs.replica
    }

    public var description: String { "\(wallMilliseconds).\(counter)@\(replica)" }

    /// The smallest stamp of `replica` that orders after every stamp with this wall time and
    /// counter: the next counter, or the next millisecond at counter 0. `nil` at the end of
    /// representable time (`UInt64.max` ms and `UInt32.max`), where no stamp follows: stamp
    /// arithmetic never wraps.
    public func successor(for replica: ReplicaID) -> HLCTimestamp? {
        if counter < UInt32.max { return HLCTimestamp(wallMilliseconds: wallMilliseconds, counter: counter + 1, replica: replica) }
        if wallMilliseconds < UInt64.max { return HLCTimestamp(wallMilliseconds: wallMilliseconds + 1, counter: 0, replica: replica) }
        return nil
    }
}

extension HLCTimestamp: Codable {}
