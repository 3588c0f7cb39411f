import WeftCRDT

/// Forgetting old tombstones, and the counter floors that make it safe.
///
/// A deleted document keeps its record (a tombstone) so the deletion syncs like any change.
/// Once the deletion is old (older than `tombstone_retention`) and nothing of it waits to be
/// pushed, the replica may forget it: the server holds the deletion (it acknowledged the push
/// that carried it, or sent it in a pull), and every record the server sends later descends from
/// it, or is the document created anew once the server forgot it too. What the replica must not forget is how far it had counted in that document: see
/// `DocumentRecord`'s `reserveCounters(of:through:)` in WeftCRDT. So collecting a tombstone raises
/// the collection's *counter floor* to the replica's highest counter in it, and every write the
/// replica makes in that collection first raises the record it writes to the floor.
///
/// ## Contract (``ReplicaStorage`` point 9)
///
/// 1. ``collectTombstones(deletedBefore:countingFor:after:limit:)`` looks at the stored records
///    in key order after `after` (all, if `nil`), at most `limit` of them, and removes each
///    that is deleted, holds no field (an edit concurrent with the deletion that lost to it on
///    the flag stays in the body, hidden; forgetting it would let this replica's next write of
///    the document bring it back instead of replacing it), whose
///    `lastStamp` is before `cutoff` (wall milliseconds), and that has
///    no queue entry (none waiting, none in flight), with its server base. In the same atomic step it raises the floor of each such record's collection to at
///    least the record's `highestCounter(of:)` for `replica`. It
///    answers the keys removed and the last key looked at (`nil` when none remained: the pass is
///    over). While a resync is under way (``ReplicaMetadata/resyncPending``) it removes nothing
///    and answers `nil`: a resync pushes back what the server lacks, tombstones included.
/// 2. ``counterFloors()`` answers every collection's floor (collections without one are
///    absent). Floors never decrease, and survive a restart like the records.
/// 3. ``forgetDocuments(_:deadLetterReason:countingFor:)`` removes each given document (its
///    record and server base), moves its queue entries (waiting or in flight) to the dead
///    letters with `reason`, and raises floors as point 1 does, in one atomic step. A resync
///    that finds the server forgot deletions uses it (``ReplicaMetadata/resyncFrom``).
/// 4. A document is *unconfirmed* from the local write that created it (no record was stored)
///    until a pull brings a record of it or the server acknowledges a push of it;
///    ``unconfirmedDocuments(among:)`` answers which of the given documents are. A document
///    stored before a storage tracked this counts as confirmed.
public protocol TombstoneCollecting: Sendable {
    /// One bounded step of tombstone collection (contract point 1).
    /// - Complexity: O(`limit`) records read.
    func collectTombstones(
        deletedBefore cutoff: UInt64, countingFor replica: ReplicaID, after: DocumentKey?, limit: Int
    )
        async throws(WeftError) -> (collected: [DocumentKey], lastLooked: DocumentKey?)

    /// The counter floor of each collection that has one (contract point 2).
    func counterFloors() async throws(WeftError) -> [CollectionName: UInt64]

    /// Removes documents, setting their queue entries aside (contract point 3).
    func forgetDocuments(
        _ keys: [DocumentKey], deadLetterReason reason: String, countingFor replica: ReplicaID)
        async throws(WeftError)

    /// Which of `keys` are unconfirmed: created here and neither pulled nor acknowledged since
    /// (contract point 4).
    func unconfirmedDocuments(among keys: [DocumentKey]) async throws(WeftError) -> Set<DocumentKey>
}

/// Settings of tombstone collection.
public enum TombstoneRetention {
    /// The default `tombstone_retention_ms`: 30 days. A server restored from a backup taken
    /// before a deletion gets the deletion back from replicas that still hold its tombstone;
    /// past the retention, replicas may have forgotten it.
    public static let defaultMilliseconds: UInt64 = 30 * 24 * 3_600 * 1_000
}
