import Foundation
import GRDB
import Synchronization
import Weft
import WeftCRDT

/// Replica storage in one SQLite database (through GRDB): documents, metadata and the offline
/// queue, with every local write and its queue entry in one transaction.
///
/// The database runs in WAL mode; its schema is created and upgraded by a `DatabaseMigrator`.
/// Durability follows `Durability`: `synchronous = NORMAL` or `FULL`.
///
/// Opening a database written by a newer Weft (one with migrations this build does not know)
/// fails with `WeftError.Kind.schemaTooNew` rather than guess at its format; a file that
/// is not a SQLite database, or whose stored bytes do not decode, fails with
/// `WeftError.Kind.corrupt`.
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
    /// The `ReplicaID` is created once, with the database, and kept in it. Every custom policy
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
