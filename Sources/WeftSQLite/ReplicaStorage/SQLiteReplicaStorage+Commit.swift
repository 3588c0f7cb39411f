import Foundation
import GRDB
import Synchronization
import Weft
import WeftCRDT

// The ReplicaStorage role: local writes and their queue entries in one transaction, with the
// queue counters kept in memory.
extension SQLiteReplicaStorage {
    // MARK: ReplicaStorage

    public nonisolated(nonsending) func commitLocalWrites(
        reading keys: [DocumentKey], maxQueueBytes: Int,
        _ transform: @Sendable (inout [DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) async throws(WeftError) -> [UInt64] {
        do {
            // A blocking write: one short transaction, no extra hop to GRDB's queue and back.
            var guessNext: Bool?
            let sequences = try transaction { db, counters in
                try self.commit(db, &counters, keys, maxQueueBytes, guessNext: &guessNext, transform)
            }
            // Only a commit that reached the disk decides whether the next one guesses.
            if let guessNext { speculating.withLock { $0 = guessNext } }
            return sequences
        } catch {
            throw Self.map(error, path: path)
        }
    }

    /// GRDB's synchronous read (an async context would pick the async overload).
    func readBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.read(body) }

    /// GRDB's synchronous write (an async context would pick the async overload).
    func writeBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.write(body) }

    /// GRDB's synchronous write outside a transaction (the body opens its own).
    func writeOutsideTransaction<T>(_ body: (Database) throws -> T) throws -> T { try pool.writeWithoutTransaction(body) }

    // MARK: Queue counters

    /// The queue's total bytes, the next sequence number and the clock lease, kept in memory
    /// between write transactions so a write reads and writes no `meta` row (a page per commit).
    ///
    /// They are derived state: loaded (``loadCounters(_:)``) from the queue itself on the first
    /// write transaction, and again whenever `PRAGMA data_version` shows another connection has
    /// committed since (another process, or a second storage on the file). Each write
    /// transaction works on a copy that replaces them only once it has committed, so a write
    /// that fails or is rolled back leaves them as they were.
    struct QueueCounters: Sendable {
        /// The sum of the entries' byte counts.
        var bytes: Int
        /// The next sequence number to hand out.
        var next: Int64
        /// The stored clock lease (meta `last_stamp`): no stamp above it has been committed.
        var lease: HLCTimestamp?
    }

    struct WriterState: Sendable {
        var counters: QueueCounters
        /// The writer connection's `PRAGMA data_version` when `counters` were right.
        var dataVersion: Int64
    }

    /// How far ahead of a committed stamp the stored clock lease is set. A write stores the
    /// lease only when its stamp passes the previous one, so a replica writing all the time
    /// stores it about once a second; a restart within a second of a write resumes the clock at
    /// most this far ahead of the wall clock (a forward step the HLC absorbs).
    static let clockLeaseMilliseconds: UInt64 = 1_000

    /// Runs `body` in one write transaction (`BEGIN IMMEDIATE`) with the queue counters, and
    /// keeps the counters `body` leaves only if the transaction commits.
    func transaction<T>(_ body: (Database, inout QueueCounters) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in
            try Self.inImmediateTransaction(db) { () throws -> (T, WriterState) in
                let version = try Self.dataVersion(db)
                let known = writerState.withLock { state in state.flatMap { $0.dataVersion == version ? $0.counters : nil } }
                if known == nil {
                    // Another connection committed (or this is the first write): it may have
                    // declared other indexes, which this write must keep too.
                    let indexes = try Self.loadIndexes(db)
                    indexState.withLock { $0.collections = indexes }
                }
                var counters = try known ?? Self.loadCounters(db)
                let result = try body(db, &counters)
                return (result, WriterState(counters: counters, dataVersion: version))
            } committed: { state in
                writerState.withLock { $0 = state }
            }
        }
    }

    /// Runs `work` between `BEGIN IMMEDIATE` and `COMMIT`, rolling back if anything throws, and
    /// hands the state it returns to `committed` once the commit succeeded.
    ///
    /// BEGIN and COMMIT run through cached statements: GRDB's `inTransaction` prepares both
    /// from SQL text on every call, a measurable part of a one-document write.
    static func inImmediateTransaction<T>(
        _ db: Database, _ work: () throws -> (T, WriterState), committed: (WriterState) -> Void
    ) throws -> T {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
        let outcome: (T, WriterState)
        do {
            outcome = try work()
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
        } catch {
            // GRDB's rollback copes with a transaction SQLite already rolled back itself.
            if db.isInsideTransaction { try? db.rollback() }
            throw error
        }
        committed(outcome.1)
        return outcome.0
    }

    /// The writer connection's `PRAGMA data_version`: it changes when another connection commits.
    static func dataVersion(_ db: Database) throws -> Int64 {
        let statement = RawStatement(try db.cachedStatement(sql: "PRAGMA data_version"), in: db)
        return try statement.run { row in
            guard try row.step() else { throw WeftError.storage("PRAGMA data_version returned nothing") }
            return try row.integer(0, "data_version")
        }
    }

    /// Derives the queue counters from the stored queue: O(entries). Any entry whose sequence or
    /// byte count is not a positive (non-negative) integer is ``Weft/WeftError/Kind/corrupt``.
    static func loadCounters(_ db: Database) throws -> QueueCounters {
        let (bytes, highest) = try sumQueue(db)
        let floor = try metaInteger(db, "next_sequence")
        guard floor > 0 else { throw WeftError.corrupt("the meta value next_sequence is not positive") }
        var lease: HLCTimestamp?
        if let data = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_stamp'") {
            do {
                lease = try HLCTimestamp(encoded: [UInt8](data))
            } catch {
                throw WeftError.corrupt("the stored clock does not decode: \(error)")
            }
        }
        return QueueCounters(bytes: bytes, next: max(Int64(floor), highest &+ 1), lease: lease)
    }

    /// The queue's total bytes and highest sequence, summed over its entries: O(entries).
    static func sumQueue(_ db: Database) throws -> (bytes: Int, highest: Int64) {
        var bytes = 0
        var highest: Int64 = 0
        for sql in [
            "SELECT queued_seq, queued_bytes FROM documents WHERE queued_seq IS NOT NULL",
            "SELECT seq, bytes FROM superseded",
        ] {
            let statement = RawStatement(try db.makeStatement(sql: sql), in: db)
            try statement.run { row in
                while try row.step() {
                    let sequence = try row.integer(0, "a queue sequence")
                    let count = try row.integer(1, "the byte count of queue entry \(sequence)")
                    guard sequence > 0, count >= 0 else {
                        throw WeftError.corrupt("the queue entry \(sequence) (\(count) bytes) is invalid")
                    }
                    highest = max(highest, sequence)
                    bytes += Int(count)
                }
            }
        }
        return (bytes, highest)
    }

    /// Stores `next` as the lowest sequence number a restarted replica may hand out: after an
    /// acknowledgement or a dead letter no entry may hold the highest number used.
    static func saveSequenceFloor(_ db: Database, _ next: Int64) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_sequence', max(?, COALESCE((SELECT value FROM meta WHERE key = 'next_sequence'), 0)))")
            .execute(arguments: [next])
    }

    /// Stores a clock lease above `newest` if `newest` passes the current one.
    static func extendLease(_ db: Database, _ counters: inout QueueCounters, past newest: HLCTimestamp) throws {
        if let lease = counters.lease, newest <= lease { return }
        let (wall, overflow) = newest.wallMilliseconds.addingReportingOverflow(clockLeaseMilliseconds)
        let lease = overflow ? newest : HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: newest.replica)
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_stamp', ?)")
            .execute(arguments: [Data(lease.encoded())])
        counters.lease = lease
    }

    /// What a transaction knows of a document's row: whether it exists, its newest queue entry,
    /// and how its record is kept (the stub if in parts, else the record's size).
    struct QueueSlot {
        var exists: Bool
        var sequence: Int64?
        var bytes: Int
        var stub: PartsStub? = nil
        var recordBytes = 0
        /// Whether the transform got the stored record (a patch is over it), and no write of
        /// this commit replaced it yet.
        var patchable = false
    }

    /// Runs `body` with the UTF-8 of `key`'s collection and id, for binding without a copy.
    static func withUTF8<R>(
        _ key: DocumentKey, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) throws -> R
    ) throws -> R {
        var collection = key.collection.rawValue
        var id = key.id.rawValue
        return try collection.withUTF8 { c in try id.withUTF8 { i in try body(c, i) } }
    }

    static let readRowSQL = "SELECT record, queued_seq, queued_bytes FROM documents WHERE collection = ? AND id = ?"
    static let insertDocumentSQL =
        "INSERT INTO documents (collection, id, record, deleted, queued_seq, queued_bytes, unconfirmed) VALUES (?, ?, ?, ?, ?, ?, 1)"
    static let updateCoalescedSQL = "UPDATE documents SET record = ?, deleted = ?, queued_bytes = ? WHERE collection = ? AND id = ?"
    static let updateQueuedSQL =
        "UPDATE documents SET record = ?, deleted = ?, queued_seq = ?, queued_bytes = ? WHERE collection = ? AND id = ?"

    /// Commits of at least this many keys may skip reading them (``commit(_:_:_:_:_:)``).
    static let speculationMinimumKeys = 8

    /// A write made on the assumption that its document was not stored found it stored.
    struct SpeculationMissed: Error {}

    /// Reads the records `keys` name, runs `transform` on them, and stores its writes with their
    /// queue entries.
    ///
    /// **Creating without reading.** Reading a key that is not stored costs a lookup that finds
    /// nothing, a large part of a batched create. So while commits keep writing only documents
    /// that are not stored yet, a commit naming ``speculationMinimumKeys`` or more keys (repeats
    /// included) first runs `transform` as if none were stored, inside a savepoint: each write
    /// is a plain `INSERT`, which fails if the row exists, and a key `transform` did not write
    /// is looked up. If any key turns out to be stored, or anything fails, the savepoint is
    /// rolled back and the commit runs again with the keys read. `transform` is a pure function
    /// of the records it gets, so only its last run counts. A storage starts out guessing; a
    /// miss turns guessing off, and a large commit that read its keys, found none stored and
    /// reached the disk turns it back on.
    func commit(
        _ db: Database, _ counters: inout QueueCounters, _ keys: [DocumentKey], _ maxQueueBytes: Int,
        guessNext: inout Bool?, _ transform: (inout [DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) throws -> [UInt64] {
        let large = keys.count >= Self.speculationMinimumKeys
        if large, speculating.withLock({ $0 }) {
            var attempt = counters
            var unread = false
            assumptionCounts.withLock { $0.attempts += 1 }
            try db.cachedStatement(sql: "SAVEPOINT weft_assume_new").execute()
            do {
                let sequences = try commit(db, &attempt, keys, maxQueueBytes, assumingNew: true, anyStored: &unread, transform)
                try db.cachedStatement(sql: "RELEASE weft_assume_new").execute()
                counters = attempt
                return sequences
            } catch {
                assumptionCounts.withLock { $0.misses += 1 }
                speculating.withLock { $0 = false }
                // Some errors (I/O, memory, interrupt) make SQLite roll the whole transaction
                // back, savepoint included: then that error is the one to report.
                guard db.isInsideTransaction else { throw error }
                do {
                    try db.cachedStatement(sql: "ROLLBACK TO weft_assume_new").execute()
                    try db.cachedStatement(sql: "RELEASE weft_assume_new").execute()
                } catch let rollbackError {
                    // A miss is not worth reporting; SQLite's own rollback error would be.
                    throw db.isInsideTransaction || error is SpeculationMissed ? rollbackError : error
                }
            }
        }
        var anyStored = false
        let sequences = try commit(db, &counters, keys, maxQueueBytes, assumingNew: false, anyStored: &anyStored, transform)
        // The next large commit assumes its keys new if this one found none stored (applied by
        // the caller once this commit is on disk).
        if large { guessNext = !anyStored }
        return sequences
    }

    /// The commit itself; `anyStored` tells whether reading found any of `keys` stored.
    func commit(
        _ db: Database, _ counters: inout QueueCounters, _ keys: [DocumentKey], _ maxQueueBytes: Int,
        assumingNew: Bool, anyStored: inout Bool, _ transform: (inout [DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) throws -> [UInt64] {
        var current = [DocumentKey: DocumentRecord](minimumCapacity: keys.count)
        // Each distinct key's row, in order of first appearance (`KeyNumbering`: one hash lookup
        // per key); `first[i]` is the slot of `keys[i]`, so a write to `keys[i]` finds its slot
        // by position.
        var slots = [QueueSlot]()
        slots.reserveCapacity(keys.count)
        var numbering = KeyNumbering(capacity: keys.count)
        var first = [Int]()
        first.reserveCapacity(keys.count)
        let readRow = RawStatement(try db.cachedStatement(sql: Self.readRowSQL), in: db)
        func read(_ key: DocumentKey, decoding: Bool) throws -> QueueSlot {
            let (found, stored) = try Self.withUTF8(key) { collection, id in
                try readRow.run { row -> (QueueSlot, [UInt8]) in
                    try row.bind(borrowingText: collection)
                    try row.bind(borrowingText: id)
                    guard try row.step() else { return (QueueSlot(exists: false, sequence: nil, bytes: 0), []) }
                    let stored = try row.blob(0, "the record of \(key)")
                    let sequence = row.isNull(1) ? nil : try row.integer(1, "the queue sequence of \(key)")
                    let bytes = try row.integer(2, "the queued bytes of \(key)")
                    if let sequence, sequence <= 0 || bytes < 0 {
                        throw WeftError.corrupt("the queue entry \(sequence) of \(key) is invalid")
                    }
                    return (QueueSlot(exists: true, sequence: sequence, bytes: Int(bytes)), stored)
                }
            }
            guard found.exists else { return found }
            var slot = found
            slot.stub = try PartsStub(parsing: stored, "\(key)")
            slot.recordBytes = stored.count
            if decoding {
                // Taken from the memo: the transform edits the only copy, in place.
                current[key] = try self.storedRecord(db, key, bytes: stored, taking: true)
                slot.patchable = true
            }
            return slot
        }
        for key in keys {
            let slot = numbering.number(of: key)
            if slot == slots.count {
                let row = assumingNew ? QueueSlot(exists: false, sequence: nil, bytes: 0) : try read(key, decoding: true)
                anyStored = anyStored || row.exists
                slots.append(row)
            }
            first.append(slot)
        }
        let writes = try transform(&current)
        guard !writes.isEmpty else {
            // Nothing written proves nothing about the keys assumed new: run again, reading them.
            if assumingNew { throw SpeculationMissed() }
            return []
        }
        let start = counters.bytes
        var total = start
        var next = counters.next
        let inFlight = Int64(clamping: inFlightThrough.withLock { $0 })
        let insertDocument = RawStatement(try db.cachedStatement(sql: Self.insertDocumentSQL), in: db)
        let updateCoalesced = RawStatement(try db.cachedStatement(sql: Self.updateCoalescedSQL), in: db)
        let updateQueued = RawStatement(try db.cachedStatement(sql: Self.updateQueuedSQL), in: db)
        let supersede = try db.cachedStatement(sql: "INSERT INTO superseded (seq, collection, id, bytes) VALUES (?, ?, ?, ?)")
        var sequences = [UInt64]()
        sequences.reserveCapacity(writes.count)
        var newest = writes[0].record.lastStamp
        // One buffer for every record of the transaction: SQLite copies what it stores.
        var encoder = BinaryWriter(reservingCapacity: 512)
        for index in writes.indices {
            let key = writes[index].key
            let slot: Int
            if index < keys.count, keys[index] == key {
                slot = first[index]
            } else {
                // A write to a key the transform was not given, or out of step with `keys`.
                slot = numbering.number(of: key)
                if slot == slots.count { slots.append(try read(key, decoding: false)) }
            }
            let old = slots[slot]
            // A large document written with a patch over the stored record keeps the patch
            // beside its image instead of the whole record (until the patches pass a quarter of
            // the image: then it is written whole, which drops the parts).
            var stub: PartsStub?
            if old.patchable, !assumingNew, let patch = writes[index].patch,
                old.stub != nil || old.recordBytes >= Self.partsMinimumBytes
            {
                stub = try appendPatch(db, key, BinaryFormat.encode(patch), over: old.stub, recordBytes: old.recordBytes)
            }
            let encoded: [UInt8]
            let size: Int
            if let stub {
                encoded = stub.encoded
                size = QueueEntry.byteCount(key: key, recordBytes: stub.storedBytes)
                rememberEncoded(key, bytes: encoded, record: writes[index].record, storedBytes: stub.storedBytes)
            } else {
                BinaryFormat.encode(writes[index].record, into: &encoder)
                encoded = encoder.bytes
                // The next write of a large document reads these bytes back: it need not decode them.
                rememberEncoded(key, bytes: encoded, record: writes[index].record)
                size = QueueEntry.byteCount(key: key, recordBytes: encoded.count)
            }
            let deleted = writes[index].record.isDeleted
            let sequence: Int64
            if let pending = old.sequence, pending > inFlight {
                // Coalesce: the pending entry keeps its number and now stands for the new record.
                let growth = size - old.bytes
                guard total + growth <= maxQueueBytes else {
                    throw WeftError.queueFull(current: start, needed: total + growth - start, limit: maxQueueBytes)
                }
                try Self.withUTF8(key) { collection, id in
                    try encoded.withUnsafeBytes { record in
                        try updateCoalesced.run { statement in
                            try statement.bind(borrowing: record)
                            try statement.bind(deleted)
                            try statement.bind(Int64(size))
                            try statement.bind(borrowingText: collection)
                            try statement.bind(borrowingText: id)
                            try statement.execute()
                        }
                    }
                }
                total += growth
                sequence = pending
            } else {
                guard total + size <= maxQueueBytes else {
                    throw WeftError.queueFull(current: start, needed: total + size - start, limit: maxQueueBytes)
                }
                if let inFlightEntry = old.sequence {
                    // The document's entry is in flight: it stays (acknowledging it must not drop
                    // this write), and the write gets a new entry.
                    try supersede.execute(arguments: [inFlightEntry, key.collection.rawValue, key.id.rawValue, old.bytes])
                }
                sequence = next
                next += 1
                try Self.withUTF8(key) { collection, id in
                    try encoded.withUnsafeBytes { record in
                        if old.exists {
                            try updateQueued.run { statement in
                                try statement.bind(borrowing: record)
                                try statement.bind(deleted)
                                try statement.bind(sequence)
                                try statement.bind(Int64(size))
                                try statement.bind(borrowingText: collection)
                                try statement.bind(borrowingText: id)
                                try statement.execute()
                            }
                        } else {
                            // Assuming new, a stored row fails this INSERT (its primary key).
                            try insertDocument.run { statement in
                                try statement.bind(borrowingText: collection)
                                try statement.bind(borrowingText: id)
                                try statement.bind(borrowing: record)
                                try statement.bind(deleted)
                                try statement.bind(sequence)
                                try statement.bind(Int64(size))
                                try statement.execute()
                            }
                        }
                    }
                }
                total += size
            }
            try updateIndexes(db, key, writes[index].record)
            slots[slot] = QueueSlot(exists: true, sequence: sequence, bytes: size, stub: stub, recordBytes: encoded.count)
            sequences.append(UInt64(sequence))
            if writes[index].record.lastStamp > newest { newest = writes[index].record.lastStamp }
        }
        if assumingNew {
            // A key the transform did not write was assumed not stored; check.
            for (key, slot) in zip(keys, first) where !slots[slot].exists {
                if try read(key, decoding: false).exists { throw SpeculationMissed() }
            }
        }
        // A restarted clock resumes above every stored write: the lease covers the newest stamp.
        try Self.extendLease(db, &counters, past: newest)
        counters.bytes = total
        counters.next = next
        return sequences
    }
}
