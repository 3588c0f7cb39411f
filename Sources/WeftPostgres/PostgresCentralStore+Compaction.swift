import Foundation
import Logging
import NIOCore
import PostgresNIO
import Synchronization
import Weft
import WeftCRDT
import WeftServer

// The cursors remembered per replica (contract, rule 8), and background compaction.
extension PostgresCentralStore {
    public func rememberPull(
        database: String, replica: ReplicaID, after: UInt64, afterTag: UInt64, served: UInt64,
        servedTag: UInt64, pulledAt: UInt64
    )
        async throws(WeftError)
    {
        guard let from = Int64(exactly: after), let to = Int64(exactly: served) else {
            throw .invalidArgument("cursor \(max(after, served)) is out of range")
        }
        let logger = logger
        let replicaBytes = ByteBuffer(bytes: replica.bytes)
        let unnamed = replica == RememberedCursors.unnamedReader
        let cursors = [
            from > 0 && !unnamed ? (from, Int64(bitPattern: afterTag)) : nil,
            to > from ? (to, Int64(bitPattern: servedTag)) : nil,
        ]
        .compactMap { $0 }
        // Unnamed clients share one list (every page's end, trimmed by compaction): nothing is
        // forgotten here. A named replica keeps its pull's cursor, the page's end, and the last
        // few ends served before it.
        let below = unnamed ? Int64.min : from
        let trimmed = unnamed ? Int64.max : from
        do {
            try await withDeadline {
                try await self.client.withTransaction(logger: logger) { connection in
                    // Losing these rows in a crash can only make a cursor unknown (a resync),
                    // never a wrong one known: the commit need not wait for the disk.
                    try await connection.query("SET LOCAL synchronous_commit = off", logger: logger)
                    if !unnamed {
                        // The latest pull's cursor and time: what tombstone collection counts as
                        // acknowledged (rule 9).
                        try await connection.query(
                            """
                            INSERT INTO weft_pull_positions (tenant, replica, after, pulled_at)
                            VALUES (\(database), \(replicaBytes), \(from), \(Int64(clamping: pulledAt)))
                            ON CONFLICT (tenant, replica) DO UPDATE SET after = EXCLUDED.after, pulled_at = EXCLUDED.pulled_at
                            """, logger: logger)
                    }
                    try await connection.query(
                        """
                        WITH forgotten AS (
                            DELETE FROM weft_pull_cursors WHERE tenant = \(database) AND replica = \(replicaBytes) AND sequence < \(below)
                        ), remembered AS (
                            INSERT INTO weft_pull_cursors (tenant, replica, sequence, tag)
                            SELECT \(database), \(replicaBytes), s, g FROM unnest(\(cursors.map(\.0))::int8[], \(cursors.map(\.1))::int8[]) AS c(s, g)
                            ON CONFLICT (tenant, replica, sequence) DO UPDATE SET tag = EXCLUDED.tag
                        )
                        DELETE FROM weft_pull_cursors WHERE tenant = \(database) AND replica = \(replicaBytes) AND sequence > \(trimmed)
                            AND sequence <> \(to) AND sequence NOT IN (
                                SELECT sequence FROM weft_pull_cursors WHERE tenant = \(database) AND replica = \(replicaBytes)
                                AND sequence > \(trimmed) AND sequence <> \(to)
                                ORDER BY sequence DESC LIMIT \(RememberedCursors.earlierPagesKept))
                        """, logger: logger)
                }
            }
        } catch {
            throw map(error)
        }
    }

    public func servedCursor(database: String, sequence: UInt64, tag: UInt64) async throws(WeftError) -> Bool
    {
        guard let position = Int64(exactly: sequence) else { return false }
        let logger = logger
        let wanted = Int64(bitPattern: tag)
        do {
            return try await withDeadline {
                var found = false
                for try await known in try await self.client.query(
                    """
                    SELECT EXISTS (SELECT 1 FROM weft_pull_cursors WHERE tenant = \(database) AND sequence = \(position) AND tag = \(wanted))
                        OR \(position) <= COALESCE((SELECT remembered_from FROM weft_tenants WHERE tenant = \(database)), 0)
                    """, logger: logger
                ).decode(Bool.self) {
                    found = known
                }
                return found
            }
        } catch {
            throw map(error)
        }
    }

    /// One step over the next `limit` entries of one tenant's log, in sequence order: removes
    /// those a newer entry of the same document supersedes, and clears the record an older
    /// build stored in the others (a page reads the document's). Tenants are taken in turn;
    /// the pass is finished when the last tenant's log is done. A step runs under the tenant's
    /// sequencer lock, and skips (answering 0 removed) while a sequencer holds it.
    public func compactLog(limit: Int) async throws(WeftError) -> (removed: Int, passFinished: Bool) {
        let logger = logger
        let (tenant, after) = compaction.withLock { $0 }
        let step = max(1, limit)
        do {
            return try await withDeadline {
                try await self.client.withTransaction(logger: logger) {
                    connection -> (removed: Int, passFinished: Bool) in
                    // The tenant to work on: the current one, or the next one that has a log.
                    var current: String?
                    for try await name in try await connection.query(
                        "SELECT min(tenant) FROM weft_tenants WHERE tenant >= \(tenant)", logger: logger
                    ).decode(String?.self) {
                        current = name
                    }
                    guard let current else {
                        self.compaction.withLock { $0 = ("", 0) }
                        return (0, true)
                    }
                    let from = current == tenant ? after : 0
                    var locked = false
                    for try await acquired in try await connection.query(
                        "SELECT pg_try_advisory_xact_lock(hashtextextended(\(current), 7))", logger: logger
                    ).decode(Bool.self) {
                        locked = acquired
                    }
                    guard locked else {
                        // A sequencer holds this tenant: leave it to the next pass.
                        return try await self.nextTenant(after: current, connection)
                    }
                    var reached: Int64?
                    var read = 0
                    var removed = 0
                    for try await (last, count, gone) in try await connection.query(
                        """
                        WITH range AS (
                            SELECT l.id, l.sequence, l.collection, l.doc_id, l.record IS NOT NULL AS stored,
                                EXISTS (SELECT 1 FROM weft_change_log n WHERE n.tenant = \(current) AND n.collection = l.collection
                                        AND n.doc_id = l.doc_id AND n.sequence > l.sequence) AS superseded
                            FROM weft_change_log l
                            WHERE l.tenant = \(current) AND l.sequence > \(from) ORDER BY l.sequence LIMIT \(step)
                        ), gone AS (
                            DELETE FROM weft_change_log l USING range r WHERE l.id = r.id AND r.superseded RETURNING 1
                        ), cleared AS (
                            UPDATE weft_change_log l SET record = NULL FROM range r WHERE l.id = r.id AND r.stored AND NOT r.superseded
                        )
                        SELECT (SELECT max(sequence) FROM range), (SELECT count(*) FROM range), (SELECT count(*) FROM gone)
                        """, logger: logger
                    ).decode((Int64?, Int64, Int64).self) {
                        reached = last
                        read = Int(count)
                        removed = Int(gone)
                    }
                    if removed > 0 { self.compacted.withLock { $0 += UInt64(removed) } }
                    if read < step {
                        // This tenant's log is done: trim the cursors kept for unnamed clients,
                        // then on to the next tenant, or the end of the pass.
                        let unnamed = ByteBuffer(bytes: RememberedCursors.unnamedReader.bytes)
                        try await connection.query(
                            """
                            DELETE FROM weft_pull_cursors WHERE tenant = \(current) AND replica = \(unnamed) AND sequence < (
                                SELECT sequence FROM weft_pull_cursors WHERE tenant = \(current) AND replica = \(unnamed)
                                ORDER BY sequence DESC LIMIT 1 OFFSET \(RememberedCursors.unnamedKept - 1))
                            """, logger: logger)
                        let (_, finished) = try await self.nextTenant(after: current, connection)
                        return (removed, finished)
                    }
                    self.compaction.withLock { $0 = (current, reached ?? from) }
                    return (removed, false)
                }
            }
        } catch {
            throw map(error)
        }
    }

    /// Moves background compaction on to the tenant after `tenant`; whether the pass finished.
    func nextTenant(after tenant: String, _ connection: PostgresConnection) async throws -> (
        removed: Int, passFinished: Bool
    ) {
        var next: String?
        for try await name in try await connection.query(
            "SELECT min(tenant) FROM weft_tenants WHERE tenant > \(tenant)", logger: logger
        ).decode(String?.self) {
            next = name
        }
        compaction.withLock { $0 = (next ?? "", 0) }
        return (0, next == nil)
    }
}
