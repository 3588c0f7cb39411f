import Foundation
import GRDB
import Synchronization
import Weft
import WeftCRDT

/// Replica storage in one SQLite database (through GRDB): documents, metadata and the offline
/// queue, with every local write and its queue entry in one transaction.
///
/// The database runs in WAL mode; its schema is created and upgraded by a `DatabaseMigrator`.
/// Durability follows ``Weft/Durability``: `synchronous = NORMAL` or `FULL`.
///
/// Opening a database written by a newer Weft (one with migrations this build does not know)
/// fails with ``Weft/WeftError/Kind/schemaTooNew`` rather than guess at its format; a file that
/// is not a SQLite database, or whose stored bytes do not decode, fails with
/// ``Weft/WeftError/Kind/corrupt``.
public final class SQLiteReplicaStorage: ReplicaStorage {
    let pool: DatabasePool
    /// The highest sequence handed out in a batch since open (0: nothing in flight). Changed only
    /// inside write transactions, which GRDB serialises, so reads there see a stable value.
    private let inFlightThrough = Mutex<UInt64>(0)
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the database at `path`.
    public init(path: String, durability: Durability = .normal) throws(WeftError) {
        self.path = path
        var configuration = Configuration()
        configuration.label = "weft.replica"
        do {
            let migrator = Self.migrator
            if FileManager.default.fileExists(atPath: path) {
                // Look before opening for writing: a read-only connection leaves a database from a
                // newer Weft exactly as it found it.
                var probeConfiguration = Configuration()
                probeConfiguration.readonly = true
                let probe = try DatabaseQueue(path: path, configuration: probeConfiguration)
                let superseded = try probe.read { db in try migrator.hasBeenSuperseded(db) }
                try probe.close()
                if superseded {
                    throw WeftError.schemaTooNew(
                        "\(path) was written by a newer version of Weft (its schema has migrations this build does not know)")
                }
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            try migrator.migrate(pool)
            // GRDB sets synchronous = NORMAL when it switches the writer to WAL, so set the level
            // afterwards, on the one writer connection (the setting is per connection).
            let synchronous = durability == .full ? "FULL" : "NORMAL"
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
            try pool.write { db in
                try db.execute(
                    sql: "INSERT OR IGNORE INTO meta (key, value) VALUES ('replica_id', ?)",
                    arguments: [Data(ReplicaID.random().bytes)])
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: documents, metadata and queue") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
                    CREATE TABLE documents (
                        collection TEXT NOT NULL,
                        id TEXT NOT NULL,
                        record BLOB NOT NULL,
                        deleted INTEGER NOT NULL,
                        PRIMARY KEY (collection, id)
                    ) WITHOUT ROWID;
                    CREATE TABLE queue (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        collection TEXT NOT NULL,
                        id TEXT NOT NULL,
                        delta BLOB NOT NULL,
                        bytes INTEGER NOT NULL
                    );
                    CREATE INDEX queue_by_document ON queue (collection, id, seq);
                    INSERT INTO meta (key, value) VALUES ('queue_bytes', 0), ('pull_cursor', 0);
                    """)
        }
        migrator.registerMigration("v2: conflict log") { db in
            try db.execute(
                sql: """
                    CREATE TABLE conflicts (
                        number INTEGER PRIMARY KEY AUTOINCREMENT,
                        collection TEXT NOT NULL,
                        id TEXT NOT NULL,
                        policy TEXT NOT NULL,
                        resolver TEXT,
                        local BLOB NOT NULL,
                        remote BLOB NOT NULL,
                        winner BLOB NOT NULL
                    );
                    """)
        }
        return migrator
    }

    /// Maps any error from GRDB or SQLite to a ``WeftError``.
    package static func map(_ error: any Error, path: String) -> WeftError {
        if let weft = error as? WeftError { return weft }
        if let database = error as? DatabaseError {
            switch database.resultCode {
            case .SQLITE_CORRUPT, .SQLITE_NOTADB:
                return .corrupt("\(path) is damaged or not a Weft database: \(database.message ?? "\(database)")")
            default:
                return .storage("SQLite error on \(path): \(database)")
            }
        }
        return .storage("\(error)")
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(WeftError) -> T {
        do { return try await pool.read(body) } catch { throw Self.map(error, path: path) }
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(WeftError) -> T {
        do { return try await pool.write(body) } catch { throw Self.map(error, path: path) }
    }

    package static func decodeRecord(_ data: Data, _ what: String) throws -> DocumentRecord {
        do {
            return try DocumentRecord(encoded: [UInt8](data))
        } catch {
            throw WeftError.corrupt("the stored record of \(what) does not decode: \(error)")
        }
    }

    /// A column's value, or ``Weft/WeftError/Kind/corrupt`` if it is missing or of another type
    /// (GRDB's subscripts would trap on a damaged file).
    package static func column<T: DatabaseValueConvertible>(_ row: Row, _ name: String, _ type: T.Type) throws -> T {
        do {
            return try row.decode(T.self, forColumn: name)
        } catch {
            throw WeftError.corrupt("column \(name) does not hold a \(T.self): \(error)")
        }
    }

    /// A non-negative integer from the meta table; anything else is ``Weft/WeftError/Kind/corrupt``.
    static func metaInteger(_ db: Database, _ key: String) throws -> Int {
        guard let row = try Row.fetchOne(db, sql: "SELECT value, typeof(value) AS type FROM meta WHERE key = ?", arguments: [key])
        else { throw WeftError.corrupt("the meta value \(key) is missing") }
        guard try column(row, "type", String.self) == "integer" else {
            throw WeftError.corrupt("the meta value \(key) is not an integer")
        }
        let value = try column(row, "value", Int.self)
        guard value >= 0 else { throw WeftError.corrupt("the meta value \(key) is negative") }
        return value
    }

    /// A conflict policy as the `policy` and `resolver` columns of a conflict log.
    package static func policyColumns(_ policy: ConflictPolicy) -> (policy: String, resolver: String?) {
        switch policy {
        case .lastWriterWins: return ("lww", nil)
        case .crdt: return ("crdt", nil)
        case .custom(let name): return ("custom", name)
        }
    }

    /// The conflict policy stored in a row's `policy` and `resolver` columns.
    package static func policy(_ row: Row) throws -> ConflictPolicy {
        switch try column(row, "policy", String.self) {
        case "lww": return .lastWriterWins
        case "crdt": return .crdt
        case "custom": return .custom(resolver: try column(row, "resolver", String.self))
        case let other: throw WeftError.corrupt("unknown conflict policy \(other.debugDescription) in a conflict log")
        }
    }

    package static func key(_ row: Row) throws -> DocumentKey {
        do {
            return DocumentKey(
                collection: try CollectionName(try column(row, "collection", String.self)),
                id: try DocumentID(try column(row, "id", String.self)))
        } catch {
            throw WeftError.corrupt("a stored key is invalid: \(error)")
        }
    }

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
            return metadata
        }
    }

    public func saveLastStamp(_ stamp: HLCTimestamp) async throws(WeftError) {
        let bytes = Data(stamp.encoded())
        try await write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_stamp', ?)", arguments: [bytes])
        }
    }

    public func setPullCursor(_ cursor: UInt64) async throws(WeftError) {
        guard let value = Int64(exactly: cursor) else { throw .invalidArgument("pull cursor \(cursor) is out of range") }
        try await write { db in
            try db.execute(
                sql: "UPDATE meta SET value = max(value, ?) WHERE key = 'pull_cursor'", arguments: [value])
        }
    }

    public func record(for key: DocumentKey) async throws(WeftError) -> DocumentRecord? {
        try await read { db in
            guard
                let data = try Data.fetchOne(
                    db, sql: "SELECT record FROM documents WHERE collection = ? AND id = ?",
                    arguments: [key.collection.rawValue, key.id.rawValue])
            else { return nil }
            return try Self.decodeRecord(data, "\(key)")
        }
    }

    public func records(for keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey: DocumentRecord] {
        do {
            return try readBlocking { db in
                let statement = try db.cachedStatement(sql: "SELECT record FROM documents WHERE collection = ? AND id = ?")
                var result = [DocumentKey: DocumentRecord](minimumCapacity: keys.count)
                for key in keys where result[key] == nil {
                    if let data = try Data.fetchOne(statement, arguments: [key.collection.rawValue, key.id.rawValue]) {
                        result[key] = try Self.decodeRecord(data, "\(key)")
                    }
                }
                return result
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func records(in collection: CollectionName, where filter: DocumentFilter, limit: Int?) async throws(WeftError)
        -> [(id: DocumentID, record: DocumentRecord)]
    {
        let rows = try await read { db in
            var sql = "SELECT id, record, deleted FROM documents WHERE collection = ?"
            var arguments: StatementArguments = [collection.rawValue]
            if !filter.includeDeleted { sql += " AND deleted = 0" }
            if let prefix = filter.idPrefix {
                sql += " AND substr(id, 1, ?) = ?"
                arguments += [prefix.unicodeScalars.count, prefix]
            }
            sql += " ORDER BY id"
            var result = [(DocumentID, DocumentRecord)]()
            let cursor = try Row.fetchCursor(db, sql: sql, arguments: arguments)
            while let row = try cursor.next() {
                let rawID = try Self.column(row, "id", String.self)
                guard let id = try? DocumentID(rawID) else { throw WeftError.corrupt("stored id \(rawID.debugDescription) is invalid") }
                let record = try Self.decodeRecord(try Self.column(row, "record", Data.self), "\(collection)/\(rawID)")
                guard filter.matches(id, record) else { continue }
                result.append((id, record))
                if let limit, result.count >= limit { break }
            }
            return result
        }
        return rows.map { (id: $0.0, record: $0.1) }
    }

    // MARK: ChangeQueue

    public func entries() async throws(WeftError) -> [QueueEntry] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT seq, collection, id, delta, bytes FROM queue ORDER BY seq").map(Self.entry)
        }
    }

    static func entry(_ row: Row) throws -> QueueEntry {
        let key = try key(row)
        let delta = try decodeRecord(try column(row, "delta", Data.self), "the queue entry for \(key)")
        let sequence = try column(row, "seq", Int64.self)
        guard sequence > 0 else { throw WeftError.corrupt("queue sequence \(sequence) is not positive") }
        return QueueEntry(
            sequence: UInt64(sequence), key: key, delta: delta, byteCount: try column(row, "bytes", Int.self))
    }

    public func totalBytes() async throws(WeftError) -> Int {
        try await read { db in try Self.metaInteger(db, "queue_bytes") }
    }

    public func nextBatch(maxBytes: Int, maxEntries: Int) async throws(WeftError) -> [QueueEntry] {
        return try await write { db in
            let after = self.inFlightThrough.withLock { $0 }
            let cursor = try Row.fetchCursor(
                db, sql: "SELECT seq, collection, id, delta, bytes FROM queue WHERE seq > ? ORDER BY seq LIMIT ?",
                arguments: [Int64(after), max(1, maxEntries)])
            var batch = [QueueEntry]()
            var size = 0
            while let row = try cursor.next() {
                let bytes = try Self.column(row, "bytes", Int.self)
                if !batch.isEmpty && size + bytes > maxBytes { break }
                batch.append(try Self.entry(row))
                size += bytes
            }
            if let last = batch.last { self.inFlightThrough.withLock { $0 = last.sequence } }
            return batch
        }
    }

    public func acknowledge(through sequence: UInt64) async throws(WeftError) {
        guard let bound = Int64(exactly: sequence) else { throw .invalidArgument("sequence \(sequence) is out of range") }
        try await write { db in
            let removed = try Int.fetchOne(db, sql: "SELECT COALESCE(SUM(bytes), 0) FROM queue WHERE seq <= ?", arguments: [bound]) ?? 0
            try db.execute(sql: "DELETE FROM queue WHERE seq <= ?", arguments: [bound])
            try db.execute(sql: "UPDATE meta SET value = value - ? WHERE key = 'queue_bytes'", arguments: [removed])
        }
    }

    public func releaseInFlight() async throws(WeftError) {
        try await write { _ in self.inFlightThrough.withLock { $0 = 0 } }
    }

    // MARK: ReplicaStorage

    public func commitLocalWrites(
        reading keys: [DocumentKey], maxQueueBytes: Int,
        _ transform: @Sendable ([DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) async throws(WeftError) -> [UInt64] {
        do {
            // A blocking write: one short transaction, no extra hop to GRDB's queue and back.
            return try writeBlocking { db in try self.commit(db, keys, maxQueueBytes, transform) }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    /// GRDB's synchronous read (an async context would pick the async overload).
    private func readBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.read(body) }

    /// GRDB's synchronous write (an async context would pick the async overload).
    private func writeBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.write(body) }

    private func commit(
        _ db: Database, _ keys: [DocumentKey], _ maxQueueBytes: Int,
        _ transform: ([DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) throws -> [UInt64] {
        var current = [DocumentKey: DocumentRecord]()
        let readRecord = try db.cachedStatement(sql: "SELECT record FROM documents WHERE collection = ? AND id = ?")
        for key in keys where current[key] == nil {
            if let data = try Data.fetchOne(readRecord, arguments: [key.collection.rawValue, key.id.rawValue]) {
                current[key] = try Self.decodeRecord(data, "\(key)")
            }
        }
        let writes = try transform(current)
        let start = try Self.metaInteger(db, "queue_bytes")
        var total = start
        let after = Int64(inFlightThrough.withLock { $0 })
        let findPending = try db.cachedStatement(
            sql: "SELECT seq, delta, bytes FROM queue WHERE collection = ? AND id = ? AND seq > ? ORDER BY seq DESC LIMIT 1")
        let updatePending = try db.cachedStatement(sql: "UPDATE queue SET delta = ?, bytes = ? WHERE seq = ?")
        let insertEntry = try db.cachedStatement(sql: "INSERT INTO queue (collection, id, delta, bytes) VALUES (?, ?, ?, ?)")
        let upsertDocument = try db.cachedStatement(
            sql: "INSERT OR REPLACE INTO documents (collection, id, record, deleted) VALUES (?, ?, ?, ?)")
        var sequences = [UInt64]()
        sequences.reserveCapacity(writes.count)
        for write in writes {
            let key = write.key
            if let pending = try Row.fetchOne(findPending, arguments: [key.collection.rawValue, key.id.rawValue, after]) {
                // Coalesce: join the new delta into the document's pending entry.
                let joined = try Self.decodeRecord(try Self.column(pending, "delta", Data.self), "the queue entry for \(key)")
                    .merged(with: write.delta)
                let joinedBytes = joined.encoded()
                let size = QueueEntry.byteCount(key: key, deltaBytes: joinedBytes.count)
                let growth = size - (try Self.column(pending, "bytes", Int.self))
                guard total + growth <= maxQueueBytes else {
                    throw WeftError.queueFull(current: start, needed: total + growth - start, limit: maxQueueBytes)
                }
                let sequence = try Self.column(pending, "seq", Int64.self)
                try updatePending.execute(arguments: [Data(joinedBytes), size, sequence])
                total += growth
                sequences.append(UInt64(sequence))
            } else {
                let deltaBytes = write.delta.encoded()
                let size = QueueEntry.byteCount(key: key, deltaBytes: deltaBytes.count)
                guard total + size <= maxQueueBytes else {
                    throw WeftError.queueFull(current: start, needed: total + size - start, limit: maxQueueBytes)
                }
                try insertEntry.execute(arguments: [key.collection.rawValue, key.id.rawValue, Data(deltaBytes), size])
                total += size
                sequences.append(UInt64(db.lastInsertedRowID))
            }
            try upsertDocument.execute(
                arguments: [key.collection.rawValue, key.id.rawValue, Data(write.record.encoded()), write.record.isDeleted])
        }
        if total != start {
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'queue_bytes'", arguments: [total])
        }
        if let stamp = writes.map(\.delta.lastStamp).max() {
            // In the same transaction, so a restarted clock always resumes above every stored write.
            try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_stamp', ?)")
                .execute(arguments: [Data(stamp.encoded())])
        }
        return sequences
    }

    public func applyRemoteChanges(
        _ changes: [(key: DocumentKey, record: DocumentRecord)], through cursor: UInt64,
        _ merge: @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        )
    ) async throws(WeftError) -> [AppliedRemoteChange] {
        guard let cursorValue = Int64(exactly: cursor) else { throw .invalidArgument("pull cursor \(cursor) is out of range") }
        do {
            return try writeBlocking { db in
                let readRecord = try db.cachedStatement(sql: "SELECT record FROM documents WHERE collection = ? AND id = ?")
                let upsertDocument = try db.cachedStatement(
                    sql: "INSERT OR REPLACE INTO documents (collection, id, record, deleted) VALUES (?, ?, ?, ?)")
                let logConflict = try db.cachedStatement(
                    sql: "INSERT INTO conflicts (collection, id, policy, resolver, local, remote, winner) VALUES (?, ?, ?, ?, ?, ?, ?)")
                var applied = [AppliedRemoteChange]()
                var known = [DocumentKey: DocumentRecord]()
                for change in changes {
                    let key = change.key
                    var local = known[key]
                    if local == nil, let data = try Data.fetchOne(readRecord, arguments: [key.collection.rawValue, key.id.rawValue]) {
                        local = try Self.decodeRecord(data, "\(key)")
                    }
                    let result = try merge(local, key, change.record)
                    if result.kind != .unchanged || result.record != local {
                        try upsertDocument.execute(
                            arguments: [key.collection.rawValue, key.id.rawValue, Data(result.record.encoded()), result.record.isDeleted])
                    }
                    if let conflict = result.conflict {
                        let (policy, resolver) = Self.policyColumns(conflict.policy)
                        try logConflict.execute(arguments: [
                            key.collection.rawValue, key.id.rawValue, policy, resolver, Data(conflict.local.encoded()),
                            Data(conflict.remote.encoded()), Data(conflict.winner.encoded()),
                        ])
                    }
                    known[key] = result.record
                    applied.append(AppliedRemoteChange(key: key, record: result.record, kind: result.kind))
                }
                try db.execute(sql: "UPDATE meta SET value = max(value, ?) WHERE key = 'pull_cursor'", arguments: [cursorValue])
                return applied
            }
        } catch {
            throw Self.map(error, path: path)
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
    public func synchronousSetting() async throws(WeftError) -> Int {
        try await write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    /// Runs SQLite's `PRAGMA integrity_check` and returns its findings (`["ok"]` when sound).
    public func integrityCheck() async throws(WeftError) -> [String] {
        try await read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
    }
}

extension Replica {
    /// Opens the replica stored at `path`, creating the database on first use.
    ///
    /// The ``ReplicaID`` is created once, with the database, and kept in it.
    public static func open(
        path: String,
        configuration: ReplicaConfiguration = ReplicaConfiguration(),
        timeSource: any PhysicalTimeSource = SystemTimeSource()
    ) async throws(WeftError) -> Replica {
        try configuration.validate()
        let storage = try SQLiteReplicaStorage(path: path, durability: configuration.durability)
        return try await Replica(storage: storage, configuration: configuration, timeSource: timeSource)
    }
}
