import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite

// The cursors remembered per replica (contract, rule 8), and compaction.
extension SQLiteCentralStore {
    public func rememberPull(
        database: String, replica: ReplicaID, after: UInt64, afterTag: UInt64, served: UInt64,
        servedTag: UInt64, pulledAt: UInt64
    )
        async throws(WeftError)
    {
        guard let from = Int64(exactly: after), let to = Int64(exactly: served) else {
            throw .invalidArgument("cursor \(max(after, served)) is out of range")
        }
        do {
            try writeWithoutTransactionBlocking { db in
                // Losing these rows in a crash can only make a cursor unknown (a resync), never
                // a wrong one known, so their commit need not wait for the disk.
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                defer { try? db.execute(sql: "PRAGMA synchronous = FULL") }
                try db.inTransaction {
                    let replicaBytes = Data(replica.bytes)
                    let upsert =
                        "INSERT OR REPLACE INTO pull_cursors (tenant, replica, sequence, tag) VALUES (?, ?, ?, ?)"
                    if replica == RememberedCursors.unnamedReader {
                        // Unnamed clients share one list: every page's end, trimmed by compaction.
                        if to > from {
                            try db.execute(
                                sql: upsert,
                                arguments: [database, replicaBytes, to, Int64(bitPattern: servedTag)])
                        }
                        return .commit
                    }
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO pull_positions (tenant, replica, after, pulled_at) VALUES (?, ?, ?, ?)",
                        arguments: [database, replicaBytes, from, Int64(clamping: pulledAt)])
                    try db.execute(
                        sql: "DELETE FROM pull_cursors WHERE tenant = ? AND replica = ? AND sequence < ?",
                        arguments: [database, replicaBytes, from])
                    if from > 0 {
                        try db.execute(
                            sql: upsert,
                            arguments: [database, replicaBytes, from, Int64(bitPattern: afterTag)])
                    }
                    if to > from {
                        try db.execute(
                            sql: upsert,
                            arguments: [database, replicaBytes, to, Int64(bitPattern: servedTag)])
                    }
                    // The pull's own cursor, the page's end, and the last few served before it.
                    try db.execute(
                        sql: """
                            DELETE FROM pull_cursors WHERE tenant = ? AND replica = ? AND sequence > ? AND sequence <> ? AND sequence NOT IN (
                                SELECT sequence FROM pull_cursors WHERE tenant = ? AND replica = ? AND sequence > ? AND sequence <> ?
                                ORDER BY sequence DESC LIMIT ?)
                            """,
                        arguments: [
                            database, replicaBytes, from, to, database, replicaBytes, from, to,
                            RememberedCursors.earlierPagesKept,
                        ])
                    return .commit
                }
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
                    sql: """
                        SELECT EXISTS (SELECT 1 FROM pull_cursors WHERE tenant = ? AND sequence = ? AND tag = ?)
                            OR ? <= coalesce((SELECT value FROM log_settings WHERE name = 'remembered_from'), 0)
                        """,
                    arguments: [database, position, Int64(bitPattern: tag), position]) ?? false
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    /// This store compacts as it logs, and its migration to the compacted log kept each
    /// document's latest entry only; a pass trims the cursors kept for unnamed clients.
    public func compactLog(limit: Int) async throws(WeftError) -> (removed: Int, passFinished: Bool) {
        do {
            try writeBlocking { db in
                let unnamed = Data(RememberedCursors.unnamedReader.bytes)
                let tenants = try String.fetchAll(
                    db, sql: "SELECT DISTINCT tenant FROM pull_cursors WHERE replica = ?",
                    arguments: [unnamed])
                for tenant in tenants {
                    try db.execute(
                        sql: """
                            DELETE FROM pull_cursors WHERE tenant = ? AND replica = ? AND sequence < (
                                SELECT sequence FROM pull_cursors WHERE tenant = ? AND replica = ? ORDER BY sequence DESC LIMIT 1 OFFSET ?)
                            """,
                        arguments: [tenant, unnamed, tenant, unnamed, RememberedCursors.unnamedKept - 1])
                }
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
        return (0, true)
    }
}
