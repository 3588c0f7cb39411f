/// A state-based conflict-free replicated data type: a value with a join.
///
/// Every Weft CRDT, built in or written by you, conforms to this one protocol. Replicas
/// change their states independently and exchange them (or deltas of them); merging is a
/// join in a semilattice, so all replicas that have received the same changes have equal
/// states, whatever the order and however often the changes arrived.
///
/// ## Implementation requirements
///
/// For all reachable states `a`, `b`, `c` of a conforming type:
///
/// 1. **Commutative:** `a.merged(with: b) == b.merged(with: a)`.
/// 2. **Associative:** `a.merged(with: b).merged(with: c) == a.merged(with: b.merged(with: c))`.
/// 3. **Idempotent:** `a.merged(with: a) == a`, so a state delivered twice changes nothing.
/// 4. **Inflationary mutations:** every mutator moves the state up the lattice: if `a` becomes
///    `a'`, then `a.merged(with: a') == a'`.
/// 5. **Deltas:** a mutator returns a delta `d` such that the old state joined with `d` equals
///    the new state. Sync ships `d`, not the whole state.
/// 6. **Semantic equality:** `==` holds exactly when two states mean the same thing; keep a
///    canonical representation so that converged replicas compare equal.
///
/// Requirements 1–3 make delivery order and duplicates irrelevant; 4 and 5 make deltas
/// safe to send at least once. `WeftTesting.CRDTLawChecker` checks all of them, plus
/// convergence and the codec round trip; run it on your own types.
///
/// Only ``merge(_:)`` is required. ``merged(with:)`` comes from an extension.
public protocol CRDT: Sendable, Equatable {
    /// Joins `other` into `self`: the least upper bound of the two states.
    mutating func merge(_ other: Self)
}

extension CRDT {
    /// The join of `self` and `other`.
    @inlinable
    public func merged(with other: Self) -> Self {
        var copy = self
        copy.merge(other)
        return copy
    }

    /// Whether `self` is at or below `other` in the lattice: `self ⊔ other == other`.
    public func isCovered(by other: Self) -> Bool { merged(with: other) == other }
}

/// A CRDT with a least element, the state of a replica that has seen nothing.
///
/// ## Implementation requirements
/// `Self()` joined with any state `a` equals `a`.
public protocol EmptyInitializableCRDT: CRDT {
    /// The least state.
    init()
}
