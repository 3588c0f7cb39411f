import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite

/// The Standalone server's embedded central store: one SQLite database (WAL, `synchronous =
/// FULL`, so a push is durable before it is acknowledged) holding every tenant database.
public final class SQLiteCentralStore: CentralStore {
    let pool: DatabasePool
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the store at `path`.
    public init(path: String) throws(WeftError) {
        self.path = path
        do {
            let migrator = Self.migrator
            try SQLiteReplicaStorage.refuseNewerSchema(path: path, migrator: migrator)
            var configuration = Configuration()
            configuration.label = "weft.central"
            pool = try DatabasePool(path: path, configuration: configuration)
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try migrator.migrate(pool)
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: central documents, change log, high-water marks, conflicts") { db in
            try db.execute(
                sql: """
                    CREATE TABLE documents (
                        tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, record BLOB NOT NULL,
                        PRIMARY KEY (tenant, collection, id)
                    ) WITHOUT ROWID;
                    CREATE TABLE change_log (
                        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                        tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
                        record BLOB NOT NULL, bytes INTEGER NOT NULL
                    );
                    CREATE INDEX change_log_by_tenant ON change_log (tenant, sequence);
                    CREATE TABLE high_water (
                        tenant TEXT NOT NULL, replica BLOB NOT NULL, applied_through INTEGER NOT NULL,
                        PRIMARY KEY (tenant, replica)
                    ) WITHOUT ROWID;
                    CREATE TABLE conflicts (
                        number INTEGER PRIMARY KEY AUTOINCREMENT,
                        tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
                        policy TEXT NOT NULL, resolver TEXT,
                        local BLOB NOT NULL, remote BLOB NOT NULL, winner BLOB NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v2: replica sessions") { db in
            try db.execute(
                sql: """
                    CREATE TABLE sessions (
                        tenant TEXT NOT NULL, replica BLOB NOT NULL, epoch INTEGER NOT NULL,
                        PRIMARY KEY (tenant, replica)
                    ) WITHOUT ROWID;
                    """)
        }
        return migrator
    }

    /// The replica's session (its epoch's 64 bits, stored signed), or `nil`.
    static func session(_ db: Database, _ database: String, _ replica: Data) throws -> UInt64? {
        try Int64.fetchOne(db, sql: "SELECT epoch FROM sessions WHERE tenant = ? AND replica = ?", arguments: [database, replica])
            .map { UInt64(bitPattern: $0) }
    }

    public func hello(database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64) async throws(WeftError)
        -> (accepted: Bool, appliedThrough: UInt64)
    {
        do {
            return try writeBlocking { db in
                let replicaBytes = Data(replica.bytes)
                let mark = UInt64(
                    try Int64.fetchOne(
                        db, sql: "SELECT applied_through FROM high_water WHERE tenant = ? AND replica = ?",
                        arguments: [database, replicaBytes]) ?? 0)
                if let current = try Self.session(db, database, replicaBytes), current != confirmedEpoch, current != epoch {
                    return (false, mark)
                }
                if mark > acknowledgedThrough { return (false, mark) }
                try db.execute(
                    sql: "INSERT OR REPLACE INTO sessions (tenant, replica, epoch) VALUES (?, ?, ?)",
                    arguments: [database, replicaBytes, Int64(bitPattern: epoch)])
                return (true, mark)
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    private func writeBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.write(body) }
    private func readBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.read(body) }

    public func knownReplicas(database: String, among replicas: Set<ReplicaID>) async throws(WeftError) -> Set<ReplicaID> {
        guard !replicas.isEmpty else { return [] }
        let all = Array(replicas)
        do {
            return try readBlocking { db in
                var known = Set<ReplicaID>()
                // In chunks, well under SQLite's limit on bound parameters.
                for start in stride(from: 0, to: all.count, by: 400) {
                    let chunk = all[start..<min(start + 400, all.count)]
                    let marks = chunk.map { _ in "?" }.joined(separator: ", ")
                    var arguments: [any DatabaseValueConvertible] = [database]
                    arguments += chunk.map { Data($0.bytes) }
                    arguments.append(database)
                    arguments += chunk.map { Data($0.bytes) }
                    let rows = try Data.fetchAll(
                        db,
                        sql: """
                            SELECT replica FROM sessions WHERE tenant = ? AND replica IN (\(marks))
                            UNION SELECT replica FROM high_water WHERE tenant = ? AND replica IN (\(marks))
                            """,
                        arguments: StatementArguments(arguments))
                    for bytes in rows {
                        if let replica = ReplicaID(bytes: [UInt8](bytes)) { known.insert(replica) }
                    }
                }
                return known
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func applyPush(
        database: String, replica: ReplicaID, epoch: UInt64, changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)],
        merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> UInt64 {
        do {
            return try writeBlocking { db in
                let replicaBytes = Data(replica.bytes)
                guard try Self.session(db, database, replicaBytes) == (epoch == 0 ? nil : epoch) else {
                    throw WeftError.forked("replica \(replica) pushed in session \(epoch), which is not its current one")
                }
                let mark = UInt64(
                    try Int64.fetchOne(
                        db, sql: "SELECT applied_through FROM high_water WHERE tenant = ? AND replica = ?",
                        arguments: [database, replicaBytes]) ?? 0)
                // The per-change statements run through the SQLite C API (see RawStatement).
                let read = RawStatement(
                    try db.cachedStatement(sql: "SELECT record FROM documents WHERE tenant = ? AND collection = ? AND id = ?"), in: db)
                let store = RawStatement(
                    try db.cachedStatement(sql: "INSERT OR REPLACE INTO documents (tenant, collection, id, record) VALUES (?, ?, ?, ?)"),
                    in: db)
                let log = RawStatement(
                    try db.cachedStatement(sql: "INSERT INTO change_log (tenant, collection, id, record, bytes) VALUES (?, ?, ?, ?, ?)"),
                    in: db)
                let logConflict = try db.cachedStatement(
                    sql: "INSERT INTO conflicts (tenant, collection, id, policy, resolver, local, remote, winner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                var newMark = mark
                for change in changes {
                    newMark = max(newMark, change.sequence)
                    let key = change.key
                    let local = try read.run { row -> DocumentRecord? in
                        try row.bind(database)
                        try row.bind(key.collection.rawValue)
                        try row.bind(key.id.rawValue)
                        guard try row.step() else { return nil }
                        return try SQLiteReplicaStorage.decodeRecord(try row.blob(0, "the record of \(database)/\(key)"), "\(database)/\(key)")
                    }
                    let result = try merge(local, key, change.delta)
                    if let conflict = result.conflict {
                        let (policy, resolver) = SQLiteReplicaStorage.policyColumns(conflict.policy)
                        let arguments: StatementArguments = [database, key.collection.rawValue, key.id.rawValue]
                        try logConflict.execute(
                            arguments: arguments + [
                                policy, resolver, Data(conflict.local.encoded()), Data(conflict.remote.encoded()),
                                Data(conflict.winner.encoded()),
                            ])
                    }
                    guard result.record != local else { continue }
                    let bytes = result.record.encoded()
                    try bytes.withUnsafeBytes { record in
                        try store.run { statement in
                            try statement.bind(database)
                            try statement.bind(key.collection.rawValue)
                            try statement.bind(key.id.rawValue)
                            try statement.bind(borrowing: record)
                            try statement.execute()
                        }
                        try log.run { statement in
                            try statement.bind(database)
                            try statement.bind(key.collection.rawValue)
                            try statement.bind(key.id.rawValue)
                            try statement.bind(borrowing: record)
                            try statement.bind(Int64(bytes.count))
                            try statement.execute()
                        }
                    }
                }
                guard let markValue = Int64(exactly: newMark) else { throw WeftError.invalidArgument("sequence \(newMark) is out of range") }
                try db.execute(
                    sql: "INSERT OR REPLACE INTO high_water (tenant, replica, applied_through) VALUES (?, ?, ?)",
                    arguments: [database, replicaBytes, markValue])
                return newMark
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }

    public func changes(database: String, after: UInt64, limit: Int, maxBytes: Int) async throws(WeftError)
        -> (changes: [LoggedChange], hasMore: Bool)
    {
        guard let cursor = Int64(exactly: after) else { throw .invalidArgument("cursor \(after) is out of range") }
        do {
            return try readBlocking { db in
                let rows = try Row.fetchCursor(
                    db,
                    sql: "SELECT sequence, collection, id, record, bytes FROM change_log WHERE tenant = ? AND sequence > ? ORDER BY sequence LIMIT ?",
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
                    let key = try SQLiteReplicaStorage.key(row)
                    let record = try SQLiteReplicaStorage.decodeRecord(
                        try SQLiteReplicaStorage.column(row, "record", Data.self), "\(database)/\(key)")
                    let sequence = try SQLiteReplicaStorage.column(row, "sequence", Int64.self)
                    page.append(LoggedChange(sequence: UInt64(sequence), key: key, record: record, byteCount: size))
                    bytes += size
                }
                return (page, more)
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
                    sql: "SELECT collection, id, policy, resolver, local, remote, winner FROM conflicts WHERE tenant = ? ORDER BY number DESC LIMIT ?",
                    arguments: [database, max(0, limit)]
                ).map { row in
                    let policy = try SQLiteReplicaStorage.policy(row)
                    func record(_ column: String) throws -> DocumentRecord {
                        try SQLiteReplicaStorage.decodeRecord(try SQLiteReplicaStorage.column(row, column, Data.self), "a logged conflict")
                    }
                    return ConflictRecord(
                        key: try SQLiteReplicaStorage.key(row), local: try record("local"), remote: try record("remote"),
                        winner: try record("winner"), policy: policy)
                }
            }
        } catch {
            throw SQLiteReplicaStorage.map(error, path: path)
        }
    }
}
