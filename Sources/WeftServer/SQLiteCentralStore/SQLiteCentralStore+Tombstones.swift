import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite

// Forgetting tombstones (CentralStore rule 9): `documents.tombstone` marks the ones that may go,
// `pull_positions` gives each named replica's acknowledged cursor, `collected` each tenant's
// `collected_through`.
extension SQLiteCentralStore {
    public var collectedTombstones: UInt64 { collected.withLock { $0 } }

    public func collectedThrough(database: String) async throws(WeftError) -> UInt64 {
        do {
            return try readBlocking { db in try Self.collectedThrough(db, database) }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    static func collectedThrough(_ db: Database, _ tenant: String) throws -> UInt64 {
        UInt64(
            max(
                0,
                try Int64.fetchOne(
                    db, sql: "SELECT through FROM collected WHERE tenant = ?", arguments: [tenant]) ?? 0))
    }

    public func collectTombstones(pulledSince: UInt64, limit: Int) async throws(WeftError) -> (
        removed: Int, passFinished: Bool
    ) {
        let limit = max(1, limit)
        do {
            let (removed, finished) = try writeBlocking { db -> (Int, Bool) in
                // Records written before the `tombstone` column: decoded once, in steps.
                let unclassified = try Row.fetchAll(
                    db,
                    sql:
                        "SELECT tenant, collection, id, record FROM documents WHERE tombstone IS NULL LIMIT ?",
                    arguments: [limit])
                for row in unclassified {
                    let tenant = try SQLiteReplicaStorage.column(row, "tenant", String.self)
                    let key = try SQLiteReplicaStorage.key(row)
                    let record = try SQLiteReplicaStorage.decodeRecord(
                        try SQLiteReplicaStorage.column(row, "record", Data.self), "\(tenant)/\(key)")
                    try db.execute(
                        sql:
                            "UPDATE documents SET tombstone = ? WHERE tenant = ? AND collection = ? AND id = ?",
                        arguments: [
                            record.isDeleted && record.body.count == 0, tenant, key.collection.rawValue,
                            key.id.rawValue,
                        ])
                }
                if unclassified.count == limit { return (0, false) }
                var removed = 0
                let since = Int64(clamping: pulledSince)
                for tenant in try String.fetchAll(
                    db, sql: "SELECT DISTINCT tenant FROM documents WHERE tombstone = 1")
                {
                    guard removed < limit else { break }
                    // The stable point: the lowest cursor a replica that pulled since then started
                    // its latest pull from (unbounded if none did).
                    let stable =
                        try Int64.fetchOne(
                            db,
                            sql: "SELECT min(after) FROM pull_positions WHERE tenant = ? AND pulled_at >= ?",
                            arguments: [tenant, since])
                        ?? Int64.max
                    let rows = try Row.fetchAll(
                        db,
                        sql: """
                            SELECT d.collection, d.id, l.sequence FROM documents d
                            JOIN log l ON l.tenant = d.tenant AND l.collection = d.collection AND l.id = d.id
                            WHERE d.tenant = ? AND d.tombstone = 1 AND l.sequence <= ? ORDER BY l.sequence LIMIT ?
                            """,
                        arguments: [tenant, stable, limit - removed])
                    guard !rows.isEmpty else { continue }
                    var highest: Int64 = 0
                    for row in rows {
                        let key = try SQLiteReplicaStorage.key(row)
                        let arguments: StatementArguments = [
                            tenant, key.collection.rawValue, key.id.rawValue,
                        ]
                        try db.execute(
                            sql: "DELETE FROM documents WHERE tenant = ? AND collection = ? AND id = ?",
                            arguments: arguments)
                        try db.execute(
                            sql: "DELETE FROM log WHERE tenant = ? AND collection = ? AND id = ?",
                            arguments: arguments)
                        try db.execute(
                            sql: "DELETE FROM channel_entries WHERE tenant = ? AND collection = ? AND id = ?",
                            arguments: arguments)
                        highest = max(highest, try SQLiteReplicaStorage.column(row, "sequence", Int64.self))
                    }
                    try db.execute(
                        sql: """
                            INSERT INTO collected (tenant, through) VALUES (?, ?)
                            ON CONFLICT (tenant) DO UPDATE SET through = max(through, excluded.through)
                            """,
                        arguments: [tenant, highest])
                    // Departures at or below what the tenant forgot: a reader past them has been
                    // told, and one behind them resyncs (ChannelIndexedStore rule 8).
                    try db.execute(
                        sql: """
                            DELETE FROM channel_entries WHERE tenant = ? AND present = 0
                                AND sequence <= (SELECT through FROM collected WHERE tenant = ?)
                            """,
                        arguments: [tenant, tenant])
                    removed += rows.count
                }
                return (removed, removed < limit)
            }
            collected.withLock { $0 += UInt64(removed) }
            return (removed, finished)
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }
}
