import Weft
import WeftCRDT
import WeftWire

/// A central store in memory, for tests and in-process use.
public actor MemoryCentralStore: CentralStore {
    fileprivate struct Tenant {
        var documents: [DocumentKey: DocumentRecord] = [:]
        var log: [LoggedChange] = []
        var highWater: [ReplicaID: UInt64] = [:]
        var sessions: [ReplicaID: UInt64] = [:]
        /// Each replica's receipt and the one its last push replaced (contract, rule 6b); absent: 0.
        var receipts: [ReplicaID: (current: UInt64, previous: UInt64)] = [:]
        var conflicts: [ConflictRecord] = []
        /// Each document's entry in ``log``, by sequence.
        var logged: [DocumentKey: UInt64] = [:]
        /// The cursors remembered per replica (contract, rule 8): sequence → tag.
        var pullCursors: [ReplicaID: [UInt64: UInt64]] = [:]
        /// Each named replica's latest pull: its cursor and when (rule 8, for rule 9).
        var pullPositions: [ReplicaID: (after: UInt64, at: UInt64)] = [:]
        /// The highest sequence of a forgotten tombstone (rule 9).
        var collectedThrough: UInt64 = 0
        /// ``collectedThrough`` when each document's record was created, if above 0.
        var bornAfter: [DocumentKey: UInt64] = [:]
        /// Each document's channels (ChannelIndexedStore rule 1), where assigned.
        var channels: [DocumentKey: [String]] = [:]
        /// The channel index: per channel and document, the entry's sequence, tag and whether
        /// it is present (else departed).
        var channelEntries: [String: [DocumentKey: (sequence: UInt64, tag: UInt64, present: Bool)]] = [:]

        /// Marks departed, at `sequence`, every channel the index has `key` present in and that
        /// `channels` does not hold.
        mutating func depart(_ key: DocumentKey, keeping channels: [String], at sequence: UInt64, tag: UInt64)
        {
            let kept = Set(channels)
            for channel in channelEntries.keys where !kept.contains(channel) {
                if channelEntries[channel]?[key]?.present == true {
                    channelEntries[channel]?[key] = (sequence, tag, false)
                }
            }
        }

        /// The index of the first entry of `log` at or after `sequence`.
        func position(of sequence: UInt64) -> Int {
            var low = 0
            var high = log.count
            while low < high {
                let middle = (low + high) / 2
                if log[middle].sequence < sequence { low = middle + 1 } else { high = middle }
            }
            return low
        }
    }

    private var tenants: [String: Tenant] = [:]
    private var nextSequence: UInt64 = 1
    private var fingerprint: Int64?
    private let viewKey: [UInt8] = (0..<32).map { _ in UInt8.random(in: 0...255) }
    /// Log entries removed because a newer one superseded them.
    public private(set) var compactedEntries: UInt64 = 0
    /// Tombstones forgotten (rule 9).
    public private(set) var collectedTombstones: UInt64 = 0

    /// An empty store.
    public init() {}

    public func hello(
        database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64,
        acknowledgedThrough: UInt64
    ) -> (accepted: Bool, appliedThrough: UInt64, receipt: UInt64) {
        var tenant = tenants[database] ?? Tenant()
        let mark = tenant.highWater[replica] ?? 0
        let receipt = tenant.receipts[replica]?.current ?? 0
        if mark < acknowledgedThrough {
            // This store lost changes it had acknowledged (restored from a backup).
            tenant.sessions[replica] = epoch
            tenant.highWater[replica] = acknowledgedThrough
            tenants[database] = tenant
            return (true, mark, receipt)
        }
        if let current = tenant.sessions[replica], current != confirmedEpoch, current != epoch {
            return (false, mark, receipt)
        }
        if mark > acknowledgedThrough { return (false, mark, receipt) }
        tenant.sessions[replica] = epoch
        tenants[database] = tenant
        return (true, mark, receipt)
    }

    public func knownReplicas(database: String, among replicas: Set<ReplicaID>) -> Set<ReplicaID> {
        guard let tenant = tenants[database] else { return [] }
        return replicas.filter { tenant.sessions[$0] != nil || tenant.highWater[$0] != nil }
    }

    public func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, expectedMark: UInt64, pulledThrough: UInt64?,
        receipt: UInt64,
        changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)], projector: DocumentProjector,
        merge:
            @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
                record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
            )
    ) throws(WeftError) -> (mark: UInt64, receipt: PushReceipt) {
        var tenant = tenants[database] ?? Tenant()
        guard tenant.sessions[replica] == (epoch == 0 ? nil : epoch) else {
            throw .forked("replica \(replica) pushed in session \(epoch), which is not its current one")
        }
        var sequence = nextSequence
        let mark = tenant.highWater[replica] ?? 0
        guard mark >= expectedMark else { throw .forked(Self.lostChanges(replica, mark, expectedMark)) }
        try Self.refuseIfTooFarBehind(pulledThrough, collectedThrough: tenant.collectedThrough)
        var moved = false
        for change in changes {
            let previous = tenant.documents[change.key]
            let result = try merge(previous, change.key, change.delta)
            if result.kind == .refused {
                // Logged again as it is, so the pusher, which drops its copy, pulls it back.
                if let previous, !previous.isDeleted, let earlier = tenant.logged[change.key] {
                    let index = tenant.position(of: earlier)
                    if index < tenant.log.count, tenant.log[index].sequence == earlier {
                        tenant.log.remove(at: index)
                    }
                    let tag = LoggedChange.newTag()
                    tenant.logged[change.key] = sequence
                    tenant.log.append(
                        LoggedChange(
                            sequence: sequence, key: change.key, record: previous,
                            byteCount: previous.encoded().count, tag: tag))
                    for channel in tenant.channels[change.key] ?? [] {
                        tenant.channelEntries[channel, default: [:]][change.key] = (sequence, tag, true)
                    }
                    sequence += 1
                    moved = true
                }
                continue
            }
            if previous == nil && tenant.collectedThrough > 0 {
                tenant.bornAfter[change.key] = tenant.collectedThrough
            }
            if let conflict = result.conflict { tenant.conflicts.append(conflict) }
            guard result.record != tenant.documents[change.key] else { continue }
            moved = true
            tenant.documents[change.key] = result.record
            // A large document's small change also keeps its delta over the previous version.
            let size = result.record.encoded().count
            let delta = tenant.logged[change.key].flatMap { earlier in
                LogDelta.make(result.record, encodedBytes: size, over: previous).map {
                    LogDelta(record: $0.record, baseDigest: previous?.digest ?? 0, baseSequence: earlier)
                }
            }
            // Compaction: the document's earlier entry goes.
            if let earlier = tenant.logged[change.key] {
                let index = tenant.position(of: earlier)
                if index < tenant.log.count, tenant.log[index].sequence == earlier {
                    tenant.log.remove(at: index)
                }
                compactedEntries += 1
            }
            tenant.logged[change.key] = sequence
            let tag = LoggedChange.newTag()
            tenant.log.append(
                LoggedChange(
                    sequence: sequence, key: change.key, record: result.record, byteCount: size, tag: tag,
                    delta: delta))
            if projector.tracksChannels {
                let before = tenant.channels[change.key] ?? []
                let now =
                    projector.channels(database: database, key: change.key, record: result.record) ?? before
                tenant.channels[change.key] = now
                for channel in now {
                    tenant.channelEntries[channel, default: [:]][change.key] = (sequence, tag, true)
                }
                tenant.depart(change.key, keeping: now, at: sequence, tag: tag)
            }
            sequence += 1
        }
        let newMark = max(mark, changes.map(\.sequence).max() ?? 0)
        tenant.highWater[replica] = newMark
        let kept = PushReceipts.keep(
            stored: tenant.receipts[replica] ?? (0, 0), receipt: receipt, moves: moved || newMark > mark)
        tenant.receipts[replica] = kept
        tenants[database] = tenant
        nextSequence = sequence
        return (newMark, PushReceipts.answer(kept: kept, receipt: receipt))
    }

    public func changes(database: String, after: UInt64, limit: Int, maxBytes: Int)
        -> (changes: [LoggedChange], hasMore: Bool)
    {
        guard let tenant = tenants[database] else { return ([], false) }
        let log = tenant.log
        // The log is in sequence order: binary search for the first change after the cursor.
        let low = after == .max ? log.count : tenant.position(of: after + 1)
        var page = [LoggedChange]()
        var bytes = 0
        var index = low
        while index < log.count, page.count < max(1, limit) {
            var change = log[index]
            if !page.isEmpty && bytes + change.byteCount > maxBytes { break }
            if let born = tenant.bornAfter[change.key] {
                change = LoggedChange(
                    sequence: change.sequence, key: change.key, record: change.record,
                    byteCount: change.byteCount, tag: change.tag,
                    delta: change.delta, bornAfter: born)
            }
            page.append(change)
            bytes += change.byteCount
            index += 1
        }
        return (page, index < log.count)
    }

    public func tag(database: String, sequence: UInt64) -> UInt64? {
        guard let tenant = tenants[database] else { return nil }
        let index = tenant.position(of: sequence)
        return index < tenant.log.count && tenant.log[index].sequence == sequence
            ? tenant.log[index].tag : nil
    }

    public func rememberPull(
        database: String, replica: ReplicaID, after: UInt64, afterTag: UInt64, served: UInt64,
        servedTag: UInt64, pulledAt: UInt64
    ) {
        var tenant = tenants[database] ?? Tenant()
        var cursors = tenant.pullCursors[replica] ?? [:]
        if replica != RememberedCursors.unnamedReader { tenant.pullPositions[replica] = (after, pulledAt) }
        if replica == RememberedCursors.unnamedReader {
            // Unnamed clients share one list: every page's end, trimmed by compaction.
            if served > after { cursors[served] = servedTag }
        } else {
            cursors = cursors.filter { $0.key >= after }
            if after > 0 { cursors[after] = afterTag }
            if served > after { cursors[served] = servedTag }
            // The pull's own cursor, the page's end, and the last few served before it.
            let earlier = cursors.keys.filter { $0 > after && $0 != served }.sorted()
            for sequence in earlier.dropLast(RememberedCursors.earlierPagesKept) { cursors[sequence] = nil }
        }
        tenant.pullCursors[replica] = cursors
        tenants[database] = tenant
    }

    public func servedCursor(database: String, sequence: UInt64, tag: UInt64) -> Bool {
        tenants[database]?.pullCursors.values.contains { $0[sequence] == tag } ?? false
    }

    /// This store compacts as it logs; a pass only trims the cursors kept for unnamed clients.
    public func compactLog(limit: Int) -> (removed: Int, passFinished: Bool) {
        for name in tenants.keys {
            guard let unnamed = tenants[name]?.pullCursors[RememberedCursors.unnamedReader],
                unnamed.count > RememberedCursors.unnamedKept
            else { continue }
            let kept = unnamed.keys.sorted().suffix(RememberedCursors.unnamedKept)
            tenants[name]?.pullCursors[RememberedCursors.unnamedReader] = unnamed.filter {
                kept.contains($0.key)
            }
        }
        return (0, true)
    }

    public func collectTombstones(pulledSince: UInt64, limit: Int) -> (removed: Int, passFinished: Bool) {
        var removed = 0
        for name in tenants.keys.sorted() {
            guard var tenant = tenants[name] else { continue }
            let stable =
                tenant.pullPositions.values.filter { $0.at >= pulledSince }.map(\.after).min() ?? .max
            var forgotten = Set<UInt64>()
            for entry in tenant.log {
                guard entry.sequence <= stable, removed < limit else { break }
                guard let record = tenant.documents[entry.key], record.isDeleted, record.body.count == 0
                else { continue }
                tenant.documents[entry.key] = nil
                tenant.logged[entry.key] = nil
                tenant.bornAfter[entry.key] = nil
                for channel in tenant.channels.removeValue(forKey: entry.key) ?? [] {
                    tenant.channelEntries[channel]?[entry.key] = nil
                }
                tenant.collectedThrough = max(tenant.collectedThrough, entry.sequence)
                forgotten.insert(entry.sequence)
                removed += 1
            }
            if !forgotten.isEmpty {
                tenant.log.removeAll { forgotten.contains($0.sequence) }
                // Departures at or below what the tenant forgot (ChannelIndexedStore rule 8).
                for channel in Array(tenant.channelEntries.keys) {
                    tenant.channelEntries[channel] = tenant.channelEntries[channel]?.filter {
                        $0.value.present || $0.value.sequence > tenant.collectedThrough
                    }
                }
            }
            tenants[name] = tenant
        }
        collectedTombstones += UInt64(removed)
        return (removed, removed < limit)
    }

    public func collectedThrough(database: String) -> UInt64 { tenants[database]?.collectedThrough ?? 0 }

    /// The store as it is now, to restore later with ``restore(_:)``: a backup, for tests of
    /// what a restored server does.
    public func backup() -> Snapshot { Snapshot(tenants: tenants, nextSequence: nextSequence) }

    /// Puts back a state taken with ``backup()``, losing everything since, as restoring a
    /// database from a backup does.
    public func restore(_ snapshot: Snapshot) {
        tenants = snapshot.tenants
        nextSequence = snapshot.nextSequence
    }

    /// A copy of a ``MemoryCentralStore``'s state.
    public struct Snapshot: Sendable {
        fileprivate let tenants: [String: Tenant]
        fileprivate let nextSequence: UInt64
    }

    public func record(database: String, key: DocumentKey) -> DocumentRecord? {
        tenants[database]?.documents[key]
    }

    /// Reads every document of the collection: O(*n*) in the database's documents per page.
    public func documents(
        database: String, collection: CollectionName, after: DocumentID?, limit: Int,
        filters: [ProjectionFilter], projector: DocumentProjector
    ) -> [(id: DocumentID, record: DocumentRecord)] {
        let precedes = { (a: DocumentID, b: DocumentID) in
            a.rawValue.utf8.lexicographicallyPrecedes(b.rawValue.utf8)
        }
        let candidates = (tenants[database]?.documents ?? [:]).filter { key, record in
            key.collection == collection && !record.isDeleted && after.map { precedes($0, key.id) } ?? true
        }
        var result = [(id: DocumentID, record: DocumentRecord)]()
        for (key, record) in candidates.sorted(by: { precedes($0.key.id, $1.key.id) }) {
            guard result.count < limit else { break }
            if !filters.isEmpty {
                guard let projection = projector.value(database: database, key: key, record: record),
                    filters.allSatisfy({ $0.matches(projection) })
                else { continue }
            }
            result.append((key.id, record))
        }
        return result
    }

    public func conflicts(database: String, limit: Int) -> [ConflictRecord] {
        Array((tenants[database]?.conflicts ?? []).reversed().prefix(max(0, limit)))
    }
}

// The channel index, read by scanning the reader's channels: O(entries) per page.
extension MemoryCentralStore: ChannelIndexedStore {
    public func channelChanges(
        database: String, channels: Set<String>, after: UInt64, limit: Int, maxBytes: Int
    ) -> ChannelPage {
        guard let tenant = tenants[database] else {
            return ChannelPage(entries: [], hasMore: false, head: (0, 0))
        }
        let head = tenant.log.last.map { ($0.sequence, $0.tag) } ?? (0, 0)
        // Each document's latest entry among the reader's channels (present first at a tie).
        var latest = [DocumentKey: (sequence: UInt64, tag: UInt64, present: Bool)]()
        for channel in channels {
            for (key, entry) in tenant.channelEntries[channel] ?? [:] where entry.sequence > after {
                if let seen = latest[key],
                    (seen.sequence, seen.present ? 1 : 0) >= (entry.sequence, entry.present ? 1 : 0)
                {
                    continue
                }
                latest[key] = entry
            }
        }
        var entries = [ChannelPage.Entry]()
        var bytes = 0
        var more = false
        for (key, entry) in latest.sorted(by: { $0.value.sequence < $1.value.sequence }) {
            if entries.count >= max(1, limit) {
                more = true
                break
            }
            if entry.present {
                let index = tenant.position(of: entry.sequence)
                guard index < tenant.log.count, tenant.log[index].sequence == entry.sequence else { continue }
                var change = tenant.log[index]
                if !entries.isEmpty && bytes + change.byteCount > maxBytes {
                    more = true
                    break
                }
                if let born = tenant.bornAfter[key] {
                    change = LoggedChange(
                        sequence: change.sequence, key: key, record: change.record,
                        byteCount: change.byteCount, tag: change.tag,
                        delta: change.delta, bornAfter: born)
                }
                entries.append(.change(change))
                bytes += change.byteCount
            } else if !(tenant.channels[key] ?? []).contains(where: channels.contains) {
                entries.append(.left(key: key, sequence: entry.sequence, tag: entry.tag))
            }
        }
        return ChannelPage(entries: entries, hasMore: more, head: head)
    }

    public func channelScan(database: String, channels: Set<String>?, after: UInt64, limit: Int) -> (
        entries: [ChannelScanEntry], hasMore: Bool
    ) {
        guard let tenant = tenants[database] else { return ([], false) }
        var positions = [DocumentKey: UInt64]()
        if let channels {
            for channel in channels {
                for (key, entry) in tenant.channelEntries[channel] ?? [:] where entry.sequence > after {
                    positions[key] = max(positions[key] ?? 0, entry.sequence)
                }
            }
        } else {
            for change in tenant.log where change.sequence > after { positions[change.key] = change.sequence }
        }
        let ordered = positions.sorted { $0.value < $1.value }
        let entries = ordered.prefix(max(1, limit)).compactMap { key, position -> ChannelScanEntry? in
            guard let record = tenant.documents[key] else { return nil }
            return ChannelScanEntry(
                key: key, position: position, sequence: tenant.logged[key] ?? 0,
                channels: Set(tenant.channels[key] ?? []),
                deleted: record.isDeleted)
        }
        return (entries, ordered.count > max(1, limit))
    }

    public func records(database: String, keys: [DocumentKey]) -> [DocumentKey: DocumentRecord] {
        var found = [DocumentKey: DocumentRecord]()
        for key in keys { if let record = tenants[database]?.documents[key] { found[key] = record } }
        return found
    }

    public func assignChannels(
        after: ChannelAssignmentPosition?, limit: Int, onlyUnassigned: Bool, projector: DocumentProjector
    )
        -> (assigned: Int, last: ChannelAssignmentPosition?)
    {
        let precedes = { (a: ChannelAssignmentPosition, b: ChannelAssignmentPosition) in
            (a.database, a.key.collection.rawValue, a.key.id.rawValue) < (
                b.database, b.key.collection.rawValue, b.key.id.rawValue
            )
        }
        var candidates = [ChannelAssignmentPosition]()
        for (name, tenant) in tenants {
            for key in tenant.documents.keys where !onlyUnassigned || tenant.channels[key] == nil {
                let position = ChannelAssignmentPosition(database: name, key: key)
                if onlyUnassigned || after.map({ precedes($0, position) }) ?? true {
                    candidates.append(position)
                }
            }
        }
        let step = candidates.sorted(by: precedes).prefix(max(1, limit))
        var assigned = 0
        for position in step {
            guard var tenant = tenants[position.database], let record = tenant.documents[position.key] else {
                continue
            }
            let stored = tenant.channels[position.key]
            let channels =
                projector.channels(database: position.database, key: position.key, record: record) ?? stored
                ?? []
            guard stored.map(Set.init) != Set(channels) else { continue }
            if let earlier = tenant.logged[position.key] {
                let index = tenant.position(of: earlier)
                if index < tenant.log.count, tenant.log[index].sequence == earlier {
                    tenant.log.remove(at: index)
                }
            }
            let sequence = nextSequence
            nextSequence += 1
            let tag = LoggedChange.newTag()
            tenant.logged[position.key] = sequence
            tenant.log.append(
                LoggedChange(
                    sequence: sequence, key: position.key, record: record, byteCount: record.encoded().count,
                    tag: tag))
            tenant.channels[position.key] = channels
            for channel in channels {
                tenant.channelEntries[channel, default: [:]][position.key] = (sequence, tag, true)
            }
            tenant.depart(position.key, keeping: channels, at: sequence, tag: tag)
            tenants[position.database] = tenant
            assigned += 1
        }
        return (assigned, step.count < max(1, limit) ? nil : step.last)
    }

    public func channelFingerprint() -> Int64? { fingerprint }

    public func saveChannelFingerprint(_ fingerprint: Int64) { self.fingerprint = fingerprint }

    public func channelViewKey() -> [UInt8] { viewKey }
}
