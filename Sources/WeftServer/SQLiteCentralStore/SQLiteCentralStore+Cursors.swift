import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite

// The cursors remembered per replica (contract, rule 8), and compaction.
extension SQLiteCentralStore {
    public func rememberPull(
        database: String, replica: ReplicaID, after: UInt64, afterTag: UInt64, served: UInt64,
        servedTag: UInt64
    )
        async throws(WeftError)
    {
        guard let from = Int64(exactly: after), let to = Int64(exactly: served) else {
            throw .invalidArgument("cursor \(max(after, served)) is out of range")
        }
        do {
            try writeBlocking { db in
                let replicaBytes = Data(replica.bytes)
                try db.execute(
                    sql: "DELETE FROM pull_cursors WHERE tenant = ? AND replica = ? AND sequence < ?",
                    arguments: [database, replicaBytes, from])
                let upsert =
                    "INSERT OR REPLACE INTO pull_cursors (tenant, replica, sequence, tag) VALUES (?, ?, ?, ?)"
                if from > 0 {
                    try db.execute(
                        sql: upsert, arguments: [database, replicaBytes, from, Int64(bitPattern: afterTag)])
                }
                if to > from {
                    try db.execute(
                        sql: upsert, arguments: [database, replicaBytes, to, Int64(bitPattern: servedTag)])
                }
                // The pull's own cursor and the last four pages' ends served after it.
                try db.execute(
                    sql: """
                        DELETE FROM pull_cursors WHERE tenant = ? AND replica = ? AND sequence > ? AND sequence NOT IN (
                            SELECT sequence FROM pull_cursors WHERE tenant = ? AND replica = ? AND sequence > ? ORDER BY sequence DESC LIMIT 4)
                        """, arguments: [database, replicaBytes, from, database, replicaBytes, from])
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func servedCursor(database: String, sequence: UInt64, tag: UInt64) async throws(WeftError) -> Bool
    {
        guard let position = Int64(exactly: sequence) else { return false }
        do {
            return try readBlocking { db in
                try Bool.fetchOne(
                    db,
                    sql:
                        "SELECT EXISTS (SELECT 1 FROM pull_cursors WHERE tenant = ? AND sequence = ? AND tag = ?)",
                    arguments: [database, position, Int64(bitPattern: tag)]) ?? false
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    /// Nothing to do: this store compacts as it logs, and its migration to the compacted log
    /// kept each document's latest entry only.
    public func compactLog(limit: Int) async throws(WeftError) -> (removed: Int, passFinished: Bool) {
        (0, true)
    }
}
