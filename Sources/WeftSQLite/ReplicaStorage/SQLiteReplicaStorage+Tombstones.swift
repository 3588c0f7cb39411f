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
            let raise = try db.cachedStatement(
                sql: """
                    INSERT INTO counter_floors (collection, counter) VALUES (?, ?)
                    ON CONFLICT (collection) DO UPDATE SET counter = max(counter, excluded.counter)
                    """)
            for (collection, floor) in floors where floor > 0 {
                try raise.execute(arguments: [collection.rawValue, Int64(clamping: floor)])
            }
            return (collected, last)
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
