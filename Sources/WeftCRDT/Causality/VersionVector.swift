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
    /// One non-zero entry.
    @usableFromInline
    struct Entry: Hashable, Sendable {
        @usableFromInline var replica: ReplicaID
        @usableFromInline var counter: UInt64

        @inlinable
        init(replica: ReplicaID, counter: UInt64) {
            self.replica = replica
            self.counter = counter
        }
    }

    /// The non-zero entries, sorted by replica: the representation is canonical, so equal
    /// histories have equal (and equally hashed) vectors. A vector names few replicas (the
    /// devices that wrote one document), so a sorted array beats a hash table: no hashing, one
    /// allocation, and the codec's order for free.
    @usableFromInline
    var entries: [Entry]

    /// The non-zero entries, as a dictionary.
    /// - Complexity: O(*n*).
    public var counters: [ReplicaID: UInt64] {
        Dictionary(uniqueKeysWithValues: entries.lazy.map { ($0.replica, $0.counter) })
    }

    /// The empty vector: no events seen.
    public init() { entries = [] }

    /// Creates a vector from entries; zero entries are dropped.
    public init(_ counters: [ReplicaID: UInt64]) {
        entries = counters.lazy.filter { $0.value != 0 }.map { Entry(replica: $0.key, counter: $0.value) }
            .sorted { $0.replica < $1.replica }
    }

    /// Creates a vector from entries already sorted by replica, without zeros or repeats.
    @inlinable
    init(sortedEntries: [Entry]) { entries = sortedEntries }

    /// Where `replica`'s entry is, or would be inserted.
    /// - Complexity: O(log *n*).
    @inlinable
    func position(of replica: ReplicaID) -> (found: Bool, index: Int) {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].replica < replica { low = middle + 1 } else { high = middle }
        }
        return (low < entries.count && entries[low].replica == replica, low)
    }

    /// The highest counter seen for `replica`, or 0.
    /// - Complexity: O(log *n*) to read, O(*n*) to add or remove an entry.
    public subscript(replica: ReplicaID) -> UInt64 {
        @inlinable
        get {
            let (found, index) = position(of: replica)
            return found ? entries[index].counter : 0
        }
        set {
            let (found, index) = position(of: replica)
            if found {
                if newValue == 0 { entries.remove(at: index) } else { entries[index].counter = newValue }
            } else if newValue != 0 {
                entries.insert(Entry(replica: replica, counter: newValue), at: index)
            }
        }
    }

    /// Whether no event has been seen.
    public var isEmpty: Bool { entries.isEmpty }

    /// Records the next event of `replica` and returns its dot.
    ///
    /// - Complexity: O(log *n*), or O(*n*) for a replica's first event.
    @discardableResult
    public mutating func increment(_ replica: ReplicaID) -> Dot {
        let (found, index) = position(of: replica)
        let next: UInt64
        if found {
            next = entries[index].counter &+ 1
            entries[index].counter = next
        } else {
            next = 1
            entries.insert(Entry(replica: replica, counter: 1), at: index)
        }
        return Dot(replica: replica, counter: next)
    }

    /// Whether the event `dot` is covered by this vector.
    @inlinable
    public func contains(_ dot: Dot) -> Bool { dot.counter <= self[dot.replica] }

    /// Joins `other` into this vector: the entry-wise maximum.
    ///
    /// - Complexity: O(*n* + *m*).
    public mutating func merge(_ other: VersionVector) {
        if other.entries.isEmpty { return }
        if entries.isEmpty {
            entries = other.entries
            return
        }
        if entries.count == other.entries.count
            && zip(entries, other.entries).allSatisfy({ $0.replica == $1.replica })
        {
            for index in entries.indices where other.entries[index].counter > entries[index].counter {
                entries[index].counter = other.entries[index].counter
            }
            return
        }
        var merged = [Entry]()
        merged.reserveCapacity(entries.count + other.entries.count)
        var i = 0
        var j = 0
        while i < entries.count || j < other.entries.count {
            if j == other.entries.count || (i < entries.count && entries[i].replica < other.entries[j].replica) {
                merged.append(entries[i])
                i += 1
            } else if i == entries.count || other.entries[j].replica < entries[i].replica {
                merged.append(other.entries[j])
                j += 1
            } else {
                merged.append(Entry(replica: entries[i].replica, counter: max(entries[i].counter, other.entries[j].counter)))
                i += 1
                j += 1
            }
        }
        entries = merged
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
        var i = 0
        var j = 0
        while i < entries.count || j < other.entries.count {
            if j == other.entries.count || (i < entries.count && entries[i].replica < other.entries[j].replica) {
                someGreater = true
                i += 1
            } else if i == entries.count || other.entries[j].replica < entries[i].replica {
                someLess = true
                j += 1
            } else {
                if entries[i].counter > other.entries[j].counter {
                    someGreater = true
                } else if entries[i].counter < other.entries[j].counter {
                    someLess = true
                }
                i += 1
                j += 1
            }
            if someGreater && someLess { return .concurrent }
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
        entries.map { (replica: $0.replica, counter: $0.counter) }
    }
}

extension VersionVector: Codable {
    private struct CodableEntry: Codable {
        var replica: ReplicaID
        var counter: UInt64
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let entries = try container.decode([CodableEntry].self)
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
        try container.encode(sortedEntries.map { CodableEntry(replica: $0.replica, counter: $0.counter) })
    }
}
