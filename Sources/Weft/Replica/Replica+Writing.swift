import Logging
import Synchronization
@_spi(Editing) import WeftCRDT
import WeftWire

// Local writes: the commit, write-through undo, and the pure function that makes the records.
extension Replica {
    // MARK: Writing

    /// One write waiting to be committed.
    struct Operation: Sendable {
        let key: DocumentKey
        let expectation: Expectation
        let deleting: Bool
        let edit: @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    }

    enum Expectation: Sendable { case mustExist, mustNotExist, any }


    /// Runs `body` with no other write of this replica in progress, so each write reads the
    /// record the previous one committed (the actor alone would interleave at suspension points).
    func exclusively<T>(_ body: () async throws(WeftError) -> T) async throws(WeftError) -> T {
        if writing {
            await withCheckedContinuation { writeWaiters.append($0) }
        } else {
            writing = true
        }
        defer {
            if writeWaiters.isEmpty {
                writing = false
            } else {
                writeWaiters.removeFirst().resume()
            }
        }
        return try await body()
    }

    /// Commits `operations` in one transaction: each reads the record the previous one left,
    /// edits it with its own stamp, and all records and queue entries are stored atomically.
    func commit(_ operations: [Operation]) async throws(WeftError) -> [DocumentRecord] {
        try await commitWrites(operations).writes.map(\.record)
    }

    /// ``commit(_:)``, with the record each write stored, the record before it and the sequence
    /// number of its queue entry.
    func commitReturningSequences(_ operations: [Operation]) async throws(WeftError)
        -> [(record: DocumentRecord, previous: DocumentRecord?, sequence: UInt64)]
    {
        let committed = try await commitWrites(operations, keepingBefore: true)
        // The record before each write: the stored one for a key's first write in the batch,
        // the previous write's for the next ones.
        var previous = committed.before
        var result = [(record: DocumentRecord, previous: DocumentRecord?, sequence: UInt64)]()
        result.reserveCapacity(committed.writes.count)
        for (write, sequence) in zip(committed.writes, committed.sequences) {
            result.append((write.record, previous[write.key], sequence))
            previous[write.key] = write.record
        }
        return result
    }

    /// What one commit stored: the writes, the records they read, and their queue sequences.
    struct CommittedWrites: Sendable {
        var writes: [LocalWrite] = []
        var before: [DocumentKey: DocumentRecord] = [:]
        var sequences: [UInt64] = []
    }

    /// The commit itself; callers take from the result what they need. The records before
    /// the writes are kept only if asked for: without them the edits change the records they
    /// read in place instead of copying them.
    func commitWrites(_ operations: [Operation], keepingBefore: Bool = false) async throws(WeftError) -> CommittedWrites {
        guard !operations.isEmpty else { return CommittedWrites() }
        return try await exclusively { () async throws(WeftError) -> CommittedWrites in
            // Stamps come from the actor's clock now; the edits run inside the storage's
            // transaction, on the records it reads there.
            let stamps = operations.map { _ in clock.now() }
            let replicaID = writerID
            let policies = operations.map { policy(for: $0.key.collection) }
            let floors = operations.map { counterFloor(for: $0.key.collection) }
            let resolvers = resolvers
            let box = LockedBox(CommittedWrites())
            let sequences = try await storage.commitLocalWrites(
                reading: operations.map(\.key), maxQueueBytes: configuration.maxQueueBytes
            ) { records throws(WeftError) in
                let before = keepingBefore ? records : [:]
                let computed = try Self.apply(
                    operations, stamps: stamps, replicaID: replicaID, policies: policies, floors: floors, resolvers: resolvers, to: &records)
                box.set(CommittedWrites(writes: computed, before: before))
                return computed
            }
            var committed = box.get()
            committed.sequences = sequences
            // The clock follows the stamps the writes used (a write may have ordered itself
            // after a record stamped ahead of the clock).
            var newest = clock.last
            // By index: a for-in loop would copy (retain and release) every record.
            for index in committed.writes.indices where committed.writes[index].record.lastStamp > newest {
                newest = committed.writes[index].record.lastStamp
            }
            if newest > clock.last { _ = try? clock.receive(newest) }
            if !observers.isEmpty {
                for write in committed.writes {
                    publish(
                        ReplicaChange(
                            key: write.key, origin: .local, isDeleted: write.record.isDeleted, stamp: write.record.lastStamp))
                }
            }
            return committed
        }
    }

    /// Undoes a write-through write the server did not confirm, if the document is still as
    /// that write left it: a compensating write stores the content from before it (or a
    /// tombstone if there was none) as a new version, made of new edits (new dots), so the undo also wins over the write on
    /// a server that applied it late. Returns `false` (changing nothing) if another write has
    /// changed the document since.
    func compensate(_ key: DocumentKey, written: DocumentRecord, previous: DocumentRecord?) async throws(WeftError) -> Bool {
        try await exclusively { () async throws(WeftError) -> Bool in
            let stamp = clock.now()
            let replicaID = writerID
            let floor = counterFloor(for: key.collection)
            let undone = LockedBox(false)
            _ = try await storage.commitLocalWrites(reading: [key], maxQueueBytes: Int.max) { records throws(WeftError) in
                guard records[key] == written else { return [] }
                var written = written
                written.reserveCounters(of: replicaID, through: floor)
                var version = written.version
                version.increment(replicaID)
                let deletion = written.deletion.merged(with: LWWRegister(previous?.isDeleted ?? true, stamp: stamp))
                // The earlier content, written again as new edits: restoring the earlier body
                // itself would restore its causal context too, and the next write would reuse
                // the undone write's dots.
                var body = written.body
                body.assign(matching: previous.map { $0.isDeleted ? Document() : $0.body } ?? Document(), at: stamp)
                undone.set(true)
                return [LocalWrite(key: key, record: DocumentRecord(body: body, deletion: deletion, version: version))]
            }
            if undone.get() {
                publish(ReplicaChange(key: key, origin: .local, isDeleted: previous?.isDeleted ?? true, stamp: stamp))
            }
            return undone.get()
        }
    }

    /// The smallest document, in fields, whose writes carry a patch (``LocalWrite/patch``).
    static let patchMinimumFields = 256

    /// The writes `operations` make on `records`: a pure function, run inside the transaction.
    /// It takes the records it edits out of `records`.
    static func apply(
        _ operations: [Operation], stamps: [HLCTimestamp], replicaID: ReplicaID, policies: [ConflictPolicy] = [],
        floors: [UInt64] = [], resolvers: ResolverRegistry = ResolverRegistry(), to records: inout [DocumentKey: DocumentRecord]
    ) throws(WeftError) -> [LocalWrite] {
        // A key's first write edits the stored record; a later write to the same key in this
        // commit edits the record the one before it left (kept in `latest` by key number).
        var numbering = KeyNumbering(capacity: operations.count)
        let numbers = operations.map { numbering.number(of: $0.key) }
        let repeats = numbering.count < operations.count
        var latest = [Int: DocumentRecord]()
        var seen = 0
        var writes = [LocalWrite]()
        writes.reserveCapacity(operations.count)
        for (position, (operation, (clockStamp, number))) in zip(operations, zip(stamps, numbers)).enumerated() {
            let policy = position < policies.count ? policies[position] : .crdt
            var fieldRules = [String: FieldRule]()
            if case .fields(let rules) = policy { fieldRules = rules }
            let key = operation.key
            var current: DocumentRecord?
            if number == seen {
                // Taken out, so the edit below holds the record's only copy and changes it in
                // place (the storage keeps none either).
                current = records.removeValue(forKey: key)
                seen += 1
            } else {
                current = latest[number]
            }
            // A write whose record is the stored one edited gets a patch over it, for a storage
            // that keeps large documents as patches: not when siblings are resolved or a floor
            // raised first (the edit then starts from another record), nor for a key written
            // twice in the commit.
            var patchable = !repeats && current.map { $0.body.count >= patchMinimumFields } ?? false
            if let held = current, held.holdsSiblings {
                patchable = false
                // A write on siblings resolves them first: with the collection's resolver when
                // this replica has it, else by their join, which keeps every edit. The write's
                // version then covers every sibling, and the server takes it as a fast-forward.
                current = try held.resolvingSiblings(with: policy.resolver(in: resolvers))
            }
            // A write counts on from the collection's floor (``TombstoneCollecting``): a
            // replica that still holds a record this one forgot must take it as new.
            let floor = position < floors.count ? floors[position] : 0
            if floor > 0, var raised = current, raised.highestCounter(of: replicaID) < floor {
                patchable = false
                raised.reserveCounters(of: replicaID, through: floor)
                current = raised
            }
            // A write orders after the record it edits, even if that record carries a stamp
            // ahead of this replica's clock (received from a faster clock within the drift
            // bound): otherwise the replica's own later write would lose to it.
            var stamp = clockStamp
            if let last = current?.lastStamp, last >= stamp {
                guard let next = last.successor(for: replicaID) else {
                    throw .corrupt("\(key) carries the stamp \(last), at the end of representable time: no write can follow it")
                }
                stamp = next
            }
            let live = current.map { !$0.isDeleted } ?? false
            switch operation.expectation {
            case .mustExist where !live: throw .documentNotFound(key)
            case .mustNotExist where live: throw .documentExists(key)
            default: break
            }
            if operation.deleting || !live { patchable = false }
            var editor: DocumentEditor
            if var held = current {
                // The body moves into the editor; `current` keeps the deletion and the version.
                let body = held.takeBody()
                current = held
                editor = DocumentEditor(document: body, stamp: stamp, rules: fieldRules, trackingEdits: patchable)
            } else {
                // A new document: room for a typical record's fields, so the first writes do not
                // grow the field table step by step.
                var fresh = Document()
                fresh.reserveCapacity(8)
                fresh.reserveDots(of: replicaID, through: floor)
                editor = DocumentEditor(document: fresh, stamp: stamp, rules: fieldRules)
            }
            if operation.deleting || !live {
                // A delete clears the fields (the tombstone keeps only the flag and the version);
                // re-creating a deleted document starts it empty.
                for field in editor.document.keys { editor.removeField(field) }
            }
            if !operation.deleting { try operation.edit(&editor) }
            guard editor.document[DocumentRecord.siblingsField] == nil else {
                throw .invalidArgument("the field name \(DocumentRecord.siblingsField.debugDescription) is reserved for Weft (\(key))")
            }
            var version = current?.version ?? VersionVector()
            if version[replicaID] < floor { version[replicaID] = floor }
            version.increment(replicaID)
            // The editor's document already is the old body joined with the edits' deltas (each
            // mutator's delta reproduces its result: a law the checkers test), so the record is
            // built from it directly rather than by joining a delta.
            let deletion = LWWRegister(operation.deleting, stamp: stamp)
            let merged = current.map { $0.deletion.merged(with: deletion) } ?? deletion
            // The patch: the touched fields and the dots the edit saw (every change of the body
            // goes through the editor, which notes each field before changing it).
            let patch = editor.base.flatMap { base in
                editor.document.delta(since: base).map { DocumentRecord(body: $0, deletion: merged, version: version) }
            }
            let record = DocumentRecord(body: editor.document, deletion: merged, version: version)
            if repeats { latest[number] = record }
            writes.append(LocalWrite(key: key, record: record, patch: patch))
        }
        return writes
    }

    func write(
        _ key: DocumentKey, expectation: Expectation, deleting: Bool = false,
        _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) async throws(WeftError) -> DocumentRecord {
        let records = try await commit([Operation(key: key, expectation: expectation, deleting: deleting, edit: edit)])
        guard let record = records.first else { throw .storage("the write produced no record") }
        return record
    }

    /// Commits several writes, to any collections, in one transaction: all or none. Given
    /// `readings`, the app's sensor readings, each with an `id` and a `celsius` value:
    ///
    /// ```swift
    /// try await replica.batch { batch in
    ///     for reading in readings {
    ///         try batch.upsert("readings", reading.id) { $0.set("celsius", to: .double(reading.celsius)) }
    ///     }
    /// }
    /// ```
    ///
    /// `build` runs once, at once. The edit closures it collects run inside the commit, **and
    /// may run more than once**: a storage may first run a batch as if none of its documents
    /// were stored (the SQLite storage does, for large batches while recent batches only
    /// created documents) and run it again with the stored documents if that was wrong. Only the
    /// last run is stored. So an edit closure should depend on nothing but the editor it gets,
    /// and an `upsert` closure must cope with an empty document (as it must anyway, to create
    /// one).
    ///
    /// - Throws: an error thrown by `build`, or the first ``WeftError`` of any write
    ///   (``WeftError/Kind/documentExists``, ``WeftError/Kind/queueFull``…); then nothing of the
    ///   batch was written.
    public func batch(_ build: (inout ReplicaBatch) throws -> Void) async throws {
        var batch = ReplicaBatch()
        try build(&batch)
        _ = try await commitWrites(batch.operations)
    }
}
