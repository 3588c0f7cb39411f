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

    /// Creates a logged change.
    public init(sequence: UInt64, key: DocumentKey, record: DocumentRecord, byteCount: Int) {
        self.sequence = sequence
        self.key = key
        self.record = record
        self.byteCount = byteCount
    }
}

/// The server's storage: per database (tenant), the documents, a change log in server order,
/// each replica's high-water mark and a conflict log.
///
/// ## Contract
///
/// 1. ``applyPush(database:replica:epoch:changes:merge:)`` is atomic and idempotent: it merges every
///    change into the stored records with `merge` (the one merge), appends each record that
///    changed to the change log under a new server sequence, logs conflicts, and raises the
///    replica's high-water mark to the batch's last sequence — all or nothing, and durable before
///    it returns. A change already applied merges to the same record and logs nothing, so a
///    re-sent batch has no second effect. Changes at or below the high-water mark are merged
///    too, not skipped: a replica may have joined a newer write into an entry it had sent
///    before a crash or a lost answer, under the entry's old sequence number.
/// 2. Server sequences increase in commit order and are never reused, so a reader that has seen
///    sequence *n* has seen every change below *n* (no gaps a reader could skip).
/// 3. ``changes(database:after:limit:maxBytes:)`` returns the logged changes after a cursor, in
///    sequence order, at most `limit` and at most `maxBytes` (at least one if any), and whether
///    more follow.
/// 4. Databases are independent: nothing one database holds is visible in another.
/// 5. ``hello(database:replica:confirmedEpoch:epoch:acknowledgedThrough:)`` keeps one session per
///    replica: it records `epoch` and accepts if the replica's high-water mark is at most
///    `acknowledgedThrough` and the replica has no session yet, or its session is
///    `confirmedEpoch` or already `epoch`; otherwise it answers "forked" and changes nothing.
///    Durable before it returns.
/// 6. ``applyPush(database:replica:epoch:changes:merge:)`` applies a batch only if `epoch` is
///    the replica's session, or `epoch` is 0 and the replica has none; otherwise it throws
///    ``Weft/WeftError/Kind/forked`` and changes nothing. The check and the push are atomic
///    with respect to `hello` for that replica.
/// 7. ``knownReplicas(database:among:)`` answers which of the given replicas have spoken to the
///    database: said hello, or pushed (a high-water mark).
public protocol CentralStore: Sendable {
    /// Opens a session for `replica`; answers whether it is accepted, and the replica's
    /// high-water mark.
    func hello(database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64) async throws(WeftError)
        -> (accepted: Bool, appliedThrough: UInt64)

    /// Which of `replicas` have a session or a high-water mark in `database`.
    /// - Complexity: one query (in chunks for many replicas).
    func knownReplicas(database: String, among replicas: Set<ReplicaID>) async throws(WeftError) -> Set<ReplicaID>

    /// Applies a pushed batch; returns the replica's high-water mark afterwards.
    func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)],
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> UInt64

    /// The logged changes after `after`.
    func changes(database: String, after: UInt64, limit: Int, maxBytes: Int) async throws(WeftError)
        -> (changes: [LoggedChange], hasMore: Bool)

    /// The current record of a document.
    func record(database: String, key: DocumentKey) async throws(WeftError) -> DocumentRecord?

    /// The most recent conflicts in `database`, newest first.
    func conflicts(database: String, limit: Int) async throws(WeftError) -> [ConflictRecord]
}

extension CentralStore {
    /// Applies a batch outside any session (epoch 0): what a replica that predates the
    /// handshake sends, accepted only while its identity has no session.
    public func applyPush(
        database: String, replica: ReplicaID, changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)],
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> UInt64 {
        try await applyPush(database: database, replica: replica, epoch: 0, changes: changes, merge: merge)
    }
}

/// A central store in memory, for tests and in-process use.
public actor MemoryCentralStore: CentralStore {
    private struct Tenant {
        var documents: [DocumentKey: DocumentRecord] = [:]
        var log: [LoggedChange] = []
        var highWater: [ReplicaID: UInt64] = [:]
        var sessions: [ReplicaID: UInt64] = [:]
        var conflicts: [ConflictRecord] = []
    }

    private var tenants: [String: Tenant] = [:]
    private var nextSequence: UInt64 = 1

    /// An empty store.
    public init() {}

    public func hello(database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64) -> (accepted: Bool, appliedThrough: UInt64) {
        var tenant = tenants[database] ?? Tenant()
        let mark = tenant.highWater[replica] ?? 0
        if let current = tenant.sessions[replica], current != confirmedEpoch, current != epoch { return (false, mark) }
        if mark > acknowledgedThrough { return (false, mark) }
        tenant.sessions[replica] = epoch
        tenants[database] = tenant
        return (true, mark)
    }

    public func knownReplicas(database: String, among replicas: Set<ReplicaID>) -> Set<ReplicaID> {
        guard let tenant = tenants[database] else { return [] }
        return replicas.filter { tenant.sessions[$0] != nil || tenant.highWater[$0] != nil }
    }

    public func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)],
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) throws(WeftError) -> UInt64 {
        var tenant = tenants[database] ?? Tenant()
        guard tenant.sessions[replica] == (epoch == 0 ? nil : epoch) else {
            throw .forked("replica \(replica) pushed in session \(epoch), which is not its current one")
        }
        var sequence = nextSequence
        let mark = tenant.highWater[replica] ?? 0
        for change in changes {
            let result = try merge(tenant.documents[change.key], change.key, change.delta)
            if let conflict = result.conflict { tenant.conflicts.append(conflict) }
            guard result.record != tenant.documents[change.key] else { continue }
            tenant.documents[change.key] = result.record
            tenant.log.append(
                LoggedChange(sequence: sequence, key: change.key, record: result.record, byteCount: result.record.encoded().count))
            sequence += 1
        }
        let newMark = max(mark, changes.map(\.sequence).max() ?? 0)
        tenant.highWater[replica] = newMark
        tenants[database] = tenant
        nextSequence = sequence
        return newMark
    }

    public func changes(database: String, after: UInt64, limit: Int, maxBytes: Int)
        -> (changes: [LoggedChange], hasMore: Bool)
    {
        guard let log = tenants[database]?.log else { return ([], false) }
        // The log is in sequence order: binary search for the first change after the cursor.
        var low = 0
        var high = log.count
        while low < high {
            let middle = (low + high) / 2
            if log[middle].sequence <= after { low = middle + 1 } else { high = middle }
        }
        var page = [LoggedChange]()
        var bytes = 0
        var index = low
        while index < log.count, page.count < max(1, limit) {
            let change = log[index]
            if !page.isEmpty && bytes + change.byteCount > maxBytes { break }
            page.append(change)
            bytes += change.byteCount
            index += 1
        }
        return (page, index < log.count)
    }

    public func record(database: String, key: DocumentKey) -> DocumentRecord? { tenants[database]?.documents[key] }

    public func conflicts(database: String, limit: Int) -> [ConflictRecord] {
        Array((tenants[database]?.conflicts ?? []).reversed().prefix(max(0, limit)))
    }
}
