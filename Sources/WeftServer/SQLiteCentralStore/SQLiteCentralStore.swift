import Foundation
import GRDB
import Synchronization
import Weft
import WeftCRDT
import WeftSQLite

/// The Standalone server's embedded central store: one SQLite database (WAL, `synchronous =
/// FULL`, so a push is durable before it is acknowledged) holding every tenant database.
public final class SQLiteCentralStore: CentralStore {
    let pool: DatabasePool
    /// The database file.
    public let path: String
    let compacted = Mutex<UInt64>(0)
    let collected = Mutex<UInt64>(0)

    /// Log entries this store removed because a newer entry of the same document superseded
    /// them (it compacts as it logs).
    public var compactedEntries: UInt64 { compacted.withLock { $0 } }

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

    func writeBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.write(body) }
    func writeWithoutTransactionBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.writeWithoutTransaction(body) }
    func readBlocking<T>(_ body: (Database) throws -> T) throws -> T { try pool.read(body) }
}
