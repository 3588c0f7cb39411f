import Weft
import WeftCRDT
import WeftWire

/// One change in the central change log: the server sequence and the record it produced.
public struct LoggedChange: Hashable, Sendable {
    /// The server sequence, assigned in commit order.
    public let sequence: UInt64
    /// The document.
    public let key: DocumentKey
    /// The document's record after the change.
    public let record: DocumentRecord
    /// The record's encoded size, for paging by bytes.
    public let byteCount: Int
    /// A random number drawn when the change was logged (1 ... 2⁶³ − 1; 0 for changes logged
    /// before tags existed). A cursor carries it: two histories of a store (one restored from a
    /// backup and continued) give different changes the same sequence, never the same tag.
    public let tag: UInt64
    /// For a large document whose change was small: the record as a delta over the document's
    /// previous version (`DocumentRecord.delta(since:maximumDots:)`), that
    /// version's digest, and the sequence its entry had; `nil` otherwise.
    public let delta: LogDelta?
    /// How far the database had forgotten tombstones (``TombstoneCollectingStore/collectedThrough(database:)``)
    /// when the document's stored record was created: above a replica's cursor, the document
    /// was deleted, forgotten and created again since that replica last pulled it.
    public let bornAfter: UInt64

    /// Creates a logged change.
    public init(
        sequence: UInt64, key: DocumentKey, record: DocumentRecord, byteCount: Int, tag: UInt64 = 0, delta: LogDelta? = nil,
        bornAfter: UInt64 = 0
    ) {
        self.sequence = sequence
        self.key = key
        self.record = record
        self.byteCount = byteCount
        self.tag = tag
        self.delta = delta
        self.bornAfter = bornAfter
    }

    /// A new change's tag: random, never 0, and fits a signed 64-bit column.
    public static func newTag() -> UInt64 { UInt64.random(in: 1...UInt64(Int64.max)) }
}

/// A logged change as a delta over the document's previous version, for readers that hold it.
public struct LogDelta: Hashable, Sendable {
    /// The change's record as a delta over the previous version.
    public let record: DocumentRecord
    /// The previous version's `DocumentRecord.digest`: a reader whose record is
    /// exactly that version can join the delta.
    public let baseDigest: UInt64
    /// The sequence the previous version's entry had: a reader past it has probably seen it.
    public let baseSequence: UInt64

    public init(record: DocumentRecord, baseDigest: UInt64, baseSequence: UInt64) {
        self.record = record
        self.baseDigest = baseDigest
        self.baseSequence = baseSequence
    }

    /// The smallest record worth a delta, in encoded bytes: smaller records travel whole.
    public static let minimumRecordBytes = 4_096

    /// The delta of `record` over `previous`, if the record is large, the delta at most a quarter
    /// of it, and it joins into `previous` to give `record` exactly.
    /// - Complexity: O(*n*) in the entries of both records, for records of at least
    ///   ``minimumRecordBytes``; O(1) for smaller ones.
    public static func make(_ record: DocumentRecord, encodedBytes: Int, over previous: DocumentRecord?) -> (record: DocumentRecord, bytes: [UInt8])? {
        guard encodedBytes >= minimumRecordBytes, let previous, let delta = record.delta(since: previous) else { return nil }
        let bytes = delta.encoded()
        return bytes.count * 4 <= encodedBytes ? (delta, bytes) : nil
    }
}

/// The server's storage: per database (tenant), the documents, a change log in server order,
/// each replica's high-water mark and a conflict log.
///
/// ## Contract
///
/// 1. ``applyPush(database:replica:epoch:expectedMark:changes:merge:)`` is atomic and idempotent: it merges every
///    change into the stored records with `merge` (the one merge), appends each record that
///    changed to the change log under a new server sequence, logs conflicts, and raises the
///    replica's high-water mark to the batch's last sequence — all or nothing, and durable before
///    it returns. A change already applied merges to the same record and logs nothing, so a
///    re-sent batch has no second effect. Changes at or below the high-water mark are merged
///    too, not skipped: a replica may have joined a newer write into an entry it had sent
///    before a crash or a lost answer, under the entry's old sequence number.
/// 2. Server sequences increase in commit order and are never reused, so a reader that has seen
///    sequence *n* has seen every change below *n* (no gaps a reader could skip).
/// 2a. The log is compacted: it holds at most one entry per document, the latest. Logging a
///    change of a document removes the document's earlier entry, in the same transaction (or,
///    for entries an older build left, in ``compactLog(limit:)``'s steps). A reader after cursor
///    *c* therefore receives every document changed after *c* once, at its latest version, and
///    a reader from 0 receives each document once: the log *is* the snapshot. (An entry removed
///    has a newer entry of the same document, above it, so no reader past the removed entry's
///    cursor misses the document.)
/// 3. ``changes(database:after:limit:maxBytes:)`` returns the logged changes after a cursor, in
///    sequence order, at most `limit` and at most `maxBytes` (at least one if any), and whether
///    more follow. Each logged change gets a new random ``LoggedChange/tag``, and
///    ``tag(database:sequence:)`` answers the tag of the change at a sequence (`nil` if there is
///    none).
/// 4. Databases are independent: nothing one database holds is visible in another.
/// 5. ``hello(database:replica:confirmedEpoch:epoch:acknowledgedThrough:)`` keeps one session per
///    replica: it records `epoch` and accepts if the replica's high-water mark is at most
///    `acknowledgedThrough` and the replica has no session yet, or its session is
///    `confirmedEpoch` or already `epoch`; otherwise it answers "forked" and changes nothing.
///    A mark *below* `acknowledgedThrough` means the store lost changes it had acknowledged
///    (it was restored from a backup): then it accepts whatever the session, raises the mark to
///    `acknowledgedThrough` (so an older copy of the replica's file is still told it forked),
///    and answers the mark it had, which tells the replica to resync. Durable before it
///    returns.
/// 6. ``applyPush(database:replica:epoch:expectedMark:changes:merge:)`` applies a batch only if `epoch` is
///    the replica's session, or `epoch` is 0 and the replica has none; otherwise it throws
///    `WeftError.Kind.forked` and changes nothing. The check and the push are atomic
///    with respect to `hello` for that replica. It also throws `WeftError.Kind.forked`,
///    changing nothing, if the replica's high-water mark is below `expectedMark`: the replica
///    was told the store holds its changes that far, so the store lost some (it was restored
///    from a backup taken during the session), and the replica must say hello again, which
///    tells it to resync.
/// 6a. In the same atomic step, it throws `WeftError.Kind.tooFarBehind`, changing
///    nothing, if the database forgot a tombstone logged after `pulledThrough` (the cursor the
///    pushed records were read at: ``TombstoneCollectingStore/collectedThrough(database:)`` is
///    above it, 0 included), or if it forgot any and `pulledThrough` is `nil` (a client that does
///    not say). Read after the batch's stored records, so a tombstone forgotten while the
///    push ran is either merged into (it was read) or refuses the push (it was not).
/// 6b. Each replica has a *receipt* in each database, 0 until its first push, and the receipt
///    it replaced. A push that changes a stored record or raises the high-water mark replaces
///    the receipt with the caller's `receipt` in the same atomic step (``PushReceipts/keep(stored:receipt:moves:)``).
///    The push answers the link (replaced, new); a push that changes nothing leaves the
///    receipts and answers (current, current), unless the current receipt is its own (the same
///    push applied again after its answer was lost), which answers the link that push made
///    (``PushReceipts/answer(kept:receipt:)``). A push that throws leaves them. ``hello(database:replica:confirmedEpoch:epoch:acknowledgedThrough:)``
///    answers the current receipt and never changes it. Receipts are restored with the rest of
///    a backup, which is what lets a replica notice that a push it was answered for is gone
///    (`PushReceipt`).
/// 7. ``knownReplicas(database:among:)`` answers which of the given replicas have spoken to the
///    database: said hello, or pushed (a high-water mark).
/// 8. ``rememberPull(database:replica:after:afterTag:served:servedTag:pulledAt:)`` records, per replica, the
///    cursor a pull started from (checked by the caller) and the cursor its page ended at, and
///    keeps for each replica the cursor of its latest pull, the page's end and the ends of the
///    three pages served last before it, and, apart, the cursor of its latest pull and when
///    it was made (`pulledAt`, milliseconds since 1970: what tombstone collection counts as
///    acknowledged, ``TombstoneCollectingStore``); for ``RememberedCursors/unnamedReader`` (clients that
///    do not name themselves) it keeps every page's end, trimmed to the newest
///    ``RememberedCursors/unnamedKept`` per database by ``compactLog(limit:)``.
///    ``servedCursor(database:sequence:tag:)`` answers whether a cursor is remembered for any
///    replica (so a replica that took a new identity keeps its cursor), or lies at or below
///    the last sequence the store had given when it moved to the compacted log (those cursors
///    predate remembering; every history the store can be restored to shares them). What is
///    remembered is restored with the log: a cursor served from a history the store lost is
///    not. Losing the latest rows (a crash) may only make a cursor unknown, never a wrong one
///    known, so stores need not flush them before answering.
/// 10. A store that keeps the JSON projection (the SQLite and PostgreSQL stores: columns `doc`
///    and `deleted` beside each record) writes, in the transaction that stores a record, the
///    record's projection by the push's `projector` (``DocumentProjector``): `deleted` true
///    and `doc` NULL for a deleted record, `deleted` false and the projection's text otherwise.
///    Rows an older build wrote have `deleted` NULL until ``projectDocuments(limit:projector:)``
///    fills them, in bounded steps; a record written meanwhile gets its projection with it.
public protocol CentralStore: TombstoneCollectingStore {
    /// Opens a session for `replica`; answers whether it is accepted, the replica's high-water
    /// mark, and its receipt (contract, rule 6b).
    func hello(database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64) async throws(WeftError)
        -> (accepted: Bool, appliedThrough: UInt64, receipt: UInt64)

    /// The tag of the logged change at `sequence` in `database`, or `nil` if there is none.
    func tag(database: String, sequence: UInt64) async throws(WeftError) -> UInt64?

    /// Which of `replicas` have a session or a high-water mark in `database`.
    /// - Complexity: one query (in chunks for many replicas).
    func knownReplicas(database: String, among replicas: Set<ReplicaID>) async throws(WeftError) -> Set<ReplicaID>

    /// Applies a pushed batch and, if it changes anything, replaces the replica's receipt with
    /// `receipt` (contract, rule 6b); returns the replica's high-water mark afterwards and the
    /// push's link.
    func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, expectedMark: UInt64, pulledThrough: UInt64?, receipt: UInt64,
        changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)], projector: DocumentProjector,
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> (mark: UInt64, receipt: PushReceipt)

    /// The logged changes after `after`.
    func changes(database: String, after: UInt64, limit: Int, maxBytes: Int) async throws(WeftError)
        -> (changes: [LoggedChange], hasMore: Bool)

    /// The current record of a document.
    func record(database: String, key: DocumentKey) async throws(WeftError) -> DocumentRecord?

    /// The most recent conflicts in `database`, newest first.
    func conflicts(database: String, limit: Int) async throws(WeftError) -> [ConflictRecord]

    /// Records that `replica` pulled from `after` (with its tag, which the caller checked) and
    /// was served a page ending at `served` (contract, rule 8).
    /// - Complexity: O(1) rows written.
    func rememberPull(
        database: String, replica: ReplicaID, after: UInt64, afterTag: UInt64, served: UInt64, servedTag: UInt64, pulledAt: UInt64
    ) async throws(WeftError)

    /// Whether `sequence` with `tag` is a cursor remembered for some replica (contract, rule 8).
    func servedCursor(database: String, sequence: UInt64, tag: UInt64) async throws(WeftError) -> Bool

    /// One bounded step of background compaction: removes at most about `limit` log entries
    /// that a newer entry of the same document supersedes (left by an older build, which did
    /// not compact as it logged) and answers how many it removed and whether a pass over the
    /// log finished. Entries logged by this build are compacted as they are logged, so a
    /// finished pass finds nothing until an older server logs again.
    /// - Complexity: O(`limit`) entries read.
    func compactLog(limit: Int) async throws(WeftError) -> (removed: Int, passFinished: Bool)

    /// How many log entries this store object removed because a newer entry of the same
    /// document superseded them, as it logged or in ``compactLog(limit:)``.
    var compactedEntries: UInt64 { get async }

    /// One bounded step of filling in the projection of rows written before the store kept it
    /// (contract, rule 10): projects at most `limit` such rows and answers how many, and whether
    /// none is left. Stores that keep no projection answer `(0, true)`.
    /// - Complexity: O(`limit`) records decoded and projected.
    func projectDocuments(limit: Int, projector: DocumentProjector) async throws(WeftError) -> (projected: Int, passFinished: Bool)

    /// Makes the store hold exactly `views` among its typed views of collections' projections
    /// (`weft_view_NAME`, `CollectionView` in Weft): creates or replaces each, and drops views of
    /// that name pattern it no longer declares. Stores without SQL have none to make.
    func declareViews(_ views: [CollectionView]) async throws(WeftError)

    /// The live documents of `collection` in `database` whose projection matches every one of
    /// `filters`, in ascending order of their ids (by bytes) after `after`, at most `limit`.
    /// Stores that keep the projection find them with it: rows not projected yet (rule 10) are
    /// not found until they are.
    /// - Complexity: one query, reading the collection's rows after `after` (an index on the
    ///   projection's fields, which an operator may add, narrows it).
    func documents(
        database: String, collection: CollectionName, after: DocumentID?, limit: Int, filters: [ProjectionFilter], projector: DocumentProjector
    ) async throws(WeftError) -> [(id: DocumentID, record: DocumentRecord)]
}

/// One condition on a document's projection: the value at `path` equals `value` (as JSON:
/// `1` and `1.0` are equal, `"1"` is not).
public struct ProjectionFilter: Hashable, Sendable {
    /// The field names from the top of the document down.
    public let path: [String]
    /// The value.
    public let value: JSONValue

    /// A condition; `path` must have 1 to 16 components, none empty, over 256 bytes, or holding
    /// `"` or a control character.
    public init(path: [String], value: JSONValue) throws(WeftError) {
        let plain = { (name: String) in !name.isEmpty && name.utf8.count <= 256 && !name.utf8.contains { $0 < 0x20 || $0 == 0x7F || $0 == 0x22 } }
        guard !path.isEmpty, path.count <= 16, path.allSatisfy(plain) else {
            throw .invalidArgument("a filter's field path needs 1 to 16 names, none empty, over 256 bytes, or holding '\"' or a control character")
        }
        self.path = path
        self.value = value
    }

    /// Whether `projection` matches.
    public func matches(_ projection: JSONValue) -> Bool {
        var current = projection
        for name in path {
            guard case .object(let members) = current, let next = members[name] else { return false }
            current = next
        }
        return Self.equal(current, value)
    }

    static func equal(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { equal($0, $1) }
        case (.object(let x), .object(let y)): return x.count == y.count && x.allSatisfy { key, value in y[key].map { equal(value, $0) } ?? false }
        default: return a == b
        }
    }
}

extension CentralStore {
    /// A store that keeps no projection has none to fill in.
    public func projectDocuments(limit: Int, projector: DocumentProjector) async throws(WeftError) -> (projected: Int, passFinished: Bool) {
        (0, true)
    }

    /// A store without SQL has no views to make.
    public func declareViews(_ views: [CollectionView]) async throws(WeftError) {}
}

extension CentralStore {
    /// Applies a pushed batch with a new random receipt; returns the replica's high-water mark
    /// afterwards.
    public func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, expectedMark: UInt64, pulledThrough: UInt64?,
        changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)],
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> UInt64 {
        try await applyPush(
            database: database, replica: replica, epoch: epoch, expectedMark: expectedMark, pulledThrough: pulledThrough,
            receipt: PushReceipt.draw(), changes: changes, projector: .plain, merge: merge
        ).mark
    }

    /// Applies a batch outside any session (epoch 0): what a replica that predates the
    /// handshake sends, accepted only while its identity has no session.
    public func applyPush(
        database: String, replica: ReplicaID, changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)],
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> UInt64 {
        try await applyPush(database: database, replica: replica, epoch: 0, expectedMark: 0, pulledThrough: 0, changes: changes, merge: merge)
    }

    /// Applies a batch in session `epoch`, expecting no particular high-water mark.
    public func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)],
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> UInt64 {
        try await applyPush(database: database, replica: replica, epoch: epoch, expectedMark: 0, pulledThrough: 0, changes: changes, merge: merge)
    }

    /// Applies a batch in session `epoch` expecting the high-water mark `expectedMark`, from a
    /// replica that had pulled nothing yet (or, for tests, that never falls behind).
    public func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, expectedMark: UInt64,
        changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)],
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> UInt64 {
        try await applyPush(
            database: database, replica: replica, epoch: epoch, expectedMark: expectedMark, pulledThrough: 0, changes: changes, merge: merge)
    }
}

/// The receipts a store keeps per replica and answers (``CentralStore`` contract, rule 6b;
/// `PushReceipt`).
public enum PushReceipts {
    /// The receipts a store keeps after a push with `receipt`, from those it held: the push's
    /// receipt and the one it replaced if the push `moves` them (changed a stored record or
    /// raised the high-water mark), otherwise those it held. The same push applied again keeps
    /// the receipt its first application replaced.
    public static func keep(stored: (current: UInt64, previous: UInt64), receipt: UInt64, moves: Bool) -> (current: UInt64, previous: UInt64) {
        guard moves else { return stored }
        return (receipt, stored.current == receipt ? stored.previous : stored.current)
    }

    /// What a push with `receipt` answers when the store keeps `kept` after it: the link it made
    /// (or made when first applied), or (current, current) for a push that changed nothing.
    public static func answer(kept: (current: UInt64, previous: UInt64), receipt: UInt64) -> PushReceipt {
        kept.current == receipt
            ? PushReceipt(previous: kept.previous, current: kept.current) : PushReceipt(previous: kept.current, current: kept.current)
    }
}

/// Constants of the remembered pull cursors (``CentralStore`` contract, rule 8).
public enum RememberedCursors {
    /// The identity the cursors served to clients that do not name themselves are kept under.
    public static let unnamedReader = ReplicaID(high: 0, low: 0)
    /// How many cursors served to unnamed clients a database keeps (the newest).
    public static let unnamedKept = 10_000
    /// How many page ends a named replica keeps besides its pull's cursor and the latest page's.
    public static let earlierPagesKept = 3
}

extension CentralStore {
    /// The message of a push refused because the store holds less of the replica's queue than
    /// the replica was told (contract, rule 6).
    public static func lostChanges(_ replica: ReplicaID, _ mark: UInt64, _ expected: UInt64) -> String {
        "the store holds replica \(replica)'s changes through \(mark), but acknowledged them through \(expected) (restored from a backup?)"
    }
}
