import WeftCRDT

// The three comparison workloads, shared by the ordo-one/benchmark suites (Benchmarks/<Name>/)
// and by weft-bench-json, so both measure exactly the same thing. They mirror
// Benchmarks/peers/peers.py: keep the two in step.
//
// Each workload is split into an untimed `prepare` step and a timed step; a `verify` step
// checks the timed step's result, so a broken merge can never produce a flattering figure.

/// Full-size counts, as in peers.py. `--quick` divides them by 10.
public enum WorkloadCounts {
    public static let b3Replicas = 1_540
    public static let mapKeys = 100_000
    public static let orsetElements = 100_000
}

/// A workload's result did not match what the workload must produce.
public struct WorkloadCheckFailed: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `count` distinct random replica identifiers.
public func distinctReplicas(_ count: Int, seed: UInt64) -> [ReplicaID] {
    var generator = SplitMix64(seed: seed)
    var seen = Set<ReplicaID>()
    var result = [ReplicaID]()
    result.reserveCapacity(count)
    while result.count < count {
        let id = ReplicaID.random(using: &generator)
        if seen.insert(id).inserted { result.append(id) }
    }
    return result
}

// MARK: - B3: many replicas write one key concurrently

/// N replicas (distinct random IDs, each with its own hybrid logical clock) each set key "k"
/// of an `LWWMap<String, Int64>` to their index, concurrently, and encode the delta. One
/// receiving replica then decodes and merges all N updates (the timed part).
public enum B3Workload {
    public typealias Map = LWWMap<String, Int64>

    public struct Prepared: Sendable {
        /// One encoded delta per writer, in writer order.
        public let updates: [[UInt8]]
        public var totalBytes: Int { updates.reduce(0) { $0 + $1.count } }
        public var meanBytesPerUpdate: Double { Double(totalBytes) / Double(updates.count) }
    }

    /// Untimed: creates the writers and their encoded deltas.
    public static func prepare(replicas: Int, seed: UInt64 = 0xB3) -> Prepared {
        let ids = distinctReplicas(replicas, seed: seed)
        var updates = [[UInt8]]()
        updates.reserveCapacity(replicas)
        for (index, id) in ids.enumerated() {
            var clock = HybridLogicalClock(replica: id)
            var map = Map()
            let delta = map.set("k", to: Int64(index), at: clock.now())
            updates.append(delta.encoded())
        }
        return Prepared(updates: updates)
    }

    /// Timed: one receiver decodes and merges every update, in the given order.
    @inline(never)
    public static func decodeAndMergeAll(_ updates: [[UInt8]]) throws -> Map {
        var receiver = Map()
        for bytes in updates {
            try receiver.merge(encoded: bytes)
        }
        return receiver
    }

    /// Checks that the receiver holds exactly key "k" with a writer's index, and returns it.
    public static func verify(_ merged: Map, replicas: Int) throws -> Int64 {
        guard merged.entries.count == 1, let value = merged["k"] else {
            throw WorkloadCheckFailed("b3: receiver has \(merged.entries.count) keys, expected exactly [\"k\"]")
        }
        guard (0..<Int64(replicas)).contains(value) else {
            throw WorkloadCheckFailed("b3: unexpected value \(value) for k")
        }
        return value
    }
}

// MARK: - MapMerge100k: two concurrent 100,000-key maps

/// Replica A sets "k0"..."k{K-1}" = i; replica B concurrently sets the same keys = i + 1.
/// Timed separately: A encoding its full state, and B decoding A's bytes and merging them.
public enum MapWorkload {
    public typealias Map = LWWMap<String, Int64>

    public struct Prepared: Sendable {
        public let keys: Int
        /// Replica A's map.
        public let a: Map
        /// A's full-state encoding (what B receives).
        public let aBytes: [UInt8]
        /// B's full-state encoding, decoded (untimed) to give every timed merge its own
        /// uniquely referenced copy of B, so no copy-on-write copy lands in the timed region.
        public let bBytes: [UInt8]
    }

    /// Builds one replica's map with `keys` keys, value `i + offset`.
    public static func build(replica: ReplicaID, keys: Int, offset: Int64) -> Map {
        var clock = HybridLogicalClock(replica: replica)
        var map = Map(minimumCapacity: keys)
        for index in 0..<keys {
            map.set("k\(index)", to: Int64(index) + offset, at: clock.now())
        }
        return map
    }

    /// Untimed: builds both replicas and A's encoding.
    public static func prepare(keys: Int, seed: UInt64 = 0x3A9) -> Prepared {
        let ids = distinctReplicas(2, seed: seed)
        let a = build(replica: ids[0], keys: keys, offset: 0)
        let b = build(replica: ids[1], keys: keys, offset: 1)
        return Prepared(keys: keys, a: a, aBytes: a.encoded(), bBytes: b.encoded())
    }

    /// Untimed: a fresh, uniquely referenced copy of replica B.
    public static func freshB(_ prepared: Prepared) throws -> Map {
        try Map(encoded: prepared.bBytes)
    }

    /// Timed: A encodes its full state.
    @inline(never)
    public static func encode(_ map: Map) -> [UInt8] { map.encoded() }

    /// Timed: B decodes A's bytes and merges them.
    @inline(never)
    public static func decodeAndMerge(_ bytes: [UInt8], into b: inout Map) throws {
        try b.merge(encoded: bytes)
    }

    /// Checks the merged map: every key present, each value one of the two written.
    public static func verify(_ merged: Map, keys: Int) throws {
        guard merged.entries.count == keys else {
            throw WorkloadCheckFailed("map: B has \(merged.entries.count) keys after merge, expected \(keys)")
        }
        for probe in [0, keys / 2, keys - 1] {
            let value = merged["k\(probe)"]
            guard value == Int64(probe) || value == Int64(probe) + 1 else {
                throw WorkloadCheckFailed("map: k\(probe) = \(String(describing: value))")
            }
        }
    }
}

// MARK: - ORSetMerge100k: two replicas remove different random halves

/// One replica builds a 100,000-element `ORSet<Int64>`; a second replica starts from a copy.
/// Each removes a different random half (seeded). Timed: merging the second into the first.
public enum ORSetWorkload {
    public typealias IntSet = ORSet<Int64>

    public struct Prepared: Sendable {
        public let elements: Int
        public let left: IntSet
        public let right: IntSet
        /// The number of elements that must survive the merge: removed by neither side.
        public let expectedSurvivors: Int
    }

    /// Untimed: builds the set on one replica, copies it, and removes a random half on each side.
    public static func prepare(elements: Int, seed: UInt64 = 0x0A5E7) -> Prepared {
        let ids = distinctReplicas(2, seed: seed)
        var generator = SplitMix64(seed: seed ^ 0xFFFF)
        var left = IntSet()
        for element in 0..<Int64(elements) { left.insert(element, by: ids[0]) }
        var right = left  // the second replica receives the first's state
        let leftRemoved = Array((0..<Int64(elements)).shuffled(using: &generator).prefix(elements / 2))
        let rightRemoved = Array((0..<Int64(elements)).shuffled(using: &generator).prefix(elements / 2))
        for element in leftRemoved { left.remove(element) }
        for element in rightRemoved { right.remove(element) }
        let removed = Set(leftRemoved).union(rightRemoved)
        return Prepared(
            elements: elements, left: left, right: right, expectedSurvivors: elements - removed.count)
    }

    /// Timed: the left replica merges the right one's state.
    @inline(never)
    public static func merge(_ right: IntSet, into left: inout IntSet) {
        left.merge(right)
    }

    /// Checks that exactly the elements removed by neither side survive.
    public static func verify(_ merged: IntSet, _ prepared: Prepared) throws {
        guard merged.count == prepared.expectedSurvivors else {
            throw WorkloadCheckFailed(
                "orset: \(merged.count) elements after merge, expected \(prepared.expectedSurvivors)")
        }
        for element in merged.entries.keys {
            guard prepared.left.contains(element), prepared.right.contains(element) else {
                throw WorkloadCheckFailed("orset: removed element \(element) survived the merge")
            }
        }
    }
}

// MARK: - The same map as a Document: the path sync really uses

/// The 100,000-key map of ``MapWorkload`` as a ``Document`` (a register field per key), the
/// type every record a replica stores, pushes and pulls holds.
public enum DocumentMapWorkload {
    public struct Prepared: Sendable {
        public let keys: Int
        public let a: Document
        public let aBytes: [UInt8]
        public let bBytes: [UInt8]
    }

    /// Builds one replica's document with `keys` fields, value `i + offset`.
    public static func build(replica: ReplicaID, keys: Int, offset: Int64) -> Document {
        var clock = HybridLogicalClock(replica: replica)
        var document = Document()
        document.reserveCapacity(keys)
        for index in 0..<keys {
            document.set("k\(index)", to: .int(Int64(index) + offset), at: clock.now())
        }
        return document
    }

    /// Untimed: builds both replicas (random ids, as real clients have) and A's encoding.
    public static func prepare(keys: Int, seed: UInt64 = 0x3A9) -> Prepared {
        let ids = distinctReplicas(2, seed: seed)
        let a = build(replica: ids[0], keys: keys, offset: 0)
        let b = build(replica: ids[1], keys: keys, offset: 1)
        return Prepared(keys: keys, a: a, aBytes: a.encoded(), bBytes: b.encoded())
    }

    /// Untimed: a fresh, uniquely referenced copy of replica B.
    public static func freshB(_ prepared: Prepared) throws -> Document { try Document(encoded: prepared.bBytes) }

    /// Timed: A encodes its full state.
    @inline(never)
    public static func encode(_ document: Document) -> [UInt8] { document.encoded() }

    /// Timed: B decodes A's bytes and joins them.
    @inline(never)
    public static func decodeAndMerge(_ bytes: [UInt8], into b: inout Document) throws {
        b.merge(try Document(encoded: bytes))
    }

    /// Checks the merged document: every key present, each value one of the two written.
    public static func verify(_ merged: Document, keys: Int) throws {
        guard merged.keys.count == keys else {
            throw WorkloadCheckFailed("document map: B has \(merged.keys.count) keys after merge, expected \(keys)")
        }
        for probe in [0, keys / 2, keys - 1] {
            let value = merged.scalar("k\(probe)")
            guard value == .int(Int64(probe)) || value == .int(Int64(probe) + 1) else {
                throw WorkloadCheckFailed("document map: k\(probe) = \(String(describing: value))")
            }
        }
    }
}
