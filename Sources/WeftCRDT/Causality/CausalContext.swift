/// The set of events a replica has seen: a compact version vector plus a cloud of dots that
/// are not yet contiguous with it.
///
/// Dot-based types (``ORSet``, ``MVRegister``, ``ORMap``) keep one causal context instead
/// of tombstones: an element is removed by forgetting its dots while the context still
/// records that they were seen, so a replica that still has those dots knows to drop them.
///
/// Invariants, kept by every operation and checked when decoding:
/// 1. no cloud dot is covered by the vector;
/// 2. no cloud dot directly follows the vector's entry for its replica (it would be folded in).
///
/// Hence two contexts are `==` exactly when they contain the same dots.
public struct CausalContext: Hashable, Sendable {
    /// The contiguous part: every dot `(r, 1...vector[r])` has been seen.
    public private(set) var vector: VersionVector
    /// Seen dots that are not contiguous with ``vector``.
    public private(set) var cloud: Set<Dot>

    /// The empty context.
    public init() {
        vector = VersionVector()
        cloud = []
    }

    /// Creates a context from a vector and a cloud, normalising it.
    public init(vector: VersionVector, cloud: Set<Dot> = []) {
        self.vector = vector
        self.cloud = []
        for dot in cloud { insert(dot) }
    }

    /// Whether nothing has been seen.
    public var isEmpty: Bool { vector.isEmpty && cloud.isEmpty }

    /// Whether `dot` has been seen.
    ///
    /// - Complexity: O(1).
    @inlinable
    public func contains(_ dot: Dot) -> Bool {
        vector.contains(dot) || (!cloud.isEmpty && cloud.contains(dot))
    }

    /// The next unused dot for `replica`, recorded as seen.
    ///
    /// - Complexity: O(1) when the replica's dots are contiguous, as a replica's own always are.
    public mutating func nextDot(for replica: ReplicaID) -> Dot {
        // The usual case: nothing out of order has been seen, so the next dot extends the vector.
        if cloud.isEmpty { return vector.increment(replica) }
        var counter = vector[replica] &+ 1
        while cloud.contains(Dot(replica: replica, counter: counter)) { counter &+= 1 }
        let dot = Dot(replica: replica, counter: counter)
        insert(dot)
        return dot
    }

    /// Records `dot` as seen.
    public mutating func insert(_ dot: Dot) {
        guard !vector.contains(dot) else { return }
        if dot.counter == vector[dot.replica] &+ 1 {
            vector[dot.replica] = dot.counter
            compact(dot.replica)
        } else {
            cloud.insert(dot)
        }
    }

    /// Joins `other` into this context: the union of the seen dots.
    ///
    /// - Complexity: O(*n* + *c*) in the entries and cloud of `other`, plus the cloud of `self`.
    public mutating func merge(_ other: CausalContext) {
        vector.merge(other.vector)
        if cloud.isEmpty && other.cloud.isEmpty { return }
        let pending = cloud.union(other.cloud)
        cloud = []
        // Insert in counter order so that runs fold into the vector in one pass.
        for dot in pending.sorted() { insert(dot) }
    }

    /// The union of two contexts.
    public func merged(with other: CausalContext) -> CausalContext {
        var copy = self
        copy.merge(other)
        return copy
    }

    private mutating func compact(_ replica: ReplicaID) {
        guard !cloud.isEmpty else { return }
        var next = Dot(replica: replica, counter: vector[replica] &+ 1)
        while cloud.remove(next) != nil {
            vector[replica] = next.counter
            next.counter &+= 1
        }
    }

    /// Every dot in the cloud, sorted.
    public var sortedCloud: [Dot] { cloud.sorted() }

    /// Whether the normalisation invariants hold; the decoder rejects contexts where they don't.
    public var isNormalized: Bool {
        cloud.allSatisfy { !vector.contains($0) && $0.counter != vector[$0.replica] &+ 1 }
    }
}
