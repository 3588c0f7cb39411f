import Foundation
import GRDB
import Synchronization
import Weft
import WeftCRDT

// The DocumentStore role: metadata, cursors and reading records.
extension SQLiteReplicaStorage {
    // MARK: DocumentStore

    public func metadata() async throws(WeftError) -> ReplicaMetadata {
        try await read { db in
            guard let idData = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'replica_id'"),
                let replica = ReplicaID(bytes: [UInt8](idData))
            else { throw WeftError.corrupt("the replica id is missing or malformed") }
            var metadata = ReplicaMetadata(replicaID: replica)
            if let stampData = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_stamp'") {
                do {
                    metadata.lastStamp = try HLCTimestamp(encoded: [UInt8](stampData))
                } catch {
                    throw WeftError.corrupt("the stored clock does not decode: \(error)")
                }
            }
            metadata.pullCursor = UInt64(try Self.metaInteger(db, "pull_cursor"))
            if try Int64.fetchOne(db, sql: "SELECT count(*) FROM meta WHERE key = 'confirmed_epoch'") == 1 {
                // Stored as the epoch's 64 bits, which SQLite reads as a signed integer.
                let raw = try Int64.fetchOne(
                    db,
                    sql: "SELECT value FROM meta WHERE key = 'confirmed_epoch' AND typeof(value) = 'integer'")
                guard let raw else {
                    throw WeftError.corrupt("the meta value confirmed_epoch is not an integer")
                }
                metadata.confirmedEpoch = UInt64(bitPattern: raw)
            }
            if try Int64.fetchOne(db, sql: "SELECT count(*) FROM meta WHERE key = 'acknowledged_through'")
                == 1
            {
                metadata.acknowledgedThrough = UInt64(try Self.metaInteger(db, "acknowledged_through"))
            }
            if try Int64.fetchOne(db, sql: "SELECT count(*) FROM meta WHERE key = 'pull_cursor_tag'") == 1 {
                metadata.pullCursorTag = UInt64(try Self.metaInteger(db, "pull_cursor_tag"))
            }
            metadata.resyncPending =
                try Int64.fetchOne(db, sql: "SELECT count(*) FROM meta WHERE key = 'resync_pending'") == 1
            if try Int64.fetchOne(db, sql: "SELECT count(*) FROM meta WHERE key = 'resync_from'") == 1 {
                metadata.resyncFrom = UInt64(try Self.metaInteger(db, "resync_from"))
            }
            if let former = try Data.fetchOne(
                db, sql: "SELECT value FROM meta WHERE key = 'former_identities'")
            {
                guard former.count % 16 == 0 else {
                    throw WeftError.corrupt("the former identities are not 16 bytes each")
                }
                let bytes = [UInt8](former)
                metadata.formerIdentities = stride(from: 0, to: bytes.count, by: 16).compactMap {
                    ReplicaID(bytes: bytes[$0..<$0 + 16])
                }
            }
            if let view = try Data.fetchOne(
                db, sql: "SELECT value FROM meta WHERE key = 'channel_view' AND typeof(value) = 'blob'")
            {
                metadata.channelView = [UInt8](view)
            }
            return metadata
        }
    }

    public func saveChannelView(_ view: [UInt8]) async throws(WeftError) {
        try await write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('channel_view', ?)",
                arguments: [Data(view)])
        }
    }

    public func saveLastStamp(_ stamp: HLCTimestamp) async throws(WeftError) {
        let bytes = Data(stamp.encoded())
        do {
            try transaction { db, counters in
                try db.execute(
                    sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_stamp', ?)",
                    arguments: [bytes])
                counters.lease = stamp
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func setPullCursor(_ cursor: UInt64) async throws(WeftError) {
        guard let value = Int64(exactly: cursor) else {
            throw .invalidArgument("pull cursor \(cursor) is out of range")
        }
        try await write { db in
            try db.execute(
                sql: "UPDATE meta SET value = max(value, ?) WHERE key = 'pull_cursor'", arguments: [value])
        }
    }

    public func saveConfirmedEpoch(_ epoch: UInt64) async throws(WeftError) {
        try await write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('confirmed_epoch', ?)",
                arguments: [Int64(bitPattern: epoch)])
        }
    }

    public func replaceIdentity(with replica: ReplicaID) async throws(WeftError) {
        try await write { db in
            // The old identity joins the former ones (16 bytes each, oldest first, 64 at most).
            let former =
                try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'former_identities'") ?? Data()
            let current =
                try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'replica_id'") ?? Data()
            try db.execute(
                sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('former_identities', ?)",
                arguments: [Data((former + current).suffix(64 * 16))])
            try db.execute(
                sql: "UPDATE meta SET value = ? WHERE key = 'replica_id'", arguments: [Data(replica.bytes)])
            try db.execute(sql: "DELETE FROM meta WHERE key IN ('confirmed_epoch', 'acknowledged_through')")
        }
    }

    public func bootMarker() async throws(WeftError) -> String? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT CAST(value AS TEXT) FROM meta WHERE key = 'boot_marker'")
        }
    }

    public func saveBootMarker(_ marker: String) async throws(WeftError) {
        try await write { db in
            try db.execute(
                sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('boot_marker', ?)", arguments: [marker]
            )
        }
    }

    public func documentKeys() async throws(WeftError) -> [DocumentKey] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT collection, id FROM documents").map { try Self.key($0) }
        }
    }

    /// A blocking read on a reader connection, on the caller's executor: GRDB's asynchronous
    /// read hands the work to a queue of its own and back, about 150 µs of a point read's
    /// 190 µs, for a read that takes a few microseconds.
    public nonisolated(nonsending) func record(for key: DocumentKey) async throws(WeftError)
        -> DocumentRecord?
    {
        do {
            return try readBlocking { db in
                let statement = RawStatement(
                    try db.cachedStatement(
                        sql: "SELECT record FROM documents WHERE collection = ? AND id = ?"), in: db)
                let stored = try Self.withUTF8(key) { collection, id in
                    try statement.run { row -> [UInt8]? in
                        try row.bind(borrowingText: collection)
                        try row.bind(borrowingText: id)
                        guard try row.step() else { return nil }
                        return try row.blob(0, "the record of \(key)")
                    }
                }
                guard let stored else { return nil }
                return try self.storedRecord(db, key, bytes: stored)
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func records(for keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey: DocumentRecord] {
        do {
            return try readBlocking { db in
                let statement = try db.cachedStatement(
                    sql: "SELECT record FROM documents WHERE collection = ? AND id = ?")
                var result = [DocumentKey: DocumentRecord](minimumCapacity: keys.count)
                for key in keys where result[key] == nil {
                    if let data = try Data.fetchOne(
                        statement, arguments: [key.collection.rawValue, key.id.rawValue])
                    {
                        result[key] = try self.storedRecord(db, key, bytes: [UInt8](data))
                    }
                }
                return result
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func records(in collection: CollectionName, where filter: DocumentFilter, limit: Int?)
        async throws(WeftError)
        -> [(id: DocumentID, record: DocumentRecord)]
    {
        let rows = try await read { db in
            var sql = "SELECT id, record, deleted FROM documents WHERE collection = ?"
            var arguments: StatementArguments = [collection.rawValue]
            if !filter.includeDeleted { sql += " AND deleted = 0" }
            if let prefix = filter.idPrefix, !prefix.isEmpty {
                // A range of the primary key, not a scan: the ids starting with the prefix are
                // those from it up to its successor (UTF-8 keeps the order of code points).
                sql += " AND id >= ?"
                arguments += [prefix]
                if let upper = IndexCondition.successor(of: prefix) {
                    sql += " AND id < ?"
                    arguments += [upper]
                }
            }
            if let after = filter.after {
                // Text compares by its bytes (BINARY): the UTF-8 order of DocumentID.
                sql += " AND id > ?"
                arguments += [after.rawValue]
            }
            sql += " ORDER BY id"
            var result = [(DocumentID, DocumentRecord)]()
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try cursor.next() {
                let rawID = try Self.column(row, "id", String.self)
                guard let id = try? DocumentID(rawID) else {
                    throw WeftError.corrupt("stored id \(rawID.debugDescription) is invalid")
                }
                let record = try self.storedRecord(
                    db, DocumentKey(collection: collection, id: id),
                    bytes: [UInt8](try Self.column(row, "record", Data.self)))
                guard filter.matches(id, record) else { continue }
                result.append((id, record))
                if let limit, result.count >= limit { break }
            }
            return result
        }
        return rows.map { (id: $0.0, record: $0.1) }
    }
}
