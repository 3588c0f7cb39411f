import WeftCRDT

/// Replica storage in memory: for tests, previews and throwaway replicas.
///
/// It follows the contracts of ``DocumentStore``, ``ChangeQueue`` and ``ReplicaStorage``,
/// except that nothing survives the process.
public actor MemoryReplicaStorage: ReplicaStorage {
    private var meta: ReplicaMetadata
    private var documents: [DocumentKey: DocumentRecord] = [:]
    private var queue: [QueueEntry] = []  // sequence order
    private var pendingIndex: [DocumentKey: Int] = [:]  // key → index in `queue` of its not-in-flight entry
    private var nextSequence: UInt64 = 1
    private var inFlightThrough: UInt64 = 0
    private var bytes = 0
    private var conflictLog: [ConflictRecord] = []

    /// Creates empty storage for a new replica.
    public init(replicaID: ReplicaID = .random()) {
        meta = ReplicaMetadata(replicaID: replicaID)
    }

    public func metadata() -> ReplicaMetadata { meta }

    public func saveLastStamp(_ stamp: HLCTimestamp) { meta.lastStamp = stamp }

    public func setPullCursor(_ cursor: UInt64) { meta.pullCursor = max(meta.pullCursor, cursor) }

    public func record(for key: DocumentKey) -> DocumentRecord? { documents[key] }

    public func records(for keys: [DocumentKey]) -> [DocumentKey: DocumentRecord] {
        var result = [DocumentKey: DocumentRecord](minimumCapacity: keys.count)
        for key in keys { if let record = documents[key] { result[key] = record } }
        return result
    }

    public func records(in collection: CollectionName, where filter: DocumentFilter, limit: Int?)
        -> [(id: DocumentID, record: DocumentRecord)]
    {
        let matching = documents.filter { $0.key.collection == collection && filter.matches($0.key.id, $0.value) }
            .sorted { $0.key.id < $1.key.id }
            .map { (id: $0.key.id, record: $0.value) }
        return limit.map { Array(matching.prefix(max(0, $0))) } ?? matching
    }

    public func entries() -> [QueueEntry] { queue }

    public func totalBytes() -> Int { bytes }

    public func nextBatch(maxBytes: Int, maxEntries: Int) -> [QueueEntry] {
        var batch = [QueueEntry]()
        var size = 0
        for entry in queue where entry.sequence > inFlightThrough {
            if batch.count >= max(1, maxEntries) || (!batch.isEmpty && size + entry.byteCount > maxBytes) { break }
            batch.append(entry)
            size += entry.byteCount
        }
        if let last = batch.last {
            inFlightThrough = last.sequence
            for entry in batch where pendingIndex[entry.key] != nil {
                pendingIndex[entry.key] = nil
            }
        }
        return batch
    }

    public func acknowledge(through sequence: UInt64) {
        let removed = queue.prefix { $0.sequence <= sequence }
        guard !removed.isEmpty else { return }
        bytes -= removed.reduce(0) { $0 + $1.byteCount }
        queue.removeFirst(removed.count)
        rebuildPendingIndex()
    }

    public func releaseInFlight() {
        inFlightThrough = 0
        rebuildPendingIndex()
    }

    private func rebuildPendingIndex() {
        pendingIndex = [:]
        for (index, entry) in queue.enumerated() where entry.sequence > inFlightThrough {
            pendingIndex[entry.key] = index
        }
    }

    public func commitLocalWrites(
        reading keys: [DocumentKey], maxQueueBytes: Int,
        _ transform: @Sendable ([DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) throws(WeftError) -> [UInt64] {
        var current = [DocumentKey: DocumentRecord]()
        for key in keys { if let record = documents[key] { current[key] = record } }
        let writes = try transform(current)
        // Apply to copies, then swap them in: a refused write leaves everything as it was.
        var queue = self.queue
        var pendingIndex = self.pendingIndex
        var documents = self.documents
        var bytes = self.bytes
        var nextSequence = self.nextSequence
        var sequences = [UInt64]()
        for write in writes {
            let key = write.key
            if let index = pendingIndex[key] {
                let old = queue[index]
                let joined = old.delta.merged(with: write.delta)
                let size = QueueEntry.byteCount(key: key, deltaBytes: joined.encoded().count)
                let growth = size - old.byteCount
                guard bytes + growth <= maxQueueBytes else {
                    throw .queueFull(current: self.bytes, needed: bytes + growth - self.bytes, limit: maxQueueBytes)
                }
                queue[index] = QueueEntry(sequence: old.sequence, key: key, delta: joined, byteCount: size)
                bytes += growth
                sequences.append(old.sequence)
            } else {
                let size = QueueEntry.byteCount(key: key, deltaBytes: write.delta.encoded().count)
                guard bytes + size <= maxQueueBytes else {
                    throw .queueFull(current: self.bytes, needed: bytes + size - self.bytes, limit: maxQueueBytes)
                }
                queue.append(QueueEntry(sequence: nextSequence, key: key, delta: write.delta, byteCount: size))
                pendingIndex[key] = queue.count - 1
                sequences.append(nextSequence)
                nextSequence += 1
                bytes += size
            }
            documents[key] = write.record
        }
        self.queue = queue
        self.pendingIndex = pendingIndex
        self.documents = documents
        self.bytes = bytes
        self.nextSequence = nextSequence
        if let stamp = writes.map(\.delta.lastStamp).max() { meta.lastStamp = max(meta.lastStamp ?? stamp, stamp) }
        return sequences
    }

    public func applyRemoteChanges(
        _ changes: [(key: DocumentKey, record: DocumentRecord)], through cursor: UInt64,
        _ merge: @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) throws(WeftError) -> [AppliedRemoteChange] {
        var documents = self.documents
        var log = [ConflictRecord]()
        var applied = [AppliedRemoteChange]()
        for change in changes {
            let result = try merge(documents[change.key], change.key, change.record)
            documents[change.key] = result.record
            if let conflict = result.conflict { log.append(conflict) }
            applied.append(AppliedRemoteChange(key: change.key, record: result.record, kind: result.kind))
        }
        self.documents = documents
        conflictLog.append(contentsOf: log)
        meta.pullCursor = max(meta.pullCursor, cursor)
        return applied
    }

    public func conflicts(limit: Int) -> [ConflictRecord] { Array(conflictLog.reversed().prefix(max(0, limit))) }
}
