// The replica workloads, shared by the ReplicaWrites suite (Benchmarks/ReplicaWrites) and
// weft-replica-bench (Sources/WeftReplicaBench/CLI), so both measure the same thing.
//
// Two stores do the same upserts, each in its own temporary directory:
//
// - `ReplicaUnderTest`: a Weft `Replica` on `SQLiteReplicaStorage` (WAL, `synchronous` from
//   the `Durability`), writing through `ReplicaCollection.upsert` (one commit per write) or
//   `Replica.batch` (one commit per batch).
// - `RawSQLite`: GRDB on the same system SQLite, WAL mode, the same `synchronous` setting, and
//   the same `documents` table as WeftSQLite, doing `INSERT OR REPLACE` of one BLOB per
//   document key. The BLOB is the encoded record Weft stores for the same document (taken
//   once, with the document's index patched in), so both write the same bytes per row; the
//   raw side does no CRDT work, no queue and no encoding.

import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite

/// The documents every workload writes.
public enum BenchDocuments {
    /// The collection written.
    public static let collection = "workOrders"

    /// The id of document `index` (`-1`: the warm-up document).
    public static func id(_ index: Int) -> String { index < 0 ? "warmup" : "wo-\(index)" }

    static let statuses: [Scalar] = ["open", "assigned", "in-progress", "done"]

    /// The edit of write number `round` to document `index`: three registers and a counter, like
    /// a small work order (`title`, `status`, `priority`, `revision`).
    public static func edit(_ index: Int, round: Int) -> @Sendable (inout DocumentEditor) throws(WeftError) -> Void {
        let status = statuses[round % statuses.count]
        let title = Scalar.string("Replace valve in building \(index % 97), unit \(index)")
        let priority = Scalar.int(Int64(round % 5))
        return { editor throws(WeftError) in
            editor.set("title", to: title)
            editor.set("status", to: status)
            editor.set("priority", to: priority)
            editor.increment("revision")
        }
    }

    /// The encoded record Weft stores for document 0 after one write: the raw baseline's payload.
    public static func encodedRecord() async throws -> [UInt8] {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let documents = try replica.collection(collection)
        try await documents.upsert(id(0), edit(0, round: 0))
        let key = DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id(0)))
        guard let record = try await replica.record(key) else { throw BenchmarkFailure("the payload document was not stored") }
        return record.encoded()
    }
}

// MARK: - Weft replica

/// A Weft replica on SQLite in a fresh temporary directory.
public final class ReplicaUnderTest: Sendable {
    public let directory: ScratchDirectory
    /// The storage, kept to drain the queue in the no-coalescing measure.
    public let storage: SQLiteReplicaStorage
    public let replica: Replica
    public let documents: ReplicaCollection
    public let durability: Durability

    /// The queue cap used unless told otherwise: large enough never to refuse a benchmark write.
    public static let uncappedQueue = 1 << 40

    private init(directory: ScratchDirectory, storage: SQLiteReplicaStorage, replica: Replica, durability: Durability) throws {
        self.directory = directory
        self.storage = storage
        self.replica = replica
        self.documents = try replica.collection(BenchDocuments.collection)
        self.durability = durability
    }

    /// Opens a new replica, checks its `synchronous` level, and writes the warm-up document (so
    /// schema creation and the first statements are not measured).
    public static func open(durability: Durability, maxQueueBytes: Int = uncappedQueue) async throws -> ReplicaUnderTest {
        let directory = try ScratchDirectory()
        do {
            let storage = try SQLiteReplicaStorage(path: directory.file("replica.sqlite"), durability: durability)
            let replica = try await Replica(
                storage: storage, configuration: ReplicaConfiguration(maxQueueBytes: maxQueueBytes, durability: durability))
            let level = try await storage.synchronousSetting()
            guard level == (durability == .full ? 2 : 1) else {
                throw BenchmarkFailure("the \(durability) replica runs synchronous=\(level)")
            }
            let result = try ReplicaUnderTest(directory: directory, storage: storage, replica: replica, durability: durability)
            try await result.upsert(-1)
            return result
        } catch {
            directory.remove()
            throw error
        }
    }

    /// Upserts document `index` (write number `round` to it): one commit.
    @inline(__always)
    public func upsert(_ index: Int, round: Int = 0) async throws {
        try await documents.upsert(BenchDocuments.id(index), BenchDocuments.edit(index, round: round))
    }

    /// Upserts documents `indices` in one `Replica.batch`: one commit.
    public func batchUpsert(_ indices: Range<Int>, round: Int = 0) async throws {
        let collection = BenchDocuments.collection
        try await replica.batch { (batch: inout ReplicaBatch) throws(WeftError) in
            for index in indices {
                try batch.upsert(collection, BenchDocuments.id(index), BenchDocuments.edit(index, round: round))
            }
        }
    }

    /// Removes the directory (the database closes when the last reference goes).
    public func remove() { directory.remove() }

    /// The version of the SQLite library in use (the one WeftSQLite uses too).
    public static func sqliteVersion() throws -> String {
        let queue = try DatabaseQueue()
        return try queue.read { db in try String.fetchOne(db, sql: "SELECT sqlite_version()") ?? "?" }
    }
}

// MARK: - Raw SQLite

/// Raw SQLite through GRDB: WAL, the same `synchronous` setting and table as WeftSQLite, one
/// `INSERT OR REPLACE` of a BLOB per document.
public final class RawSQLite: Sendable {
    public let directory: ScratchDirectory
    let pool: DatabasePool
    let payload: [UInt8]
    static let upsertSQL = "INSERT OR REPLACE INTO documents (collection, id, record, deleted) VALUES (?, ?, ?, 0)"

    /// Opens a new database in a fresh directory and writes the warm-up row.
    public init(durability: Durability, payload: [UInt8]) throws {
        directory = try ScratchDirectory(prefix: "weft-raw-sqlite")
        self.payload = payload
        do {
            var configuration = Configuration()
            let synchronous = durability == .full ? "FULL" : "NORMAL"
            configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
            pool = try DatabasePool(path: directory.file("raw.sqlite"), configuration: configuration)
            // GRDB's DatabasePool runs `PRAGMA synchronous = NORMAL` on its writer when it turns WAL
            // on, after `prepareDatabase`; set the level again on the writer (the one connection
            // that commits), and check it below.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = \(synchronous)") }
            try pool.write { db in
                try db.execute(
                    sql: """
                        CREATE TABLE documents (
                            collection TEXT NOT NULL,
                            id TEXT NOT NULL,
                            record BLOB NOT NULL,
                            deleted INTEGER NOT NULL,
                            PRIMARY KEY (collection, id)
                        ) WITHOUT ROWID
                        """)
            }
            let mode = try pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
            let level = try pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
            guard mode == "wal", level == (durability == .full ? 2 : 1) else {
                throw BenchmarkFailure("raw SQLite runs journal_mode=\(mode ?? "?") synchronous=\(level ?? -1)")
            }
            try upsert(-1)
        } catch {
            directory.remove()
            throw error
        }
    }

    @inline(__always)
    func row(_ index: Int) -> StatementArguments {
        var bytes = payload
        withUnsafeBytes(of: Int64(index).littleEndian) { value in
            for offset in 0..<min(8, bytes.count) { bytes[bytes.count - 1 - offset] = value[offset] }
        }
        return [BenchDocuments.collection, BenchDocuments.id(index), Data(bytes)]
    }

    /// Upserts document `index` in its own transaction.
    @inline(__always)
    public func upsert(_ index: Int) throws {
        try pool.write { db in try db.cachedStatement(sql: Self.upsertSQL).execute(arguments: self.row(index)) }
    }

    /// Upserts document `index` in its own transaction through GRDB's async `write`, as
    /// WeftSQLite does (a diagnostic: the cost of the hop to GRDB's writer queue).
    public func upsertAsync(_ index: Int) async throws {
        let arguments = row(index)
        try await pool.write { db in try db.cachedStatement(sql: Self.upsertSQL).execute(arguments: arguments) }
    }

    /// Reads the row of document `index` through GRDB's async `read` (a diagnostic).
    public func readAsync(_ index: Int) async throws -> Data? {
        let id = BenchDocuments.id(index)
        return try await pool.read { db in
            try Data.fetchOne(
                db, sql: "SELECT record FROM documents WHERE collection = ? AND id = ?",
                arguments: [BenchDocuments.collection, id])
        }
    }

    /// Upserts documents `indices` in one transaction.
    public func upsertAll(_ indices: Range<Int>) throws {
        try pool.write { db in
            let statement = try db.cachedStatement(sql: Self.upsertSQL)
            for index in indices { try statement.execute(arguments: self.row(index)) }
        }
    }

    /// The number of rows (to check a run wrote what it should).
    public func count() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM documents") ?? 0 }
    }

    public func remove() { directory.remove() }

    /// The version of the SQLite library in use (the one WeftSQLite uses too).
    public static func sqliteVersion() throws -> String {
        let queue = try DatabaseQueue()
        return try queue.read { db in try String.fetchOne(db, sql: "SELECT sqlite_version()") ?? "?" }
    }
}
