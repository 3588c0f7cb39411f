import WeftCRDT

/// Replica storage in memory: for tests, previews and throwaway replicas.
///
/// It follows the contracts of ``DocumentStore``, ``ChangeQueue`` and ``ReplicaStorage``,
/// except that nothing survives the process.
public actor MemoryReplicaStorage: ReplicaStorage {
    private var meta: ReplicaMetadata
    private var documents: [DocumentKey: DocumentRecord] = [:]
    /// The queue: sequence → the document and the bytes the entry counts.
    private var queue: [UInt64: (key: DocumentKey, bytes: Int)] = [:]
    /// Each queued document's newest entry.
    private var latest: [DocumentKey: UInt64] = [:]
    private var nextSequence: UInt64 = 1
    private var inFlightThrough: UInt64 = 0
    private var bytes = 0
    private var conflictLog: [ConflictRecord] = []
    private var deadLetterLog: [DeadLetter] = []
    /// The server bases (contract point 8), with their digests.
    private var bases: [DocumentKey: (digest: UInt64, record: DocumentRecord)] = [:]
    /// The counter floors (contract point 9).
    private var floors: [CollectionName: UInt64] = [:]
    /// Documents created here and neither pulled nor acknowledged since (contract point 9).
    private var unconfirmed: Set<DocumentKey> = []

    /// Creates empty storage for a new replica.
    private var boot: String?

    public init(replicaID: ReplicaID = .random()) {
        meta = ReplicaMetadata(replicaID: replicaID)
    }

    public func metadata() -> ReplicaMetadata { meta }

    public func saveLastStamp(_ stamp: HLCTimestamp) { meta.lastStamp = stamp }

    public func setPullCursor(_ cursor: UInt64) { meta.pullCursor = max(meta.pullCursor, cursor) }

    public func saveChannelView(_ view: [UInt8]) { meta.channelView = view }

    public func saveConfirmedEpoch(_ epoch: UInt64) { meta.confirmedEpoch = epoch }

    public func bootMarker() -> String? { boot }

    public func saveBootMarker(_ marker: String) { boot = marker }

    public func replaceIdentity(with replica: ReplicaID) {
        meta.formerIdentities = Array((meta.formerIdentities + [meta.replicaID]).suffix(64))
        meta.replicaID = replica
        meta.confirmedEpoch = 0
        meta.acknowledgedThrough = 0
    }

    public func record(for key: DocumentKey) -> DocumentRecord? { documents[key] }

    public func records(for keys: [DocumentKey]) -> [DocumentKey: DocumentRecord] {
        var result = [DocumentKey: DocumentRecord](minimumCapacity: keys.count)
        for key in keys { if let record = documents[key] { result[key] = record } }
        return result
    }

    public func records(in collection: CollectionName, where filter: DocumentFilter, limit: Int?)
        -> [(id: DocumentID, record: DocumentRecord)]
    {
        let matching = documents.filter {
            $0.key.collection == collection && filter.matches($0.key.id, $0.value)
        }
        .sorted { $0.key.id < $1.key.id }
        .map { (id: $0.key.id, record: $0.value) }
        return limit.map { Array(matching.prefix(max(0, $0))) } ?? matching
    }

    public func entries() -> [QueueEntry] { pending(after: 0) }

    /// The entries after `sequence`, oldest first, each with its document's current record.
    private func pending(after sequence: UInt64) -> [QueueEntry] {
        queue.keys.filter { $0 > sequence }.sorted().compactMap { seq in
            guard let entry = queue[seq], let record = documents[entry.key] else { return nil }
            return QueueEntry(sequence: seq, key: entry.key, record: record, byteCount: entry.bytes)
        }
    }

    public func totalBytes() -> Int { bytes }

    public func count() -> Int { queue.count }

    public func nextBatch(maxBytes: Int, maxEntries: Int) -> [QueueEntry] {
        var batch = [QueueEntry]()
        var size = 0
        for entry in pending(after: inFlightThrough) {
            if batch.count >= max(1, maxEntries) || (!batch.isEmpty && size + entry.byteCount > maxBytes) {
                break
            }
            batch.append(entry)
            size += entry.byteCount
        }
        if let last = batch.last { inFlightThrough = last.sequence }
        return batch
    }

    public func acknowledge(through sequence: UInt64) {
        meta.acknowledgedThrough = max(meta.acknowledgedThrough, sequence)
        for seq in queue.keys where seq <= sequence {
            guard let entry = queue.removeValue(forKey: seq) else { continue }
            unconfirmed.remove(entry.key)
            bytes -= entry.bytes
            if latest[entry.key] == seq { latest[entry.key] = nil }
        }
    }

    public func releaseInFlight() { inFlightThrough = 0 }

    public func moveToDeadLetter(sequence: UInt64, reason: String) throws(WeftError) {
        guard let entry = queue[sequence], let record = documents[entry.key] else {
            throw .invalidArgument("no queue entry has sequence \(sequence)")
        }
        queue[sequence] = nil
        bytes -= entry.bytes
        if latest[entry.key] == sequence { latest[entry.key] = nil }
        deadLetterLog.append(DeadLetter(sequence: sequence, key: entry.key, record: record, reason: reason))
    }

    public func deadLetters(limit: Int) -> [DeadLetter] {
        Array(deadLetterLog.reversed().prefix(max(0, limit)))
    }

    public func commitLocalWrites(
        reading keys: [DocumentKey], maxQueueBytes: Int,
        _ transform: @Sendable (inout [DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) throws(WeftError) -> [UInt64] {
        var current = [DocumentKey: DocumentRecord]()
        for key in keys { if let record = documents[key] { current[key] = record } }
        // Kept whole: the patches are for storages that store large documents in parts.
        let writes = try transform(&current)
        // Apply to copies, then swap them in: a refused write leaves everything as it was.
        var queue = self.queue
        var latest = self.latest
        var documents = self.documents
        var bytes = self.bytes
        var nextSequence = self.nextSequence
        var sequences = [UInt64]()
        var created = Set<DocumentKey>()
        for write in writes {
            let key = write.key
            if documents[key] == nil { created.insert(key) }
            let size = QueueEntry.byteCount(key: key, recordBytes: write.record.encoded().count)
            if let seq = latest[key], seq > inFlightThrough, let old = queue[seq] {
                // Coalesce: the pending entry now stands for the new record.
                let growth = size - old.bytes
                guard bytes + growth <= maxQueueBytes else {
                    throw .queueFull(
                        current: self.bytes, needed: bytes + growth - self.bytes, limit: maxQueueBytes)
                }
                queue[seq] = (key, size)
                bytes += growth
                sequences.append(seq)
            } else {
                guard bytes + size <= maxQueueBytes else {
                    throw .queueFull(
                        current: self.bytes, needed: bytes + size - self.bytes, limit: maxQueueBytes)
                }
                queue[nextSequence] = (key, size)
                latest[key] = nextSequence
                sequences.append(nextSequence)
                nextSequence += 1
                bytes += size
            }
            documents[key] = write.record
        }
        self.queue = queue
        self.latest = latest
        self.documents = documents
        self.bytes = bytes
        self.nextSequence = nextSequence
        unconfirmed.formUnion(created)
        if let stamp = writes.map(\.record.lastStamp).max() {
            meta.lastStamp = max(meta.lastStamp ?? stamp, stamp)
        }
        return sequences
    }

    public func applyRemoteChanges(
        _ changes: [(key: DocumentKey, record: DocumentRecord)], through cursor: UInt64, tag: UInt64,
        _ merge:
            @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
                record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
            )
    ) throws(WeftError) -> [AppliedRemoteChange] {
        var documents = self.documents
        var log = [ConflictRecord]()
        var applied = [AppliedRemoteChange]()
        var bases = self.bases
        for change in changes {
            let result = try merge(documents[change.key], change.key, change.record)
            documents[change.key] = result.record
            if let conflict = result.conflict { log.append(conflict) }
            applied.append(AppliedRemoteChange(key: change.key, record: result.record, kind: result.kind))
            let encoded = change.record.encoded()
            bases[change.key] =
                encoded.count >= ServerBase.minimumRecordBytes
                ? (DocumentRecord.digest(ofEncoding: encoded), change.record) : nil
        }
        self.documents = documents
        self.bases = bases
        for change in changes { unconfirmed.remove(change.key) }
        conflictLog.append(contentsOf: log)
        if cursor > meta.pullCursor {
            meta.pullCursor = cursor
            meta.pullCursorTag = tag
        }
        // Resolutions of siblings are queued like local writes (never refused at the cap).
        for change in applied where change.kind == .resolved { enqueue(change.key, change.record) }
        return applied
    }

    /// Queues `record` of `key` like a local write, never refused at the cap.
    private func enqueue(_ key: DocumentKey, _ record: DocumentRecord) {
        let size = QueueEntry.byteCount(key: key, recordBytes: record.encoded().count)
        if let seq = latest[key], seq > inFlightThrough, let old = queue[seq] {
            queue[seq] = (key, size)
            bytes += size - old.bytes
        } else {
            queue[nextSequence] = (key, size)
            latest[key] = nextSequence
            nextSequence += 1
            bytes += size
        }
    }

    public func beginResync() {
        if !meta.resyncPending { meta.resyncFrom = meta.pullCursor }
        meta.pullCursor = 0
        meta.pullCursorTag = 0
        meta.resyncPending = true
    }

    public func endResync(pushingBack keys: [DocumentKey]) {
        for key in keys { if let record = documents[key] { enqueue(key, record) } }
        meta.resyncPending = false
        meta.resyncFrom = 0
    }

    public func forgetDocuments(
        _ keys: [DocumentKey], deadLetterReason reason: String, countingFor replica: ReplicaID
    ) {
        let forgotten = Set(keys)
        for (sequence, entry) in queue.sorted(by: { $0.key < $1.key }) where forgotten.contains(entry.key) {
            if let record = documents[entry.key] {
                deadLetterLog.append(
                    DeadLetter(sequence: sequence, key: entry.key, record: record, reason: reason))
            }
            queue[sequence] = nil
            bytes -= entry.bytes
            if latest[entry.key] == sequence { latest[entry.key] = nil }
        }
        for key in forgotten {
            if let record = documents[key] {
                floors[key.collection] = max(floors[key.collection] ?? 0, record.highestCounter(of: replica))
            }
            documents[key] = nil
            bases[key] = nil
            unconfirmed.remove(key)
        }
    }

    public func unconfirmedDocuments(among keys: [DocumentKey]) -> Set<DocumentKey> {
        unconfirmed.intersection(keys)
    }

    public func documentKeys() -> [DocumentKey] { Array(documents.keys) }

    public func serverBaseDigests(for keys: [DocumentKey]) -> [DocumentKey: UInt64] {
        var result = [DocumentKey: UInt64]()
        for key in keys { if let base = bases[key] { result[key] = base.digest } }
        return result
    }

    public func serverBases(for keys: [DocumentKey]) -> [DocumentKey: (
        digest: UInt64, record: DocumentRecord
    )] {
        var result = [DocumentKey: (digest: UInt64, record: DocumentRecord)]()
        for key in keys { if let base = bases[key] { result[key] = base } }
        return result
    }

    public func forgetServerBases(_ keys: [DocumentKey]) { for key in keys { bases[key] = nil } }

    public func collectTombstones(
        deletedBefore cutoff: UInt64, countingFor replica: ReplicaID, after: DocumentKey?, limit: Int
    )
        -> (collected: [DocumentKey], lastLooked: DocumentKey?)
    {
        guard !meta.resyncPending, limit > 0 else { return ([], nil) }
        let keys = documents.keys.filter { key in after.map { $0 < key } ?? true }.sorted().prefix(limit)
        guard let last = keys.last else { return ([], nil) }
        let queued = Set(queue.values.map(\.key))
        var collected = [DocumentKey]()
        for key in keys {
            guard let record = documents[key], record.isDeleted, record.body.count == 0,
                record.lastStamp.wallMilliseconds < cutoff,
                !queued.contains(key)
            else { continue }
            floors[key.collection] = max(floors[key.collection] ?? 0, record.highestCounter(of: replica))
            documents[key] = nil
            bases[key] = nil
            collected.append(key)
        }
        return (collected, last)
    }

    public func counterFloors() -> [CollectionName: UInt64] { floors }

    public func conflicts(limit: Int) -> [ConflictRecord] {
        Array(conflictLog.reversed().prefix(max(0, limit)))
    }
}
