import WeftCRDT

// Forgetting old tombstones, and the counter floors that keep the replica's counters going up.
extension Replica {
    /// Forgets the tombstones of documents deleted more than `retention` milliseconds ago (by
    /// default ``ReplicaConfiguration/tombstoneRetentionMilliseconds``) that wait for no push,
    /// in steps of at most `step` documents, and answers how many it forgot. A tombstone that
    /// holds a field (an edit concurrent with the deletion, hidden by the flag) is kept.
    ///
    /// The server holds those deletions (a pull brought them, or a push carrying them was
    /// acknowledged), and every record it sends later descends from them or is the document
    /// created anew (once the server forgot them too), so nothing the replica reads changes. Each collection's counter floor rises to the replica's highest counter in
    /// what it forgot (``TombstoneCollecting``), and later writes in the collection count on from
    /// there: a replica that still holds an old tombstone takes them as new. The sync engine runs
    /// it after pulls (``SyncEngine/tombstoneCollectionInterval``). Nothing is forgotten while a
    /// resync is under way, nor before the server has confirmed the session (edits are made
    /// under a session identity until then).
    ///
    /// - Complexity: one pass over the stored records, O(`step`) per transaction; other writes
    ///   of this replica wait only for the step under way.
    @discardableResult
    public func collectTombstones(retention: UInt64? = nil, step: Int = 1_000) async throws(WeftError) -> Int
    {
        let now = timeSource.currentMilliseconds()
        let keep = retention ?? configuration.tombstoneRetentionMilliseconds
        guard now > keep else { return 0 }
        let cutoff = now - keep
        var after: DocumentKey?
        var collected = 0
        repeat {
            let step = try await exclusively {
                () async throws(WeftError) -> (collected: [DocumentKey], lastLooked: DocumentKey?) in
                // Only once edits are made as the replica's identity, whose counters the floors
                // keep: a session identity's would be issued again before the session ends.
                guard writerID == replicaID else { return ([], nil) }
                let result = try await storage.collectTombstones(
                    deletedBefore: cutoff, countingFor: replicaID, after: after, limit: max(1, step))
                if !result.collected.isEmpty { counterFloors = try await storage.counterFloors() }
                return result
            }
            collected += step.collected.count
            after = step.lastLooked
        } while after != nil && !Task.isCancelled
        return collected
    }

    /// Forgets `keys` (their records, server bases and queue entries, which go to the dead
    /// letters with `reason`), raising the counter floors as collecting does
    /// (``TombstoneCollecting``, contract point 3). A resync uses it for documents the server
    /// deleted and forgot while this replica was too far behind, and for copies of a document
    /// the server has since created again. Observers see a live document go as a deletion.
    func forgetDocuments(_ keys: [DocumentKey], reason: String) async throws(WeftError) {
        guard !keys.isEmpty else { return }
        let gone = try await exclusively { () async throws(WeftError) -> [DocumentKey: DocumentRecord] in
            let records = try await storage.records(for: keys)
            try await storage.forgetDocuments(keys, deadLetterReason: reason, countingFor: replicaID)
            counterFloors = try await storage.counterFloors()
            return records
        }
        for (key, record) in gone where !record.isDeleted {
            publish(ReplicaChange(key: key, origin: .remote, isDeleted: true, stamp: record.lastStamp))
        }
    }

    /// The reason the dead letters of unpushed writes to a document that left this replica's
    /// view (its token's channels, or its subscription) give.
    public static let leftView =
        "the document left the channels this replica may read or subscribes to, and this replica removed its copy: the write was not pushed"

    /// The reason the dead letters of unpushed writes to a document give when the server refused
    /// an earlier write to it because of who may write it (its channels).
    public static let refusedForChannels =
        "the server refused a write to this document because this replica may not write its channels; the document was reset to the server's version and this write was not pushed"

    /// The reason a resync gives the dead letters of writes to documents the server deleted and
    /// forgot while this replica was too far behind.
    public static let forgottenWhileAway =
        "the server deleted this document, and forgot the deletion, while this replica had not pulled for longer than tombstone_retention_ms: the write was not pushed"

    /// The reason a resync gives the dead letters of writes to a document the server deleted,
    /// forgot, and created again while this replica was too far behind.
    public static let createdAgainWhileAway =
        "the server deleted this document, forgot the deletion and created it again, while this replica had not pulled for longer than tombstone_retention_ms: the write was made to the old document and was not pushed"

    /// The counter floor a write to `collection` must raise its record to: the collection's
    /// floor when the write is made as ``replicaID`` (the identity whose counters the floors
    /// count), else 0. Session identities are new: they have no counters to continue.
    func counterFloor(for collection: CollectionName) -> UInt64 {
        writerID == replicaID ? counterFloors[collection] ?? 0 : 0
    }
}
