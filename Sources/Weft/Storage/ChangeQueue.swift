import WeftCRDT

/// One pending change in the outbox: a document with local writes the server has not confirmed.
///
/// An entry does not hold a delta of its own. It stands for the document's current record, which
/// is what a push sends: the join of every write the entry absorbed with everything the replica
/// knew of the document before (see "Why the queue holds whole records" in Docs/Architecture.md).
public struct QueueEntry: Hashable, Sendable {
    /// The replica-local sequence number: unique, increasing, never reused.
    public let sequence: UInt64
    /// The document changed.
    public let key: DocumentKey
    /// The document's record as stored when the entry was read: what a push sends for it.
    public let record: DocumentRecord
    /// The exact size the entry counts against `max_queue_bytes`: its key plus the encoded record
    /// as of the last write the entry absorbed.
    public let byteCount: Int

    /// Creates an entry.
    public init(sequence: UInt64, key: DocumentKey, record: DocumentRecord, byteCount: Int) {
        self.sequence = sequence
        self.key = key
        self.record = record
        self.byteCount = byteCount
    }

    /// The bytes an entry for `key` whose record encodes to `recordBytes` bytes counts.
    public static func byteCount(key: DocumentKey, recordBytes: Int) -> Int {
        recordBytes + key.collection.rawValue.utf8.count + key.id.rawValue.utf8.count
    }
}

/// A change the server refused for good (for example, a document over its size limit), taken
/// out of the queue so it never blocks the rest, and kept with the reason.
public struct DeadLetter: Hashable, Sendable {
    /// The sequence number the entry had in the queue.
    public let sequence: UInt64
    /// The document.
    public let key: DocumentKey
    /// The record that was refused.
    public let record: DocumentRecord
    /// Why the server refused it.
    public let reason: String

    /// Creates a dead letter.
    public init(sequence: UInt64, key: DocumentKey, record: DocumentRecord, reason: String) {
        self.sequence = sequence
        self.key = key
        self.record = record
        self.reason = reason
    }
}

/// The outbox: changes waiting for the server.
///
/// ## Contract
///
/// 1. Sequence numbers are assigned in increasing order and never reused, across restarts.
/// 2. ``totalBytes()`` is the exact sum of the entries' ``QueueEntry/byteCount``; an entry counts
///    its key plus its document's encoded record as of the last write it absorbed.
/// 3. ``nextBatch(maxBytes:maxEntries:)`` returns the oldest entries in sequence order, at least
///    one if any is pending (even one larger than `maxBytes`), and at most `maxEntries`; it marks
///    them *in flight*. It returns entries after the ones already in flight.
/// 4. A write to a document whose pending entry is not in flight is joined into that entry
///    (coalescing): the entry keeps its sequence number and now stands for the document's new
///    record. A write to a document whose entry is in flight gets a new entry with a new
///    sequence number; the in-flight entry stays until it is acknowledged.
/// 5. ``acknowledge(through:)`` removes every entry with a sequence at or below the given one,
///    and only those. It never removes an entry made after the batch it acknowledges.
/// 6. ``releaseInFlight()`` makes in-flight entries pending again (after a failed push), so the
///    next batch starts from the oldest entry. Reopening a persistent queue does the same.
/// 7. A method that throws has changed nothing.
/// 8. ``moveToDeadLetter(sequence:reason:)`` removes the entry with that sequence (and its bytes)
///    from the queue and keeps it, with the document's record and the reason, in the dead
///    letters; ``deadLetters(limit:)`` lists them, newest first. The document itself is left as
///    it is; a later write to it is queued as usual.
public protocol ChangeQueue: Sendable {
    /// The pending entries, in sequence order.
    func entries() async throws(WeftError) -> [QueueEntry]
    /// The exact size of the queue in bytes.
    func totalBytes() async throws(WeftError) -> Int
    /// The number of entries.
    func count() async throws(WeftError) -> Int
    /// The oldest entries not yet in flight, marked in flight.
    func nextBatch(maxBytes: Int, maxEntries: Int) async throws(WeftError) -> [QueueEntry]
    /// Removes every entry at or below `sequence`.
    func acknowledge(through sequence: UInt64) async throws(WeftError)
    /// Puts in-flight entries back to pending.
    func releaseInFlight() async throws(WeftError)
    /// Moves the entry `sequence` out of the queue into the dead letters.
    func moveToDeadLetter(sequence: UInt64, reason: String) async throws(WeftError)
    /// The dead letters, newest first.
    func deadLetters(limit: Int) async throws(WeftError) -> [DeadLetter]
}

/// One local write, as committed: the document and its new record.
///
/// The write's stamp is the record's `lastStamp`: every local write,
/// delete or not, stamps the record's deletion flag with the clock's newest stamp.
public struct LocalWrite: Sendable {
    /// The document written.
    public let key: DocumentKey
    /// The document's record after the write.
    public let record: DocumentRecord
    /// The write as a delta over the record the commit's transform was given for ``key`` (the
    /// stored record): joining it into that record gives ``record``. `nil` when there is none.
    /// A storage may keep it instead of the whole record (the SQLite storage does for large
    /// documents), or ignore it.
    public let patch: DocumentRecord?

    /// Creates a write.
    public init(key: DocumentKey, record: DocumentRecord, patch: DocumentRecord? = nil) {
        self.key = key
        self.record = record
        self.patch = patch
    }
}

/// A pulled change, as applied: the key, the record stored and what the merge found.
public struct AppliedRemoteChange: Hashable, Sendable {
    /// The document.
    public let key: DocumentKey
    /// The record now stored.
    public let record: DocumentRecord
    /// What the merge found.
    public let kind: MergeKind

    /// Creates a result.
    public init(key: DocumentKey, record: DocumentRecord, kind: MergeKind) {
        self.key = key
        self.record = record
        self.kind = kind
    }
}

/// A document store and its change queue, written together.
///
/// ## Contract
///
/// In addition to the contracts of ``DocumentStore`` and ``ChangeQueue``:
///
/// 1. ``commitLocalWrites(reading:maxQueueBytes:_:)`` reads the current records of `keys`,
///    passes them to `transform`, and stores every returned write's record and enqueues its
///    document (coalescing as in ``ChangeQueue`` point 4, also between writes of one call) in
///    **one atomic step**: no other write can change those records in between, and after a
///    crash at any moment either all of it happened or none did.
/// 2. If `transform` throws, or the queue would exceed `maxQueueBytes`
///    (``WeftError/Kind/queueFull``), it throws and changes nothing: every document keeps its old
///    record and no queued byte is dropped.
/// 3. It returns, for each write in order, the sequence number of the entry holding it.
/// 4. In the same atomic step it makes sure the saved last stamp (``ReplicaMetadata/lastStamp``)
///    is at or above the largest stamp of the writes' records, so a clock restored after a crash
///    always resumes above every write that was stored. An implementation may save a lease ahead
///    of that stamp, so that most commits need not write it.
/// 5. ``applyRemoteChanges(_:through:_:)`` merges each pulled change into the stored record with
///    `merge`, stores the results, logs the conflicts `merge` reports and moves the pull cursor
///    forward to `cursor`, in one atomic step. It leaves the queue alone, except that a result of
///    kind ``MergeKind/resolved`` (siblings this replica resolved) is queued like a local write,
///    whatever `max_queue_bytes` says: a pulled change is never refused. If `merge` throws,
///    nothing changes.
/// 7. ``beginResync()`` sets the pull cursor and its tag to 0 and records that a resync is under
///    way (``ReplicaMetadata/resyncPending``) and the cursor it began from
///    (``ReplicaMetadata/resyncFrom``; a resync already under way keeps both), atomically: the
///    one way the cursor moves back. ``endResync(pushingBack:)`` clears them.
///    ``endResync(pushingBack:)`` queues the current record of each key given (as point 5
///    queues a resolution: coalescing, never refused at `max_queue_bytes`) and clears the flag,
///    atomically.
/// 6. `transform` must be a pure function of the records it gets. An implementation may call
///    it more than once in one commit and store only the last call's writes: the SQLite
///    storage first calls it as if no key were stored, when recent commits only created
///    documents, and calls it again with the stored records if that proves wrong.
/// 6a. `transform` gets the records `inout` and may take them out of the dictionary (so that
///    it holds the only copy and edits it in place); a write's ``LocalWrite/patch``, when there
///    is one, is over the record it was given for its key.
/// 8. Server bases. In the atomic step of point 5, each pulled change whose record encodes to
///    at least ``ServerBase/minimumRecordBytes`` becomes its document's *server base* (the
///    pulled record exactly, with its `digest`), replacing the one
///    before; a smaller pulled record removes the document's base. Nothing else sets a base;
///    ``forgetServerBases(_:)`` removes some. A base is a record the server held exactly, so a
///    push can send the document as a delta over it, and a pull can take a delta over it. A
///    storage may keep no bases (its lookups answer nothing): then every push goes whole.
/// 9. Tombstone collection and counter floors: see ``TombstoneCollecting``.
public protocol ReplicaStorage: DocumentStore, ChangeQueue, TombstoneCollecting {
    /// Reads `keys`, computes writes with `transform`, and stores them with their queue entries,
    /// atomically.
    ///
    /// It runs on the caller's executor (`nonisolated(nonsending)`): a replica's write stays on
    /// the replica's actor instead of hopping to the global executor and back.
    nonisolated(nonsending) func commitLocalWrites(
        reading keys: [DocumentKey], maxQueueBytes: Int,
        _ transform: @Sendable (inout [DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) async throws(WeftError) -> [UInt64]

    /// Merges pulled changes into the local records with `merge`, logs the conflicts it reports,
    /// and moves the pull cursor to `cursor` with its tag `tag` (kept if the cursor does not
    /// move), atomically (contract point 5).
    func applyRemoteChanges(
        _ changes: [(key: DocumentKey, record: DocumentRecord)], through cursor: UInt64, tag: UInt64,
        _ merge: @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> [AppliedRemoteChange]

    /// Starts a resync: the pull cursor and its tag go back to 0, and the resync is recorded as
    /// under way, atomically (contract point 7).
    func beginResync() async throws(WeftError)

    /// Ends a resync: queues the current records of `keys` and clears the flag, atomically
    /// (contract point 7).
    func endResync(pushingBack keys: [DocumentKey]) async throws(WeftError)

    /// The most recent conflicts, newest first.
    func conflicts(limit: Int) async throws(WeftError) -> [ConflictRecord]

    /// The digests of the server bases kept for `keys` (contract point 8); a key without a
    /// base is absent.
    func serverBaseDigests(for keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey: UInt64]

    /// The server bases kept for `keys`, each with its digest read with it (contract point 8);
    /// a key without a base is absent.
    func serverBases(for keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey: (digest: UInt64, record: DocumentRecord)]

    /// Removes the server bases of `keys` (contract point 8).
    func forgetServerBases(_ keys: [DocumentKey]) async throws(WeftError)
}

/// A document's server base (``ReplicaStorage``, contract point 8): the last record pulled
/// for it, which the server held exactly. Pushes and pulls of large documents travel as
/// deltas over it.
public enum ServerBase {
    /// The smallest pulled record kept as a base, in encoded bytes (the size from which the
    /// server logs deltas): smaller documents always travel whole.
    public static let minimumRecordBytes = 4_096
}

extension ReplicaStorage {
    /// ``applyRemoteChanges(_:through:tag:_:)`` from a server that gives no tags (the cursor's
    /// tag becomes 0 if the cursor moves).
    public func applyRemoteChanges(
        _ changes: [(key: DocumentKey, record: DocumentRecord)], through cursor: UInt64,
        _ merge: @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> [AppliedRemoteChange] {
        try await applyRemoteChanges(changes, through: cursor, tag: 0, merge)
    }

    /// Stores writes computed without reading: ``commitLocalWrites(reading:maxQueueBytes:_:)``
    /// with no keys.
    public func commitLocalWrites(_ writes: [LocalWrite], maxQueueBytes: Int) async throws(WeftError) -> [UInt64] {
        try await commitLocalWrites(reading: [], maxQueueBytes: maxQueueBytes) { _ in writes }
    }
}
