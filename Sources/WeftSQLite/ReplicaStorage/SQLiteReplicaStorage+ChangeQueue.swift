import Foundation
import GRDB
import Synchronization
import Weft
import WeftCRDT

// The ChangeQueue role: the offline queue kept in the documents table, batches, acknowledgements
// and dead letters.
extension SQLiteReplicaStorage {
    // MARK: ChangeQueue

    /// A document's newest entry, oldest first, after `after`: the row of the document itself.
    static let queuedDocumentsSQL = """
        SELECT queued_seq AS seq, collection, id, queued_bytes AS bytes, record FROM documents
        WHERE queued_seq > ? ORDER BY queued_seq LIMIT ?
        """
    /// Entries whose document was written again while they were in flight, oldest first.
    static let supersededSQL = """
        SELECT s.seq, s.collection, s.id, s.bytes, d.record FROM superseded s
        LEFT JOIN documents d ON d.collection = s.collection AND d.id = s.id
        WHERE s.seq > ? ORDER BY s.seq LIMIT ?
        """

    /// The oldest `limit` entries after sequence `after`, in sequence order: the two ordered
    /// sources (each read through its index, stopping at `limit`) merged.
    func queueEntries(_ db: Database, after: UInt64, limit: Int) throws -> [QueueEntry] {
        let bound = Int64(clamping: after)
        let documents = try entries(db, RawStatement(db.cachedStatement(sql: Self.queuedDocumentsSQL), in: db), after: bound, limit: limit)
        let superseded = try entries(db, RawStatement(db.cachedStatement(sql: Self.supersededSQL), in: db), after: bound, limit: limit)
        if superseded.isEmpty { return documents }
        var merged = [QueueEntry]()
        merged.reserveCapacity(min(limit, documents.count + superseded.count))
        var i = 0
        var j = 0
        while merged.count < limit && (i < documents.count || j < superseded.count) {
            if j == superseded.count || (i < documents.count && documents[i].sequence < superseded[j].sequence) {
                merged.append(documents[i])
                i += 1
            } else {
                merged.append(superseded[j])
                j += 1
            }
        }
        return merged
    }

    public func entries() async throws(WeftError) -> [QueueEntry] {
        try await read { db in try self.queueEntries(db, after: 0, limit: Int(Int32.max)) }
    }

    /// The entries a queue query (`seq, collection, id, bytes, record` after `?1`, at most `?2`)
    /// returns; a value of the wrong type or out of range is ``Weft/WeftError/Kind/corrupt``.
    func entries(_ db: Database, _ statement: RawStatement, after bound: Int64, limit: Int) throws -> [QueueEntry] {
        // The rows first, then their records: a stub's parts are read with another statement.
        let rows = try statement.run { row in
            try row.bind(bound)
            try row.bind(Int64(limit))
            var entries = [(sequence: Int64, key: DocumentKey, bytes: Int64, stored: [UInt8])]()
            while try row.step() {
                let sequence = try row.integer(0, "a queue sequence")
                let key: DocumentKey
                do {
                    key = DocumentKey(
                        collection: try CollectionName(try row.text(1, "a queued collection name")),
                        id: try DocumentID(try row.text(2, "a queued document id")))
                } catch let error as WeftError where error.kind == .corrupt {
                    throw error
                } catch {
                    throw WeftError.corrupt("a stored key is invalid: \(error)")
                }
                let bytes = try row.integer(3, "the byte count of queue entry \(sequence)")
                guard sequence > 0 else { throw WeftError.corrupt("queue sequence \(sequence) of \(key) is not positive") }
                guard bytes >= 0 else { throw WeftError.corrupt("the queue entry \(sequence) of \(key) counts \(bytes) bytes") }
                entries.append((sequence, key, bytes, try row.blob(4, "the record of \(key)")))
            }
            return entries
        }
        return try rows.map { row in
            QueueEntry(
                sequence: UInt64(row.sequence), key: row.key, record: try storedRecord(db, row.key, bytes: row.stored),
                byteCount: Int(row.bytes))
        }
    }

    public func count() async throws(WeftError) -> Int {
        try await read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT (SELECT count(*) FROM documents WHERE queued_seq IS NOT NULL) + (SELECT count(*) FROM superseded)"
            ) ?? 0
        }
    }

    public func totalBytes() async throws(WeftError) -> Int {
        // Summed in a read, not taken from the writer's counters: a read needs no lock, so
        // `weft status` works while an app holds the database.
        do {
            return try readBlocking { db in try Self.sumQueue(db).bytes }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func nextBatch(maxBytes: Int, maxEntries: Int) async throws(WeftError) -> [QueueEntry] {
        do {
            // In a write, so it is ordered with local writes: one that starts after this sees the
            // entries in flight and does not coalesce into them.
            return try writeBlocking { db in
                let after = self.inFlightThrough.withLock { $0 }
                var batch = [QueueEntry]()
                var size = 0
                for entry in try self.queueEntries(db, after: after, limit: max(1, maxEntries)) {
                    if !batch.isEmpty && size + entry.byteCount > maxBytes { break }
                    batch.append(entry)
                    size += entry.byteCount
                }
                if let last = batch.last { self.inFlightThrough.withLock { $0 = last.sequence } }
                return batch
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func acknowledge(through sequence: UInt64) async throws(WeftError) {
        let bound = Int64(clamping: sequence)
        do {
            try transaction { db, counters in
                let removed =
                    (try Int.fetchOne(
                        db.cachedStatement(
                            sql: "SELECT COALESCE(sum(queued_bytes), 0) FROM documents WHERE queued_seq <= ?"),
                        arguments: [bound]) ?? 0)
                    + (try Int.fetchOne(
                        db.cachedStatement(sql: "SELECT COALESCE(sum(bytes), 0) FROM superseded WHERE seq <= ?"),
                        arguments: [bound]) ?? 0)
                try db.cachedStatement(sql: "UPDATE documents SET queued_seq = NULL, queued_bytes = 0, unconfirmed = 0 WHERE queued_seq <= ?")
                    .execute(arguments: [bound])
                // A document written again while its push was on the wire: the push confirmed it.
                // (Driven from `superseded`, usually empty, through the primary key: never a scan.)
                try db.cachedStatement(
                    sql: """
                        UPDATE documents SET unconfirmed = 0
                        WHERE (collection, id) IN (SELECT collection, id FROM superseded WHERE seq <= ?) AND unconfirmed = 1
                        """
                ).execute(arguments: [bound])
                try db.cachedStatement(sql: "DELETE FROM superseded WHERE seq <= ?").execute(arguments: [bound])
                guard counters.bytes >= removed else {
                    throw WeftError.corrupt("the queue counts \(counters.bytes) bytes, less than the entries acknowledged (\(removed))")
                }
                counters.bytes -= removed
                // Acknowledged numbers are never handed out again, even once no entry holds them.
                try Self.saveSequenceFloor(db, counters.next)
                try db.cachedStatement(
                    sql: "INSERT INTO meta (key, value) VALUES ('acknowledged_through', ?) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)"
                ).execute(arguments: [bound])
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func moveToDeadLetter(sequence: UInt64, reason: String) async throws(WeftError) {
        guard let bound = Int64(exactly: sequence) else { throw .invalidArgument("sequence \(sequence) is out of range") }
        do {
            try transaction { db, counters in
                let found: Row
                if let row = try Row.fetchOne(
                    db, sql: "SELECT collection, id, record, queued_bytes AS bytes FROM documents WHERE queued_seq = ?", arguments: [bound])
                {
                    found = row
                    try db.execute(
                        sql: "UPDATE documents SET queued_seq = NULL, queued_bytes = 0 WHERE queued_seq = ?", arguments: [bound])
                } else if let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT s.collection, s.id, d.record, s.bytes FROM superseded s
                        LEFT JOIN documents d ON d.collection = s.collection AND d.id = s.id WHERE s.seq = ?
                        """, arguments: [bound])
                {
                    found = row
                    try db.execute(sql: "DELETE FROM superseded WHERE seq = ?", arguments: [bound])
                } else {
                    throw WeftError.invalidArgument("no queue entry has sequence \(sequence)")
                }
                let bytes = try Self.column(found, "bytes", Int.self)
                let key = try Self.key(found)
                // The dead letter keeps the whole record: the document's parts go with its row.
                let record = try storedEncoding(db, key, bytes: [UInt8](try Self.column(found, "record", Data.self)))
                try db.execute(
                    sql: "INSERT INTO dead_letters (seq, collection, id, record, reason) VALUES (?, ?, ?, ?, ?)",
                    arguments: [bound, key.collection.rawValue, key.id.rawValue, Data(record), reason])
                counters.bytes = max(0, counters.bytes - bytes)
                try Self.saveSequenceFloor(db, counters.next)
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func deadLetters(limit: Int) async throws(WeftError) -> [DeadLetter] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, collection, id, record, reason FROM dead_letters ORDER BY number DESC LIMIT ?",
                arguments: [max(0, limit)]
            ).map { row in
                let key = try Self.key(row)
                let sequence = try Self.column(row, "seq", Int64.self)
                guard sequence > 0 else { throw WeftError.corrupt("dead letter sequence \(sequence) is not positive") }
                return DeadLetter(
                    sequence: UInt64(sequence), key: key,
                    record: try Self.decodeRecord(try Self.column(row, "record", Data.self), "the dead letter of \(key)"),
                    reason: try Self.column(row, "reason", String.self))
            }
        }
    }

    public func releaseInFlight() async throws(WeftError) {
        do {
            // In a write, so it is ordered with local writes.
            try await write { _ in self.inFlightThrough.withLock { $0 = 0 } }
        } catch {
            // Even if the database cannot be written now, nothing may stay marked in flight:
            // those entries would be skipped, and writes would not join them, until a restart.
            inFlightThrough.withLock { $0 = 0 }
            throw error
        }
    }
}
