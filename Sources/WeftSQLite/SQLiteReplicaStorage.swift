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
    /// inside write transactions, which GRDB serialises, so reads there see a stable value. It is
    /// per instance: open one storage per file in a process.
    private let inFlightThrough = Mutex<UInt64>(0)
    /// The queue counters as of the last committed write transaction (nil until the first).
    private let writerState = Mutex<WriterState?>(nil)
    /// Whether large commits first try writing without reading their keys (see ``commit(_:_:_:_:_:)``).
    private let speculating = Mutex(true)
    /// How often large commits assumed their keys new, and how often that proved wrong.
    private let assumptionCounts = Mutex(AssumptionCounts())

    /// How often commits assumed their keys were not stored (``attempts``), and how often one
    /// was after all and the commit ran again reading them (``misses``).
    package struct AssumptionCounts: Sendable, Equatable {
        package var attempts = 0
        package var misses = 0
        package init(attempts: Int = 0, misses: Int = 0) {
            self.attempts = attempts
            self.misses = misses
        }
    }

    /// The counts of commits that assumed their keys new, since this storage was opened.
    package var assumptions: AssumptionCounts { assumptionCounts.withLock { $0 } }
    /// The database file.
    public let path: String

    /// Opens (creating if needed) the database at `path`.
    public init(path: String, durability: Durability = .normal) throws(WeftError) {
        self.path = path
        var configuration = Configuration()
        configuration.label = "weft.replica"
        do {
            let migrator = Self.migrator
            try Self.refuseNewerSchema(path: path, migrator: migrator)
            pool = try DatabasePool(path: path, configuration: configuration)
            try migrator.migrate(pool)
            try pool.read { db in try Self.verifySchema(db, path: path) }
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
        migrator.registerMigration("v3: the queue lives in the documents table") { db in
            // A queue entry no longer holds a delta: it marks its document as waiting, and a push
            // sends the document's record. The newest entry of each document moves into the
            // document's row; older entries (written again while in flight) go to `superseded`.
            try db.execute(
                sql: """
                    ALTER TABLE documents ADD COLUMN queued_seq INTEGER;
                    ALTER TABLE documents ADD COLUMN queued_bytes INTEGER NOT NULL DEFAULT 0;
                    CREATE TABLE superseded (
                        seq INTEGER PRIMARY KEY,
                        collection TEXT NOT NULL,
                        id TEXT NOT NULL,
                        bytes INTEGER NOT NULL
                    );
                    UPDATE documents SET queued_seq = (
                        SELECT max(q.seq) FROM queue q WHERE q.collection = documents.collection AND q.id = documents.id);
                    UPDATE documents
                        SET queued_bytes = length(record) + length(CAST(collection AS BLOB)) + length(CAST(id AS BLOB))
                        WHERE queued_seq IS NOT NULL;
                    INSERT INTO superseded (seq, collection, id, bytes)
                        SELECT q.seq, q.collection, q.id, q.bytes FROM queue q
                        JOIN documents d ON d.collection = q.collection AND d.id = q.id
                        WHERE q.seq < d.queued_seq;
                    INSERT OR REPLACE INTO meta (key, value) VALUES
                        ('next_sequence', COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'queue'), 0) + 1),
                        ('queue_bytes',
                            (SELECT COALESCE(sum(queued_bytes), 0) FROM documents WHERE queued_seq IS NOT NULL)
                            + (SELECT COALESCE(sum(bytes), 0) FROM superseded));
                    DROP TABLE queue;
                    CREATE INDEX documents_queued ON documents (queued_seq) WHERE queued_seq IS NOT NULL;
                    """)
        }
        migrator.registerMigration("v4: dead letters") { db in
            try db.execute(
                sql: """
                    CREATE TABLE dead_letters (
                        number INTEGER PRIMARY KEY AUTOINCREMENT,
                        seq INTEGER NOT NULL,
                        collection TEXT NOT NULL,
                        id TEXT NOT NULL,
                        record BLOB NOT NULL,
                        reason TEXT NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v5: queue counters are derived") { db in
            // The queue's byte total is summed from the entries when a storage first writes, and
            // kept in memory; `next_sequence` stays, as the floor for numbers handed out, written
            // when entries leave the queue. Neither is written on every commit any more.
            try db.execute(sql: "DELETE FROM meta WHERE key = 'queue_bytes'")
        }
        return migrator
    }

    /// Every table and column the storage reads or writes, as a query that reads no row.
    static let schemaProbes = [
        "SELECT collection, id, record, deleted, queued_seq, queued_bytes FROM documents LIMIT 0",
        "SELECT key, value FROM meta LIMIT 0",
        "SELECT seq, collection, id, bytes FROM superseded LIMIT 0",
        "SELECT number, collection, id, policy, resolver, local, remote, winner FROM conflicts LIMIT 0",
        "SELECT number, seq, collection, id, record, reason FROM dead_letters LIMIT 0",
    ]

    /// Throws ``Weft/WeftError/Kind/corrupt`` if a table or column the storage uses is missing,
    /// as when damage reaches the schema itself: every migration is recorded as applied, yet a
    /// table has lost its name. Without this check the first statement would fail with a plain
    /// SQLite error ("no such table").
    static func verifySchema(_ db: Database, path: String) throws {
        for sql in schemaProbes {
            do {
                _ = try db.makeStatement(sql: sql)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_ERROR {
                throw WeftError.corrupt("\(path) is damaged or not a Weft database: \(error.message ?? "\(error)")")
            }
        }
    }

    /// Throws ``Weft/WeftError/Kind/schemaTooNew`` if the database at `path` has migrations
    /// `migrator` does not know. It looks through a read-only connection before anything opens
    /// the file for writing, so a database from a newer Weft is left exactly as it was.
    package static func refuseNewerSchema(path: String, migrator: DatabaseMigrator) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
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
        try decodeRecord([UInt8](data), what)
    }

    package static func decodeRecord(_ bytes: [UInt8], _ what: String) throws -> DocumentRecord {
        do {
            return try DocumentRecord(encoded: bytes)
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
        let columns = policy.logColumns
        return (columns.policy, columns.argument)
    }

    /// The conflict policy stored in a row's `policy` and `resolver` columns.
    package static func policy(_ row: Row) throws -> ConflictPolicy {
        try ConflictPolicy(logColumns: try column(row, "policy", String.self), argument: try column(row, "resolver", String?.self))
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
        do {
            try transaction { db, counters in
                try db.execute(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_stamp', ?)", arguments: [bytes])
                counters.lease = stamp
            }
        } catch {
            throw Self.map(error, path: path)
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

    /// A document's newest entry, oldest first, after `after`: the row of the document itself.
    static let queuedDocumentsSQL = """
        SELECT queued_seq AS seq, collection, id, queued_bytes AS bytes, record FROM documents
        WHERE queued_seq > ? ORDER BY queued_seq LIMIT ?
        """
    /// Entries whose document was written again while they were in flight, oldest first.
    static let supersededSQL = """
        SELECT s.seq, s.collection, s.id, s.bytes, d.record FROM superseded s
        LEFT JOIN documents d ON d.collection = s.collection AND d.id = s.id
        WHERE s.seq > ? ORDER BY s.seq LIMIT ?
        """

    /// The oldest `limit` entries after sequence `after`, in sequence order: the two ordered
    /// sources (each read through its index, stopping at `limit`) merged.
    static func queueEntries(_ db: Database, after: UInt64, limit: Int) throws -> [QueueEntry] {
        let bound = Int64(clamping: after)
        let documents = try entries(RawStatement(db.cachedStatement(sql: queuedDocumentsSQL), in: db), after: bound, limit: limit)
        let superseded = try entries(RawStatement(db.cachedStatement(sql: supersededSQL), in: db), after: bound, limit: limit)
        if superseded.isEmpty { return documents }
        var merged = [QueueEntry]()
        merged.reserveCapacity(min(limit, documents.count + superseded.count))
        var i = 0
        var j = 0
        while merged.count < limit && (i < documents.count || j < superseded.count) {
            if j == superseded.count || (i < documents.count && documents[i].sequence < superseded[j].sequence) {
                merged.append(documents[i])
                i += 1
            } else {
                merged.append(superseded[j])
                j += 1
            }
        }
        return merged
    }

    public func entries() async throws(WeftError) -> [QueueEntry] {
        try await read { db in try Self.queueEntries(db, after: 0, limit: Int(Int32.max)) }
    }

    /// The entries a queue query (`seq, collection, id, bytes, record` after `?1`, at most `?2`)
    /// returns; a value of the wrong type or out of range is ``Weft/WeftError/Kind/corrupt``.
    static func entries(_ statement: RawStatement, after bound: Int64, limit: Int) throws -> [QueueEntry] {
        try statement.run { row in
            try row.bind(bound)
            try row.bind(Int64(limit))
            var entries = [QueueEntry]()
            while try row.step() {
                let sequence = try row.integer(0, "a queue sequence")
                let key: DocumentKey
                do {
                    key = DocumentKey(
                        collection: try CollectionName(try row.text(1, "a queued collection name")),
                        id: try DocumentID(try row.text(2, "a queued document id")))
                } catch let error as WeftError where error.kind == .corrupt {
                    throw error
                } catch {
                    throw WeftError.corrupt("a stored key is invalid: \(error)")
                }
                let bytes = try row.integer(3, "the byte count of queue entry \(sequence)")
                guard sequence > 0 else { throw WeftError.corrupt("queue sequence \(sequence) of \(key) is not positive") }
                guard bytes >= 0 else { throw WeftError.corrupt("the queue entry \(sequence) of \(key) counts \(bytes) bytes") }
                let record = try decodeRecord(try row.blob(4, "the record of \(key)"), "\(key)")
                entries.append(QueueEntry(sequence: UInt64(sequence), key: key, record: record, byteCount: Int(bytes)))
            }
            return entries
        }
    }

    public func count() async throws(WeftError) -> Int {
        try await read { db in
            try Int.fetchOne(
                db,
                sql: "SELECT (SELECT count(*) FROM documents WHERE queued_seq IS NOT NULL) + (SELECT count(*) FROM superseded)"
            ) ?? 0
        }
    }

    public func totalBytes() async throws(WeftError) -> Int {
        // Summed in a read, not taken from the writer's counters: a read needs no lock, so
        // `weft status` works while an app holds the database.
        do {
            return try readBlocking { db in try Self.sumQueue(db).bytes }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func nextBatch(maxBytes: Int, maxEntries: Int) async throws(WeftError) -> [QueueEntry] {
        do {
            // In a write, so it is ordered with local writes: one that starts after this sees the
            // entries in flight and does not coalesce into them.
            return try writeBlocking { db in
                let after = self.inFlightThrough.withLock { $0 }
                var batch = [QueueEntry]()
                var size = 0
                for entry in try Self.queueEntries(db, after: after, limit: max(1, maxEntries)) {
                    if !batch.isEmpty && size + entry.byteCount > maxBytes { break }
                    batch.append(entry)
                    size += entry.byteCount
                }
                if let last = batch.last { self.inFlightThrough.withLock { $0 = last.sequence } }
                return batch
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func acknowledge(through sequence: UInt64) async throws(WeftError) {
        let bound = Int64(clamping: sequence)
        do {
            try transaction { db, counters in
                let removed =
                    (try Int.fetchOne(
                        db.cachedStatement(
                            sql: "SELECT COALESCE(sum(queued_bytes), 0) FROM documents WHERE queued_seq <= ?"),
                        arguments: [bound]) ?? 0)
                    + (try Int.fetchOne(
                        db.cachedStatement(sql: "SELECT COALESCE(sum(bytes), 0) FROM superseded WHERE seq <= ?"),
                        arguments: [bound]) ?? 0)
                try db.cachedStatement(sql: "UPDATE documents SET queued_seq = NULL, queued_bytes = 0 WHERE queued_seq <= ?")
                    .execute(arguments: [bound])
                try db.cachedStatement(sql: "DELETE FROM superseded WHERE seq <= ?").execute(arguments: [bound])
                guard counters.bytes >= removed else {
                    throw WeftError.corrupt("the queue counts \(counters.bytes) bytes, less than the entries acknowledged (\(removed))")
                }
                counters.bytes -= removed
                // Acknowledged numbers are never handed out again, even once no entry holds them.
                try Self.saveSequenceFloor(db, counters.next)
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func moveToDeadLetter(sequence: UInt64, reason: String) async throws(WeftError) {
        guard let bound = Int64(exactly: sequence) else { throw .invalidArgument("sequence \(sequence) is out of range") }
        do {
            try transaction { db, counters in
                let found: Row
                if let row = try Row.fetchOne(
                    db, sql: "SELECT collection, id, record, queued_bytes AS bytes FROM documents WHERE queued_seq = ?", arguments: [bound])
                {
                    found = row
                    try db.execute(
                        sql: "UPDATE documents SET queued_seq = NULL, queued_bytes = 0 WHERE queued_seq = ?", arguments: [bound])
                } else if let row = try Row.fetchOne(
                    db,
                    sql: """
                        SELECT s.collection, s.id, d.record, s.bytes FROM superseded s
                        LEFT JOIN documents d ON d.collection = s.collection AND d.id = s.id WHERE s.seq = ?
                        """, arguments: [bound])
                {
                    found = row
                    try db.execute(sql: "DELETE FROM superseded WHERE seq = ?", arguments: [bound])
                } else {
                    throw WeftError.invalidArgument("no queue entry has sequence \(sequence)")
                }
                let bytes = try Self.column(found, "bytes", Int.self)
                try db.execute(
                    sql: "INSERT INTO dead_letters (seq, collection, id, record, reason) VALUES (?, ?, ?, ?, ?)",
                    arguments: [
                        bound, try Self.column(found, "collection", String.self), try Self.column(found, "id", String.self),
                        try Self.column(found, "record", Data.self), reason,
                    ])
                counters.bytes = max(0, counters.bytes - bytes)
                try Self.saveSequenceFloor(db, counters.next)
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    public func deadLetters(limit: Int) async throws(WeftError) -> [DeadLetter] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, collection, id, record, reason FROM dead_letters ORDER BY number DESC LIMIT ?",
                arguments: [max(0, limit)]
            ).map { row in
                let key = try Self.key(row)
                let sequence = try Self.column(row, "seq", Int64.self)
                guard sequence > 0 else { throw WeftError.corrupt("dead letter sequence \(sequence) is not positive") }
                return DeadLetter(
                    sequence: UInt64(sequence), key: key,
                    record: try Self.decodeRecord(try Self.column(row, "record", Data.self), "the dead letter of \(key)"),
                    reason: try Self.column(row, "reason", String.self))
            }
        }
    }

    public func releaseInFlight() async throws(WeftError) {
        do {
            // In a write, so it is ordered with local writes.
            try await write { _ in self.inFlightThrough.withLock { $0 = 0 } }
        } catch {
            // Even if the database cannot be written now, nothing may stay marked in flight:
            // those entries would be skipped, and writes would not join them, until a restart.
            inFlightThrough.withLock { $0 = 0 }
            throw error
        }
    }

    // MARK: ReplicaStorage

    public nonisolated(nonsending) func commitLocalWrites(
        reading keys: [DocumentKey], maxQueueBytes: Int,
        _ transform: @Sendable ([DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) async throws(WeftError) -> [UInt64] {
        do {
            // A blocking write: one short transaction, no extra hop to GRDB's queue and back.
            var guessNext: Bool?
            let sequences = try transaction { db, counters in
                try self.commit(db, &counters, keys, maxQueueBytes, guessNext: &guessNext, transform)
            }
            // Only a commit that reached the disk decides whether the next one guesses.
            if let guessNext { speculating.withLock { $0 = guessNext } }
            return sequences
        } catch {
            throw Self.map(error, path: path)
        }
    }

    /// GRDB's synchronous read (an async context would pick the async overload).
    private func readBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.read(body) }

    /// GRDB's synchronous write (an async context would pick the async overload).
    private func writeBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.write(body) }

    // MARK: Queue counters

    /// The queue's total bytes, the next sequence number and the clock lease, kept in memory
    /// between write transactions so a write reads and writes no `meta` row (a page per commit).
    ///
    /// They are derived state: loaded (``loadCounters(_:)``) from the queue itself on the first
    /// write transaction, and again whenever `PRAGMA data_version` shows another connection has
    /// committed since (another process, or a second storage on the file). Each write
    /// transaction works on a copy that replaces them only once it has committed, so a write
    /// that fails or is rolled back leaves them as they were.
    struct QueueCounters: Sendable {
        /// The sum of the entries' byte counts.
        var bytes: Int
        /// The next sequence number to hand out.
        var next: Int64
        /// The stored clock lease (meta `last_stamp`): no stamp above it has been committed.
        var lease: HLCTimestamp?
    }

    private struct WriterState: Sendable {
        var counters: QueueCounters
        /// The writer connection's `PRAGMA data_version` when `counters` were right.
        var dataVersion: Int64
    }

    /// How far ahead of a committed stamp the stored clock lease is set. A write stores the
    /// lease only when its stamp passes the previous one, so a replica writing all the time
    /// stores it about once a second; a restart within a second of a write resumes the clock at
    /// most this far ahead of the wall clock (a forward step the HLC absorbs).
    static let clockLeaseMilliseconds: UInt64 = 1_000

    /// Runs `body` in one write transaction (`BEGIN IMMEDIATE`) with the queue counters, and
    /// keeps the counters `body` leaves only if the transaction commits.
    private func transaction<T>(_ body: (Database, inout QueueCounters) throws -> T) throws -> T {
        try pool.writeWithoutTransaction { db in
            try Self.inImmediateTransaction(db) { () throws -> (T, WriterState) in
                let version = try Self.dataVersion(db)
                let known = writerState.withLock { state in state.flatMap { $0.dataVersion == version ? $0.counters : nil } }
                var counters = try known ?? Self.loadCounters(db)
                let result = try body(db, &counters)
                return (result, WriterState(counters: counters, dataVersion: version))
            } committed: { state in
                writerState.withLock { $0 = state }
            }
        }
    }

    /// Runs `work` between `BEGIN IMMEDIATE` and `COMMIT`, rolling back if anything throws, and
    /// hands the state it returns to `committed` once the commit succeeded.
    ///
    /// BEGIN and COMMIT run through cached statements: GRDB's `inTransaction` prepares both
    /// from SQL text on every call, a measurable part of a one-document write.
    private static func inImmediateTransaction<T>(
        _ db: Database, _ work: () throws -> (T, WriterState), committed: (WriterState) -> Void
    ) throws -> T {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
        let outcome: (T, WriterState)
        do {
            outcome = try work()
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
        } catch {
            // GRDB's rollback copes with a transaction SQLite already rolled back itself.
            if db.isInsideTransaction { try? db.rollback() }
            throw error
        }
        committed(outcome.1)
        return outcome.0
    }

    /// The writer connection's `PRAGMA data_version`: it changes when another connection commits.
    static func dataVersion(_ db: Database) throws -> Int64 {
        let statement = RawStatement(try db.cachedStatement(sql: "PRAGMA data_version"), in: db)
        return try statement.run { row in
            guard try row.step() else { throw WeftError.storage("PRAGMA data_version returned nothing") }
            return try row.integer(0, "data_version")
        }
    }

    /// Derives the queue counters from the stored queue: O(entries). Any entry whose sequence or
    /// byte count is not a positive (non-negative) integer is ``Weft/WeftError/Kind/corrupt``.
    static func loadCounters(_ db: Database) throws -> QueueCounters {
        let (bytes, highest) = try sumQueue(db)
        let floor = try metaInteger(db, "next_sequence")
        guard floor > 0 else { throw WeftError.corrupt("the meta value next_sequence is not positive") }
        var lease: HLCTimestamp?
        if let data = try Data.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'last_stamp'") {
            do {
                lease = try HLCTimestamp(encoded: [UInt8](data))
            } catch {
                throw WeftError.corrupt("the stored clock does not decode: \(error)")
            }
        }
        return QueueCounters(bytes: bytes, next: max(Int64(floor), highest &+ 1), lease: lease)
    }

    /// The queue's total bytes and highest sequence, summed over its entries: O(entries).
    static func sumQueue(_ db: Database) throws -> (bytes: Int, highest: Int64) {
        var bytes = 0
        var highest: Int64 = 0
        for sql in [
            "SELECT queued_seq, queued_bytes FROM documents WHERE queued_seq IS NOT NULL",
            "SELECT seq, bytes FROM superseded",
        ] {
            let statement = RawStatement(try db.makeStatement(sql: sql), in: db)
            try statement.run { row in
                while try row.step() {
                    let sequence = try row.integer(0, "a queue sequence")
                    let count = try row.integer(1, "the byte count of queue entry \(sequence)")
                    guard sequence > 0, count >= 0 else {
                        throw WeftError.corrupt("the queue entry \(sequence) (\(count) bytes) is invalid")
                    }
                    highest = max(highest, sequence)
                    bytes += Int(count)
                }
            }
        }
        return (bytes, highest)
    }

    /// Stores `next` as the lowest sequence number a restarted replica may hand out: after an
    /// acknowledgement or a dead letter no entry may hold the highest number used.
    static func saveSequenceFloor(_ db: Database, _ next: Int64) throws {
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('next_sequence', max(?, COALESCE((SELECT value FROM meta WHERE key = 'next_sequence'), 0)))")
            .execute(arguments: [next])
    }

    /// Stores a clock lease above `newest` if `newest` passes the current one.
    static func extendLease(_ db: Database, _ counters: inout QueueCounters, past newest: HLCTimestamp) throws {
        if let lease = counters.lease, newest <= lease { return }
        let (wall, overflow) = newest.wallMilliseconds.addingReportingOverflow(clockLeaseMilliseconds)
        let lease = overflow ? newest : HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: newest.replica)
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_stamp', ?)")
            .execute(arguments: [Data(lease.encoded())])
        counters.lease = lease
    }

    /// What a transaction knows of a document's row: whether it exists, and its newest queue entry.
    private struct QueueSlot {
        var exists: Bool
        var sequence: Int64?
        var bytes: Int
    }

    /// Runs `body` with the UTF-8 of `key`'s collection and id, for binding without a copy.
    static func withUTF8<R>(
        _ key: DocumentKey, _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) throws -> R
    ) throws -> R {
        var collection = key.collection.rawValue
        var id = key.id.rawValue
        return try collection.withUTF8 { c in try id.withUTF8 { i in try body(c, i) } }
    }

    static let readRowSQL = "SELECT record, queued_seq, queued_bytes FROM documents WHERE collection = ? AND id = ?"
    static let insertDocumentSQL =
        "INSERT INTO documents (collection, id, record, deleted, queued_seq, queued_bytes) VALUES (?, ?, ?, ?, ?, ?)"
    static let updateCoalescedSQL = "UPDATE documents SET record = ?, deleted = ?, queued_bytes = ? WHERE collection = ? AND id = ?"
    static let updateQueuedSQL =
        "UPDATE documents SET record = ?, deleted = ?, queued_seq = ?, queued_bytes = ? WHERE collection = ? AND id = ?"

    /// Commits of at least this many keys may skip reading them (``commit(_:_:_:_:_:)``).
    static let speculationMinimumKeys = 8

    /// A write made on the assumption that its document was not stored found it stored.
    private struct SpeculationMissed: Error {}

    /// Reads the records `keys` name, runs `transform` on them, and stores its writes with their
    /// queue entries.
    ///
    /// **Creating without reading.** Reading a key that is not stored costs a lookup that finds
    /// nothing, a large part of a batched create. So while commits keep writing only documents
    /// that are not stored yet, a commit naming ``speculationMinimumKeys`` or more keys (repeats
    /// included) first runs `transform` as if none were stored, inside a savepoint: each write
    /// is a plain `INSERT`, which fails if the row exists, and a key `transform` did not write
    /// is looked up. If any key turns out to be stored, or anything fails, the savepoint is
    /// rolled back and the commit runs again with the keys read. `transform` is a pure function
    /// of the records it gets, so only its last run counts. A storage starts out guessing; a
    /// miss turns guessing off, and a large commit that read its keys, found none stored and
    /// reached the disk turns it back on.
    private func commit(
        _ db: Database, _ counters: inout QueueCounters, _ keys: [DocumentKey], _ maxQueueBytes: Int,
        guessNext: inout Bool?, _ transform: ([DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) throws -> [UInt64] {
        let large = keys.count >= Self.speculationMinimumKeys
        if large, speculating.withLock({ $0 }) {
            var attempt = counters
            var unread = false
            assumptionCounts.withLock { $0.attempts += 1 }
            try db.cachedStatement(sql: "SAVEPOINT weft_assume_new").execute()
            do {
                let sequences = try commit(db, &attempt, keys, maxQueueBytes, assumingNew: true, anyStored: &unread, transform)
                try db.cachedStatement(sql: "RELEASE weft_assume_new").execute()
                counters = attempt
                return sequences
            } catch {
                assumptionCounts.withLock { $0.misses += 1 }
                speculating.withLock { $0 = false }
                // Some errors (I/O, memory, interrupt) make SQLite roll the whole transaction
                // back, savepoint included: then that error is the one to report.
                guard db.isInsideTransaction else { throw error }
                do {
                    try db.cachedStatement(sql: "ROLLBACK TO weft_assume_new").execute()
                    try db.cachedStatement(sql: "RELEASE weft_assume_new").execute()
                } catch let rollbackError {
                    // A miss is not worth reporting; SQLite's own rollback error would be.
                    throw db.isInsideTransaction || error is SpeculationMissed ? rollbackError : error
                }
            }
        }
        var anyStored = false
        let sequences = try commit(db, &counters, keys, maxQueueBytes, assumingNew: false, anyStored: &anyStored, transform)
        // The next large commit assumes its keys new if this one found none stored (applied by
        // the caller once this commit is on disk).
        if large { guessNext = !anyStored }
        return sequences
    }

    /// The commit itself; `anyStored` tells whether reading found any of `keys` stored.
    private func commit(
        _ db: Database, _ counters: inout QueueCounters, _ keys: [DocumentKey], _ maxQueueBytes: Int,
        assumingNew: Bool, anyStored: inout Bool, _ transform: ([DocumentKey: DocumentRecord]) throws(WeftError) -> [LocalWrite]
    ) throws -> [UInt64] {
        var current = [DocumentKey: DocumentRecord](minimumCapacity: keys.count)
        // Each distinct key's row, in order of first appearance (`KeyNumbering`: one hash lookup
        // per key); `first[i]` is the slot of `keys[i]`, so a write to `keys[i]` finds its slot
        // by position.
        var slots = [QueueSlot]()
        slots.reserveCapacity(keys.count)
        var numbering = KeyNumbering(capacity: keys.count)
        var first = [Int]()
        first.reserveCapacity(keys.count)
        let readRow = RawStatement(try db.cachedStatement(sql: Self.readRowSQL), in: db)
        func read(_ key: DocumentKey, decoding: Bool) throws -> QueueSlot {
            try Self.withUTF8(key) { collection, id in try readRow.run { row in
                try row.bind(borrowingText: collection)
                try row.bind(borrowingText: id)
                guard try row.step() else { return QueueSlot(exists: false, sequence: nil, bytes: 0) }
                if decoding { current[key] = try Self.decodeRecord(try row.blob(0, "the record of \(key)"), "\(key)") }
                let sequence = row.isNull(1) ? nil : try row.integer(1, "the queue sequence of \(key)")
                let bytes = try row.integer(2, "the queued bytes of \(key)")
                if let sequence, sequence <= 0 || bytes < 0 {
                    throw WeftError.corrupt("the queue entry \(sequence) of \(key) is invalid")
                }
                return QueueSlot(exists: true, sequence: sequence, bytes: Int(bytes))
            } }
        }
        for key in keys {
            let slot = numbering.number(of: key)
            if slot == slots.count {
                let row = assumingNew ? QueueSlot(exists: false, sequence: nil, bytes: 0) : try read(key, decoding: true)
                anyStored = anyStored || row.exists
                slots.append(row)
            }
            first.append(slot)
        }
        let writes = try transform(current)
        guard !writes.isEmpty else {
            // Nothing written proves nothing about the keys assumed new: run again, reading them.
            if assumingNew { throw SpeculationMissed() }
            return []
        }
        let start = counters.bytes
        var total = start
        var next = counters.next
        let inFlight = Int64(clamping: inFlightThrough.withLock { $0 })
        let insertDocument = RawStatement(try db.cachedStatement(sql: Self.insertDocumentSQL), in: db)
        let updateCoalesced = RawStatement(try db.cachedStatement(sql: Self.updateCoalescedSQL), in: db)
        let updateQueued = RawStatement(try db.cachedStatement(sql: Self.updateQueuedSQL), in: db)
        let supersede = try db.cachedStatement(sql: "INSERT INTO superseded (seq, collection, id, bytes) VALUES (?, ?, ?, ?)")
        var sequences = [UInt64]()
        sequences.reserveCapacity(writes.count)
        var newest = writes[0].record.lastStamp
        // One buffer for every record of the transaction: SQLite copies what it stores.
        var encoder = BinaryWriter(reservingCapacity: 512)
        for index in writes.indices {
            let key = writes[index].key
            let slot: Int
            if index < keys.count, keys[index] == key {
                slot = first[index]
            } else {
                // A write to a key the transform was not given, or out of step with `keys`.
                slot = numbering.number(of: key)
                if slot == slots.count { slots.append(try read(key, decoding: false)) }
            }
            let old = slots[slot]
            BinaryFormat.encode(writes[index].record, into: &encoder)
            let encoded = encoder.bytes
            let size = QueueEntry.byteCount(key: key, recordBytes: encoded.count)
            let deleted = writes[index].record.isDeleted
            let sequence: Int64
            if let pending = old.sequence, pending > inFlight {
                // Coalesce: the pending entry keeps its number and now stands for the new record.
                let growth = size - old.bytes
                guard total + growth <= maxQueueBytes else {
                    throw WeftError.queueFull(current: start, needed: total + growth - start, limit: maxQueueBytes)
                }
                try Self.withUTF8(key) { collection, id in
                    try encoded.withUnsafeBytes { record in
                        try updateCoalesced.run { statement in
                            try statement.bind(borrowing: record)
                            try statement.bind(deleted)
                            try statement.bind(Int64(size))
                            try statement.bind(borrowingText: collection)
                            try statement.bind(borrowingText: id)
                            try statement.execute()
                        }
                    }
                }
                total += growth
                sequence = pending
            } else {
                guard total + size <= maxQueueBytes else {
                    throw WeftError.queueFull(current: start, needed: total + size - start, limit: maxQueueBytes)
                }
                if let inFlightEntry = old.sequence {
                    // The document's entry is in flight: it stays (acknowledging it must not drop
                    // this write), and the write gets a new entry.
                    try supersede.execute(arguments: [inFlightEntry, key.collection.rawValue, key.id.rawValue, old.bytes])
                }
                sequence = next
                next += 1
                try Self.withUTF8(key) { collection, id in
                    try encoded.withUnsafeBytes { record in
                        if old.exists {
                            try updateQueued.run { statement in
                                try statement.bind(borrowing: record)
                                try statement.bind(deleted)
                                try statement.bind(sequence)
                                try statement.bind(Int64(size))
                                try statement.bind(borrowingText: collection)
                                try statement.bind(borrowingText: id)
                                try statement.execute()
                            }
                        } else {
                            // Assuming new, a stored row fails this INSERT (its primary key).
                            try insertDocument.run { statement in
                                try statement.bind(borrowingText: collection)
                                try statement.bind(borrowingText: id)
                                try statement.bind(borrowing: record)
                                try statement.bind(deleted)
                                try statement.bind(sequence)
                                try statement.bind(Int64(size))
                                try statement.execute()
                            }
                        }
                    }
                }
                total += size
            }
            slots[slot] = QueueSlot(exists: true, sequence: sequence, bytes: size)
            sequences.append(UInt64(sequence))
            if writes[index].record.lastStamp > newest { newest = writes[index].record.lastStamp }
        }
        if assumingNew {
            // A key the transform did not write was assumed not stored; check.
            for (key, slot) in zip(keys, first) where !slots[slot].exists {
                if try read(key, decoding: false).exists { throw SpeculationMissed() }
            }
        }
        // A restarted clock resumes above every stored write: the lease covers the newest stamp.
        try Self.extendLease(db, &counters, past: newest)
        counters.bytes = total
        counters.next = next
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
            return try transaction { db, counters in
                let readRecord = try db.cachedStatement(sql: "SELECT record FROM documents WHERE collection = ? AND id = ?")
                // An upsert that keeps the row's queue columns: a pulled change never touches the
                // queue (a document waiting to be pushed stays queued, now with the merged record).
                let upsertDocument = try db.cachedStatement(
                    sql: """
                        INSERT INTO documents (collection, id, record, deleted) VALUES (?, ?, ?, ?)
                        ON CONFLICT (collection, id) DO UPDATE SET record = excluded.record, deleted = excluded.deleted
                        """)
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
                    if result.kind == .resolved {
                        try self.enqueueResolution(db, key, result.record, &counters)
                    }
                    applied.append(AppliedRemoteChange(key: key, record: result.record, kind: result.kind))
                }
                try db.execute(sql: "UPDATE meta SET value = max(value, ?) WHERE key = 'pull_cursor'", arguments: [cursorValue])
                return applied
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }

    /// Queues a resolution of siblings made while applying a pull, like a local write (coalescing
    /// into a pending entry, or a new entry after an in-flight one). It is not refused at
    /// `max_queue_bytes`: a pulled change is never refused, and the queue only ever holds
    /// whole records.
    private func enqueueResolution(
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
    /// The ``ReplicaID`` is created once, with the database, and kept in it. Every custom policy
    /// of `configuration` must name a resolver in `resolvers`.
    public static func open(
        path: String,
        configuration: ReplicaConfiguration = ReplicaConfiguration(),
        resolvers: ResolverRegistry = ResolverRegistry(),
        timeSource: any PhysicalTimeSource = SystemTimeSource()
    ) async throws(WeftError) -> Replica {
        try configuration.validate()
        try resolvers.validate(configuration)
        let storage = try SQLiteReplicaStorage(path: path, durability: configuration.durability)
        return try await Replica(storage: storage, configuration: configuration, resolvers: resolvers, timeSource: timeSource)
    }
}
