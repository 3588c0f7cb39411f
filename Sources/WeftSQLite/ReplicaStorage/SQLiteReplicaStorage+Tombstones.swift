import Foundation
import GRDB
import Weft
import WeftCRDT

// Tombstone collection and counter floors (ReplicaStorage contract point 9, `TombstoneCollecting`):
// old tombstones with nothing queued leave `documents` (and `server_bases`), and their
// collections' floors in `counter_floors` rise in the same transaction.
extension SQLiteReplicaStorage {
    public func collectTombstones(
        deletedBefore cutoff: UInt64, countingFor replica: ReplicaID, after: DocumentKey?, limit: Int
    )
        async throws(WeftError) -> (collected: [DocumentKey], lastLooked: DocumentKey?)
    {
        guard limit > 0 else { return ([], nil) }
        return try await write { db in
            guard try Int64.fetchOne(db, sql: "SELECT count(*) FROM meta WHERE key = 'resync_pending'") == 0
            else { return ([], nil) }
            // The record is read only for tombstones nothing waits on: a queue entry (waiting or
            // in flight) or an older entry still in flight (`superseded`) keeps the document.
            let columns = """
                SELECT d.collection, d.id,
                    CASE WHEN d.deleted = 1 AND d.queued_seq IS NULL
                        AND NOT EXISTS (SELECT 1 FROM superseded s WHERE s.collection = d.collection AND s.id = d.id)
                    THEN d.record END AS tombstone
                FROM documents d
                """
            let rows: [Row]
            if let after {
                rows = try Row.fetchAll(
                    db,
                    sql: columns + " WHERE (d.collection, d.id) > (?, ?) ORDER BY d.collection, d.id LIMIT ?",
                    arguments: [after.collection.rawValue, after.id.rawValue, limit])
            } else {
                rows = try Row.fetchAll(
                    db, sql: columns + " ORDER BY d.collection, d.id LIMIT ?", arguments: [limit])
            }
            var collected = [DocumentKey]()
            var floors = [CollectionName: UInt64]()
            var last: DocumentKey?
            for row in rows {
                let key = try Self.key(row)
                last = key
                guard let bytes = try Self.column(row, "tombstone", Data?.self) else { continue }
                let record = try Self.decodeRecord(bytes, "\(key)")
                guard record.isDeleted, record.body.count == 0, record.lastStamp.wallMilliseconds < cutoff
                else { continue }
                floors[key.collection] = max(floors[key.collection] ?? 0, record.highestCounter(of: replica))
                collected.append(key)
            }
            let deleteDocument = try db.cachedStatement(
                sql: "DELETE FROM documents WHERE collection = ? AND id = ?")
            let deleteBase = try db.cachedStatement(
                sql: "DELETE FROM server_bases WHERE collection = ? AND id = ?")
            for key in collected {
                try deleteDocument.execute(arguments: [key.collection.rawValue, key.id.rawValue])
                try deleteBase.execute(arguments: [key.collection.rawValue, key.id.rawValue])
            }
            try Self.raiseFloors(db, floors)
            return (collected, last)
        }
    }

    public func forgetDocuments(
        _ keys: [DocumentKey], deadLetterReason reason: String, countingFor replica: ReplicaID
    )
        async throws(WeftError)
    {
        guard !keys.isEmpty else { return }
        do {
            try transaction { db, counters in
                let readRow = try db.cachedStatement(
                    sql:
                        "SELECT record, queued_seq, queued_bytes FROM documents WHERE collection = ? AND id = ?"
                )
                let readSuperseded = try db.cachedStatement(
                    sql: "SELECT seq, bytes FROM superseded WHERE collection = ? AND id = ?")
                let deadLetter = try db.cachedStatement(
                    sql:
                        "INSERT INTO dead_letters (seq, collection, id, record, reason) VALUES (?, ?, ?, ?, ?)"
                )
                var floors = [CollectionName: UInt64]()
                for key in Set(keys) {
                    let arguments: StatementArguments = [key.collection.rawValue, key.id.rawValue]
                    guard let row = try Row.fetchOne(readRow, arguments: arguments) else { continue }
                    let stored = [UInt8](try Self.column(row, "record", Data.self))
                    let record = try self.storedRecord(db, key, bytes: stored)
                    // The dead letters keep the whole record: a stub's parts go with the row.
                    let data = Data(try PartsStub(parsing: stored, "\(key)") == nil ? stored : record.encoded())
                    floors[key.collection] = max(
                        floors[key.collection] ?? 0, record.highestCounter(of: replica))
                    // Every entry of the document, waiting or in flight, is set aside with its record.
                    var entries = [(seq: Int64, bytes: Int)]()
                    if let seq = try Self.column(row, "queued_seq", Int64?.self) {
                        entries.append((seq, try Self.column(row, "queued_bytes", Int.self)))
                    }
                    for older in try Row.fetchAll(readSuperseded, arguments: arguments) {
                        entries.append(
                            (
                                try Self.column(older, "seq", Int64.self),
                                try Self.column(older, "bytes", Int.self)
                            ))
                    }
                    for entry in entries {
                        try deadLetter.execute(arguments: [
                            entry.seq, key.collection.rawValue, key.id.rawValue, data, reason,
                        ])
                        counters.bytes = max(0, counters.bytes - entry.bytes)
                    }
                    try db.execute(
                        sql: "DELETE FROM superseded WHERE collection = ? AND id = ?", arguments: arguments)
                    try db.execute(
                        sql: "DELETE FROM documents WHERE collection = ? AND id = ?", arguments: arguments)
                    try db.execute(
                        sql: "DELETE FROM server_bases WHERE collection = ? AND id = ?", arguments: arguments)
                }
                try Self.raiseFloors(db, floors)
                try Self.saveSequenceFloor(db, counters.next)
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func unconfirmedDocuments(among keys: [DocumentKey]) async throws(WeftError) -> Set<DocumentKey> {
        guard !keys.isEmpty else { return [] }
        return try await read { db in
            let statement = try db.cachedStatement(
                sql: "SELECT unconfirmed FROM documents WHERE collection = ? AND id = ?")
            var found = Set<DocumentKey>()
            for key in keys
            where try Int64.fetchOne(statement, arguments: [key.collection.rawValue, key.id.rawValue]) == 1 {
                found.insert(key)
            }
            return found
        }
    }

    /// Raises each collection's floor to at least the value given.
    static func raiseFloors(_ db: Database, _ floors: [CollectionName: UInt64]) throws {
        let raise = try db.cachedStatement(
            sql: """
                INSERT INTO counter_floors (collection, counter) VALUES (?, ?)
                ON CONFLICT (collection) DO UPDATE SET counter = max(counter, excluded.counter)
                """)
        for (collection, floor) in floors where floor > 0 {
            try raise.execute(arguments: [collection.rawValue, Int64(clamping: floor)])
        }
    }

    public func counterFloors() async throws(WeftError) -> [CollectionName: UInt64] {
        try await read { db in
            var floors = [CollectionName: UInt64]()
            for row in try Row.fetchAll(db, sql: "SELECT collection, counter FROM counter_floors") {
                let counter = try Self.column(row, "counter", Int64.self)
                guard counter >= 0,
                    let collection = try? CollectionName(try Self.column(row, "collection", String.self))
                else {
                    throw WeftError.corrupt("a counter floor is invalid")
                }
                floors[collection] = UInt64(counter)
            }
            return floors
        }
    }
}
