import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite

// Pages of the change log, records and conflicts.
extension SQLiteCentralStore {
    public func changes(database: String, after: UInt64, limit: Int, maxBytes: Int) async throws(WeftError)
        -> (changes: [LoggedChange], hasMore: Bool)
    {
        guard let cursor = Int64(exactly: after) else {
            throw .invalidArgument("cursor \(after) is out of range")
        }
        do {
            return try readBlocking { db in
                // Each entry's record is its document's: the entry is the document's latest.
                let rows = try Row.fetchCursor(
                    db,
                    sql: """
                        SELECT l.sequence, l.collection, l.id, d.record, length(d.record) AS bytes, l.tag,
                            l.delta, l.base_digest, l.base_sequence, d.born_after FROM log l
                        JOIN documents d ON d.tenant = l.tenant AND d.collection = l.collection AND d.id = l.id
                        WHERE l.tenant = ? AND l.sequence > ? ORDER BY l.sequence LIMIT ?
                        """,
                    arguments: [database, cursor, max(1, limit) + 1])
                var page = [LoggedChange]()
                var bytes = 0
                var more = false
                while let row = try rows.next() {
                    let size = try SQLiteReplicaStorage.column(row, "bytes", Int.self)
                    if page.count >= max(1, limit) || (!page.isEmpty && bytes + size > maxBytes) {
                        more = true
                        break
                    }
                    page.append(try loggedChange(row, database: database))
                    bytes += size
                }
                return (page, more)
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    /// The logged change a row of the log joined with its document holds (columns `sequence`,
    /// `collection`, `id`, `record`, `bytes`, `tag`, `delta`, `base_digest`, `base_sequence`,
    /// `born_after`).
    func loggedChange(_ row: Row, database: String) throws -> LoggedChange {
        let size = try SQLiteReplicaStorage.column(row, "bytes", Int.self)
        let key = try SQLiteReplicaStorage.key(row)
        let record = try SQLiteReplicaStorage.decodeRecord(
            try SQLiteReplicaStorage.column(row, "record", Data.self), "\(database)/\(key)")
        let sequence = try SQLiteReplicaStorage.column(row, "sequence", Int64.self)
        let tag = try SQLiteReplicaStorage.column(row, "tag", Int64.self)
        var delta: LogDelta?
        if let bytes = try SQLiteReplicaStorage.column(row, "delta", Data?.self),
            let base = try SQLiteReplicaStorage.column(row, "base_digest", Int64?.self),
            let at = try SQLiteReplicaStorage.column(row, "base_sequence", Int64?.self)
        {
            do {
                delta = LogDelta(
                    record: try DocumentRecord(encoded: Array(bytes)), baseDigest: UInt64(bitPattern: base),
                    baseSequence: UInt64(max(0, at)))
            } catch {
                throw WeftError.corrupt(
                    "the logged delta of \(database)/\(key) at \(path) does not decode: \(error)")
            }
        }
        let born = try SQLiteReplicaStorage.column(row, "born_after", Int64.self)
        return LoggedChange(
            sequence: UInt64(sequence), key: key, record: record, byteCount: size,
            tag: UInt64(bitPattern: tag), delta: delta,
            bornAfter: UInt64(max(0, born)))
    }

    public func tag(database: String, sequence: UInt64) async throws(WeftError) -> UInt64? {
        guard let position = Int64(exactly: sequence) else { return nil }
        do {
            return try readBlocking { db in
                try Int64.fetchOne(
                    db, sql: "SELECT tag FROM log WHERE tenant = ? AND sequence = ?",
                    arguments: [database, position]
                ).map { UInt64(bitPattern: $0) }
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func record(database: String, key: DocumentKey) async throws(WeftError) -> DocumentRecord? {
        do {
            return try readBlocking { db in
                try Data.fetchOne(
                    db, sql: "SELECT record FROM documents WHERE tenant = ? AND collection = ? AND id = ?",
                    arguments: [database, key.collection.rawValue, key.id.rawValue]
                ).map { try SQLiteReplicaStorage.decodeRecord($0, "\(database)/\(key)") }
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func conflicts(database: String, limit: Int) async throws(WeftError) -> [ConflictRecord] {
        do {
            return try readBlocking { db in
                try Row.fetchAll(
                    db,
                    sql:
                        "SELECT collection, id, policy, resolver, local, remote, winner FROM conflicts WHERE tenant = ? ORDER BY number DESC LIMIT ?",
                    arguments: [database, max(0, limit)]
                ).map { row in
                    let policy = try SQLiteReplicaStorage.policy(row)
                    func record(_ column: String) throws -> DocumentRecord {
                        try SQLiteReplicaStorage.decodeRecord(
                            try SQLiteReplicaStorage.column(row, column, Data.self), "a logged conflict")
                    }
                    return ConflictRecord(
                        key: try SQLiteReplicaStorage.key(row), local: try record("local"),
                        remote: try record("remote"),
                        winner: try record("winner"), policy: policy)
                }
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }
}
