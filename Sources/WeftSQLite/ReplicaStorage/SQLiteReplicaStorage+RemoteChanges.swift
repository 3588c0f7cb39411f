import Foundation
import GRDB
import Synchronization
import Weft
import WeftCRDT

// Applying pulled changes: merged records, the conflict log and the pull cursor in one transaction.
extension SQLiteReplicaStorage {
    public func applyRemoteChanges(
        _ changes: [(key: DocumentKey, record: DocumentRecord)], through cursor: UInt64, tag: UInt64,
        _ merge: @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> [AppliedRemoteChange] {
        guard let cursorValue = Int64(exactly: cursor) else { throw .invalidArgument("pull cursor \(cursor) is out of range") }
        guard let tagValue = Int64(exactly: tag) else { throw .invalidArgument("pull cursor tag \(tag) is out of range") }
        do {
            return try transaction { db, counters in
                let readRecord = try db.cachedStatement(
                    sql: """
                        SELECT d.record, length(d.record) AS size, b.digest AS base_digest FROM documents d
                        LEFT JOIN server_bases b ON b.collection = d.collection AND b.id = d.id
                        WHERE d.collection = ? AND d.id = ?
                        """)
                // An upsert that keeps the row's queue columns: a pulled change never touches the
                // queue (a document waiting to be pushed stays queued, now with the merged record).
                let upsertDocument = try db.cachedStatement(
                    sql: """
                        INSERT INTO documents (collection, id, record, deleted) VALUES (?, ?, ?, ?)
                        ON CONFLICT (collection, id) DO UPDATE SET record = excluded.record, deleted = excluded.deleted, unconfirmed = 0
                        """)
                // The server base (contract point 8).
                let upsertBase = try db.cachedStatement(
                    sql: "INSERT OR REPLACE INTO server_bases (collection, id, digest, base) VALUES (?, ?, ?, ?)")
                let deleteBase = try db.cachedStatement(sql: "DELETE FROM server_bases WHERE collection = ? AND id = ?")
                let logConflict = try db.cachedStatement(
                    sql: "INSERT INTO conflicts (collection, id, policy, resolver, local, remote, winner) VALUES (?, ?, ?, ?, ?, ?, ?)")
                var applied = [AppliedRemoteChange]()
                var known = [DocumentKey: DocumentRecord]()
                var baseDigests = [DocumentKey: Int64]()
                var localSizes = [DocumentKey: Int]()
                for change in changes {
                    let key = change.key
                    var local = known[key]
                    if local == nil, let row = try Row.fetchOne(readRecord, arguments: [key.collection.rawValue, key.id.rawValue]) {
                        let stored = [UInt8](try Self.column(row, "record", Data.self))
                        local = try self.storedRecord(db, key, bytes: stored)
                        localSizes[key] = try PartsStub(parsing: stored, "\(key)")?.storedBytes ?? Self.column(row, "size", Int.self)
                        if let digest = try Self.column(row, "base_digest", Int64?.self) { baseDigests[key] = digest }
                    }
                    let result = try merge(local, key, change.record)
                    let changed = result.kind != .unchanged || result.record != local
                    let takesPulled = changed && result.record == change.record
                    // The pulled record is the server's exactly: a large one is the new base. It
                    // is encoded only when it is stored, or may be large (a small document that
                    // comes back unchanged, a replica's own push, costs no encoding).
                    let mayBeLarge =
                        takesPulled || baseDigests[key] != nil || (localSizes[key] ?? Int.max) >= ServerBase.minimumRecordBytes / 2
                    let pulled = mayBeLarge ? change.record.encoded() : []
                    let base = pulled.count >= ServerBase.minimumRecordBytes ? Data(pulled) : nil
                    let digest = base.map { _ in Int64(bitPattern: DocumentRecord.digest(ofEncoding: pulled)) }
                    if changed {
                        let stored = takesPulled ? pulled : result.record.encoded()
                        try upsertDocument.execute(
                            arguments: [key.collection.rawValue, key.id.rawValue, Data(stored), result.record.isDeleted])
                        // The next local edit of a large document reads these bytes back.
                        rememberEncoded(key, bytes: stored, record: result.record)
                        try self.updateIndexes(db, key, result.record)
                    }
                    if let base, let digest {
                        if baseDigests[key] != digest {
                            try upsertBase.execute(arguments: [key.collection.rawValue, key.id.rawValue, digest, base])
                        }
                    } else if baseDigests[key] != nil {
                        try deleteBase.execute(arguments: [key.collection.rawValue, key.id.rawValue])
                    }
                    baseDigests[key] = digest
                    if let conflict = result.conflict {
                        let (policy, resolver) = Self.policyColumns(conflict.policy)
                        try logConflict.execute(arguments: [
                            key.collection.rawValue, key.id.rawValue, policy, resolver, Data(conflict.local.encoded()),
                            Data(conflict.remote.encoded()), Data(conflict.winner.encoded()),
                        ])
                    }
                    known[key] = result.record
                    if result.kind == .resolved {
                        try self.enqueueResolution(db, key, result.record, &counters)
                    }
                    applied.append(AppliedRemoteChange(key: key, record: result.record, kind: result.kind))
                }
                if try Self.metaInteger(db, "pull_cursor") < cursorValue {
                    try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'pull_cursor'", arguments: [cursorValue])
                    try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('pull_cursor_tag', ?)", arguments: [tagValue])
                }
                return applied
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func beginResync() async throws(WeftError) {
        try await write { db in
            // A resync already under way keeps the cursor it began from.
            try db.execute(sql: "INSERT OR IGNORE INTO meta (key, value) SELECT 'resync_from', value FROM meta WHERE key = 'pull_cursor'")
            try db.execute(sql: "UPDATE meta SET value = 0 WHERE key = 'pull_cursor'")
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('pull_cursor_tag', 0)")
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('resync_pending', 1)")
        }
    }

    public func endResync(pushingBack keys: [DocumentKey]) async throws(WeftError) {
        do {
            try transaction { db, counters in
                let read = try db.cachedStatement(sql: "SELECT record FROM documents WHERE collection = ? AND id = ?")
                for key in keys {
                    guard let data = try Data.fetchOne(read, arguments: [key.collection.rawValue, key.id.rawValue]) else { continue }
                    try self.enqueueResolution(db, key, try self.storedRecord(db, key, bytes: [UInt8](data)), &counters)
                }
                try db.execute(sql: "DELETE FROM meta WHERE key IN ('resync_pending', 'resync_from')")
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    /// Queues a resolution of siblings made while applying a pull, like a local write (coalescing
    /// into a pending entry, or a new entry after an in-flight one). It is not refused at
    /// `max_queue_bytes`: a pulled change is never refused, and the queue only ever holds
    /// whole records.
    func enqueueResolution(
        _ db: Database, _ key: DocumentKey, _ record: DocumentRecord, _ counters: inout QueueCounters
    ) throws {
        let size = QueueEntry.byteCount(key: key, recordBytes: record.encoded().count)
        let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT queued_seq, queued_bytes FROM documents WHERE collection = ? AND id = ?"),
            arguments: [key.collection.rawValue, key.id.rawValue])
        let pending = try row.flatMap { row in try Self.column(row, "queued_seq", Int64?.self) }
        let oldBytes = try row.map { row in try Self.column(row, "queued_bytes", Int.self) } ?? 0
        let inFlight = Int64(clamping: inFlightThrough.withLock { $0 })
        if let pending, pending > inFlight {
            try db.cachedStatement(sql: "UPDATE documents SET queued_bytes = ? WHERE collection = ? AND id = ?")
                .execute(arguments: [size, key.collection.rawValue, key.id.rawValue])
            counters.bytes += size - oldBytes
        } else {
            if let pending {
                try db.cachedStatement(sql: "INSERT INTO superseded (seq, collection, id, bytes) VALUES (?, ?, ?, ?)")
                    .execute(arguments: [pending, key.collection.rawValue, key.id.rawValue, oldBytes])
            }
            try db.cachedStatement(sql: "UPDATE documents SET queued_seq = ?, queued_bytes = ? WHERE collection = ? AND id = ?")
                .execute(arguments: [counters.next, size, key.collection.rawValue, key.id.rawValue])
            counters.next += 1
            counters.bytes += size
        }
    }

    public func conflicts(limit: Int) async throws(WeftError) -> [ConflictRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT collection, id, policy, resolver, local, remote, winner FROM conflicts ORDER BY number DESC LIMIT ?",
                arguments: [max(0, limit)]
            ).map { row in
                let key = try Self.key(row)
                let policy = try Self.policy(row)
                return ConflictRecord(
                    key: key, local: try Self.decodeRecord(try Self.column(row, "local", Data.self), "a logged conflict"),
                    remote: try Self.decodeRecord(try Self.column(row, "remote", Data.self), "a logged conflict"),
                    winner: try Self.decodeRecord(try Self.column(row, "winner", Data.self), "a logged conflict"), policy: policy)
            }
        }
    }

    /// The connection's `PRAGMA synchronous` value: 1 for NORMAL, 2 for FULL.
}
