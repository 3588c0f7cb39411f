import Weft
import WeftCRDT

/// Forgetting tombstones on the server, once every replica still syncing has pulled past them.
///
/// A deleted document keeps its record (a tombstone) so the deletion reaches every replica. Once
/// every replica that pulled within `tombstone_retention_ms` has acknowledged a cursor at or
/// past the tombstone's entry (its latest pull started there), the server may forget it: those
/// replicas hold the deletion. A replica that has not pulled for longer is too far behind: its
/// cursor is below what the database forgot (``collectedThrough(database:)``), so the server
/// refuses its pulls and pushes ("too far behind") and it resyncs, taking the server's documents
/// in place of copies that may have been deleted meanwhile.
///
/// ## Contract (``CentralStore`` rule 9)
///
/// 1. ``collectTombstones(pulledSince:limit:)`` works per database. Its *stable point* is the
///    lowest cursor the named replicas that pulled at or after `pulledSince` (milliseconds since
///    1970) started their latest pull from (``CentralStore`` rule 8), or unbounded if none
///    did. It removes the documents whose record is deleted and holds no field (a tombstone
///    holding an edit that lost to the deletion keeps it, as a replica's does) and whose log
///    entry is at or below the stable point, with their entries, at most about `limit` per
///    call, and raises ``collectedThrough(database:)`` to the highest such entry's sequence, in
///    the same atomic step. It answers how many it removed and whether the pass found none
///    left.
/// 2. ``collectedThrough(database:)`` never decreases (except by a restore from a backup, which
///    restores it with what it describes), and starts at 0.
/// 3. A document whose stored record is created (none was stored) records the database's
///    ``collectedThrough(database:)`` at that moment, read in the creating transaction after the
///    document's row: ``LoggedChange/bornAfter`` answers it with every page.
public protocol TombstoneCollectingStore: Sendable {
    /// One bounded step of tombstone collection (rule 1).
    /// - Complexity: O(`limit`) documents removed, plus the stable point's query.
    func collectTombstones(pulledSince: UInt64, limit: Int) async throws(WeftError) -> (
        removed: Int, passFinished: Bool
    )

    /// The highest log sequence of a tombstone the database forgot (rule 2); 0 if none.
    func collectedThrough(database: String) async throws(WeftError) -> UInt64

    /// How many tombstones this store object forgot, for metrics.
    var collectedTombstones: UInt64 { get async }
}

extension CentralStore {
    /// Records a pull (rule 8) made now, by the system clock.
    public func rememberPull(
        database: String, replica: ReplicaID, after: UInt64, afterTag: UInt64, served: UInt64,
        servedTag: UInt64
    )
        async throws(WeftError)
    {
        try await rememberPull(
            database: database, replica: replica, after: after, afterTag: afterTag, served: served,
            servedTag: servedTag,
            pulledAt: SystemTimeSource().currentMilliseconds())
    }

    /// The check of rule 6a, for stores to call inside their push's transaction.
    public static func refuseIfTooFarBehind(_ pulledThrough: UInt64?, collectedThrough: UInt64)
        throws(WeftError)
    {
        guard collectedThrough > 0 else { return }
        guard let pulledThrough else {
            throw .tooFarBehind(
                "this server forgot deleted documents (tombstone_retention_ms) and the push does not say which changes its records hold: upgrade Weft on this replica"
            )
        }
        if pulledThrough < collectedThrough {
            throw .tooFarBehind(
                "this replica last pulled at \(pulledThrough), and the server forgot deletions up to \(collectedThrough) (tombstone_retention_ms): resync"
            )
        }
    }
}
