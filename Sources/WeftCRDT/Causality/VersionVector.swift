/// How two causal histories relate.
public enum CausalOrder: Hashable, Sendable {
    /// Both saw exactly the same events.
    case equal
    /// The left side saw a strict subset of the right side's events.
    case before
    /// The left side saw a strict superset of the right side's events.
    case after
    /// Each saw an event the other did not.
    case concurrent
}

/// A version vector: for each replica, the highest event counter seen.
///
/// Version vectors decide whether two versions of a document conflict at all: if one
/// dominates the other the merge is a fast-forward, and only ``CausalOrder/concurrent``
/// versions go to a conflict policy.
///
/// Replicas absent from the vector count as 0; a zero entry is never stored, so two vectors
/// are `==` exactly when they describe the same history.
public struct VersionVector: Hashable, Sendable {
    /// The non-zero entries.
    public private(set) var counters: [ReplicaID: UInt64]

    /// The empty vector: no events seen.
    public init() { counters = [:] }

    /// Creates a vector from entries; zero entries are dropped.
    public init(_ counters: [ReplicaID: UInt64]) {
        self.counters = counters.filter { $0.value != 0 }
    }

    /// The highest counter seen for `replica`, or 0.
    public subscript(replica: ReplicaID) -> UInt64 {
        get { counters[replica] ?? 0 }
        set { counters[replica] = newValue == 0 ? nil : newValue }
    }

    /// Whether no event has been seen.
    public var isEmpty: Bool { counters.isEmpty }

    /// Records the next event of `replica` and returns its dot.
    ///
    /// - Complexity: O(1).
    @discardableResult
    public mutating func increment(_ replica: ReplicaID) -> Dot {
        let next = self[replica] &+ 1
        counters[replica] = next
        return Dot(replica: replica, counter: next)
    }

    /// Whether the event `dot` is covered by this vector.
    public func contains(_ dot: Dot) -> Bool { dot.counter <= self[dot.replica] }

    /// Joins `other` into this vector: the entry-wise maximum.
    ///
    /// - Complexity: O(*n*) in the entries of `other`.
    public mutating func merge(_ other: VersionVector) {
        for (replica, counter) in other.counters where counter > self[replica] {
            counters[replica] = counter
        }
    }

    /// The entry-wise maximum of two vectors.
    public func merged(with other: VersionVector) -> VersionVector {
        var copy = self
        copy.merge(other)
        return copy
    }

    /// Compares two histories.
    ///
    /// - Complexity: O(*n* + *m*).
    public func compare(to other: VersionVector) -> CausalOrder {
        var someGreater = false
        var someLess = false
        for (replica, counter) in counters {
            let theirs = other[replica]
            if counter > theirs { someGreater = true } else if counter < theirs { someLess = true }
        }
        for (replica, counter) in other.counters where counters[replica] == nil && counter > 0 {
            someLess = true
        }
        switch (someGreater, someLess) {
        case (false, false): return .equal
        case (true, false): return .after
        case (false, true): return .before
        case (true, true): return .concurrent
        }
    }

    /// Whether every event in this vector is also in `other`.
    public func isDominated(by other: VersionVector) -> Bool {
        let order = compare(to: other)
        return order == .before || order == .equal
    }

    /// The entries sorted by replica, the order the codec writes them in.
    public var sortedEntries: [(replica: ReplicaID, counter: UInt64)] {
        counters.sorted { $0.key < $1.key }.map { (replica: $0.key, counter: $0.value) }
    }
}

extension VersionVector: Codable {
    private struct Entry: Codable {
        var replica: ReplicaID
        var counter: UInt64
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let entries = try container.decode([Entry].self)
        var counters = [ReplicaID: UInt64]()
        for entry in entries {
            guard counters.updateValue(entry.counter, forKey: entry.replica) == nil else {
                throw DecodingError.dataCorruptedError(
                    in: container, debugDescription: "Replica \(entry.replica) appears twice in a version vector")
            }
        }
        self.init(counters)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(sortedEntries.map { Entry(replica: $0.replica, counter: $0.counter) })
    }
}
