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
public final class SQLiteReplicaStorage: ReplicaStorage, IndexedStorage {
    let pool: DatabasePool
    /// The highest sequence handed out in a batch since open (0: nothing in flight). Changed only
    /// inside write transactions, which GRDB serialises, so reads there see a stable value. It is
    /// per instance: open one storage per file in a process.
    let inFlightThrough = Mutex<UInt64>(0)
    /// The queue counters as of the last committed write transaction (nil until the first).
    let writerState = Mutex<WriterState?>(nil)
    /// Whether large commits first try writing without reading their keys (see ``commit(_:_:_:_:_:)``).
    let speculating = Mutex(true)
    /// How often large commits assumed their keys new, and how often that proved wrong.
    let assumptionCounts = Mutex(AssumptionCounts())
    /// Large records decoded once (``DecodedRecords``).
    let decodedRecords = Mutex(DecodedRecords())
    /// The indexed collections (``IndexedStorage``): loaded from the registry on open, replaced
    /// by ``declareIndexes(_:presenter:)``.
    let indexState = Mutex(IndexState())

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

    /// The writer connection's page cache, in KiB (SQLite's default is 2,000). A write of a
    /// 2.5 MB record reads and writes more pages than the default holds, and each write of it
    /// then went to the file for pages it had just had: 19–20 ms for one field of a
    /// 100,000-field document with the default, 12–14 ms with this. Readers keep the default.
    static let writerCacheKiB = 16_384

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
            let indexes = try pool.read { db in
                try Self.verifySchema(db, path: path)
                return try Self.loadIndexes(db)
            }
            indexState.withLock { $0.collections = indexes }
            // GRDB sets synchronous = NORMAL when it switches the writer to WAL, so set the level
            // afterwards, on the one writer connection (the setting is per connection).
            let synchronous = durability == .full ? "FULL" : "NORMAL"
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = \(synchronous); PRAGMA cache_size = -\(Self.writerCacheKiB)")
            }
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
        migrator.registerMigration("v6: server bases") { db in
            // The last pulled record of a large document, which the server held exactly, and
            // its digest: pushes and pulls of the document travel as deltas over it. A table of
            // its own, not columns of `documents`: SQLite rewrites a whole row on every update,
            // and a local write must not copy the base again.
            try db.execute(
                sql: """
                    CREATE TABLE server_bases (
                        collection TEXT NOT NULL,
                        id TEXT NOT NULL,
                        digest INTEGER NOT NULL,
                        base BLOB NOT NULL,
                        PRIMARY KEY (collection, id)
                    );
                    """)
        }
        migrator.registerMigration("v7: counter floors and unconfirmed documents") { db in
            // Per collection, the highest counter this replica used in a record it forgot: its
            // writes in that collection count on from there. `unconfirmed`: created here and
            // neither pulled nor acknowledged since (``TombstoneCollecting``); rows stored before
            // count as confirmed.
            try db.execute(
                sql: """
                    CREATE TABLE counter_floors (
                        collection TEXT PRIMARY KEY NOT NULL,
                        counter INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    ALTER TABLE documents ADD COLUMN unconfirmed INTEGER NOT NULL DEFAULT 0;
                    """)
        }
        migrator.registerMigration("v8: large documents in parts") { db in
            // A large document edited locally keeps its record as an image (part 0) and the
            // patches of its writes since (parts 1, 2, …), and `documents.record` holds a stub
            // (``PartsStub``). The triggers drop a document's parts when its row goes or its
            // record is written whole, so every writer that does either (pulls, resyncs,
            // tombstone collection) keeps the parts right without knowing them.
            try db.execute(
                sql: """
                    CREATE TABLE document_parts (
                        collection TEXT NOT NULL, id TEXT NOT NULL, part INTEGER NOT NULL, bytes BLOB NOT NULL,
                        PRIMARY KEY (collection, id, part)
                    );
                    CREATE TRIGGER document_parts_gone AFTER DELETE ON documents
                    BEGIN
                        DELETE FROM document_parts WHERE collection = OLD.collection AND id = OLD.id;
                    END;
                    CREATE TRIGGER document_parts_replaced AFTER UPDATE OF record ON documents
                    WHEN substr(NEW.record, 1, 4) IS NOT x'FF575001'
                    BEGIN
                        DELETE FROM document_parts WHERE collection = NEW.collection AND id = NEW.id;
                    END;
                    """)
        }
        migrator.registerMigration("v9: declared indexes") { db in
            // The registry of indexed collections: each has tables `query_N` (and
            // `query_N_members`) made when a replica declares it (`SQLiteReplicaStorage+Indexes`).
            try db.execute(
                sql: """
                    CREATE TABLE query_indexes (
                        collection TEXT PRIMARY KEY NOT NULL, number INTEGER NOT NULL UNIQUE, fields TEXT NOT NULL
                    ) WITHOUT ROWID;
                    """)
        }
        return migrator
    }

    /// Every table and column the storage reads or writes, as a query that reads no row.
    static let schemaProbes = [
        "SELECT collection, id, record, deleted, queued_seq, queued_bytes, unconfirmed FROM documents LIMIT 0",
        "SELECT collection, id, digest, base FROM server_bases LIMIT 0",
        "SELECT collection, counter FROM counter_floors LIMIT 0",
        "SELECT collection, id, part, bytes FROM document_parts LIMIT 0",
        "SELECT key, value FROM meta LIMIT 0",
        "SELECT collection, number, fields FROM query_indexes LIMIT 0",
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
    /// the file for writing, so a database from a newer Weft is left exactly as it was. A
    /// migration identifier that is not text is damage: ``Weft/WeftError/Kind/corrupt``.
    package static func refuseNewerSchema(path: String, migrator: DatabaseMigrator) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        var probeConfiguration = Configuration()
        probeConfiguration.readonly = true
        let probe = try DatabaseQueue(path: path, configuration: probeConfiguration)
        let superseded = try probe.read { db in
            // A newer Weft writes migration identifiers as text; anything else is damage.
            if try db.tableExists("grdb_migrations"),
                try Int.fetchOne(db, sql: "SELECT count(*) FROM grdb_migrations WHERE typeof(identifier) != 'text'") != 0
            {
                throw WeftError.corrupt("\(path) is damaged or not a Weft database: a migration identifier is not text")
            }
            return try migrator.hasBeenSuperseded(db)
        }
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
        // A stored value GRDB cannot convert to its column's type: damage or a foreign writer.
        if error is RowDecodingError {
            return .corrupt("\(path) is damaged or not a Weft database: \(error)")
        }
        return .storage("\(error)")
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(WeftError) -> T {
        do { return try await pool.read(body) } catch { throw Self.map(error, path: path) }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(WeftError) -> T {
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
        timeSource: any PhysicalTimeSource = SystemTimeSource(),
        boot: String? = BootIdentifier.current()
    ) async throws(WeftError) -> Replica {
        try configuration.validate()
        try resolvers.validate(configuration)
        let storage = try SQLiteReplicaStorage(path: path, durability: configuration.durability)
        return try await Replica(storage: storage, configuration: configuration, resolvers: resolvers, timeSource: timeSource, boot: boot)
    }
}
