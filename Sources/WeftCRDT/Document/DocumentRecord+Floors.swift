/// Counter floors: what lets a replica forget a record without ever issuing its counters again.
///
/// Dots and version entries count per document, from what the document's record says. A
/// replica that forgets a record (it collected the document's tombstone) and writes the
/// document again would count from 1 once more, and a replica still holding the old record,
/// which counts those numbers as seen, would drop the new writes. So a replica that forgets a
/// record keeps the highest counter it had used in it (``highestCounter(of:)``) as a floor, and
/// raises any record it writes to that floor first (``reserveCounters(of:through:)``): its next
/// dot and version entry then follow every one it issued before.
extension DocumentRecord {
    /// The highest counter `replica` has used in this record: its version entry, or a dot of
    /// the body's causal context (nested values included), whichever is higher.
    /// - Complexity: O(log *n*) in the version vector, plus O(*c*) in the context's cloud.
    public func highestCounter(of replica: ReplicaID) -> UInt64 {
        var highest = max(version[replica], body.context.vector[replica])
        for dot in body.context.cloud where dot.replica == replica && dot.counter > highest {
            highest = dot.counter
        }
        return highest
    }

    /// Raises `replica`'s counters in this record to at least `floor`: the body's context takes
    /// every dot `(replica, 1...floor)` as seen, and the version vector counts `floor` writes of
    /// `replica`. The next dot and version entry `replica` issues here then exceed `floor`.
    ///
    /// Laws: it is the join with a record whose body is empty with context and version
    /// `{replica: floor}`, so it is idempotent, commutes with ``merge(_:)`` and never removes
    /// what a record holds of its own; raising to a floor at or below the record's own counters
    /// changes nothing. Joined into another copy of the document, it removes that copy's entries
    /// with dots of `replica` at or below `floor` that this record does not hold: entries of a
    /// forgotten earlier incarnation of the document, the replica's own being above them.
    /// - Complexity: O(*n*) in the version vector and the context, or O(log *n*) when the
    ///   counters already reach `floor`.
    public mutating func reserveCounters(of replica: ReplicaID, through floor: UInt64) {
        guard floor > 0 else { return }
        if version[replica] < floor { version[replica] = floor }
        body.reserveDots(of: replica, through: floor)
    }
}

extension Document {
    /// Takes every dot `(replica, 1...floor)` as seen (see
    /// ``DocumentRecord/reserveCounters(of:through:)``); the next dot of `replica` exceeds `floor`.
    /// - Complexity: O(*n*) in the context, or O(log *n*) when it already covers `floor`.
    public mutating func reserveDots(of replica: ReplicaID, through floor: UInt64) {
        guard floor > 0, context.vector[replica] < floor else { return }
        context.merge(CausalContext(vector: VersionVector([replica: floor])))
    }
}
