import Foundation
import GRDB
import Testing
import Weft
import WeftCRDT
import WeftSQLite

/// A database written by an older Weft opens, migrates and keeps everything it held.
@Suite("Schema migrations")
struct MigrationTests {
    /// Builds the v2 schema by hand (as the Weft of that time created it), with two documents:
    /// `a` has an entry that was in flight and a newer one, `b` one entry; `c` was pushed.
    static func makeVersion2Database(_ path: String, records: [String: DocumentRecord]) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1: documents, metadata and queue'), ('v2: conflict log');
                    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;
                    CREATE TABLE documents (
                        collection TEXT NOT NULL, id TEXT NOT NULL, record BLOB NOT NULL, deleted INTEGER NOT NULL,
                        PRIMARY KEY (collection, id)
                    ) WITHOUT ROWID;
                    CREATE TABLE queue (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, id TEXT NOT NULL,
                        delta BLOB NOT NULL, bytes INTEGER NOT NULL
                    );
                    CREATE INDEX queue_by_document ON queue (collection, id, seq);
                    CREATE TABLE conflicts (
                        number INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, id TEXT NOT NULL,
                        policy TEXT NOT NULL, resolver TEXT, local BLOB NOT NULL, remote BLOB NOT NULL, winner BLOB NOT NULL
                    );
                    """)
            try db.execute(
                sql: "INSERT INTO meta (key, value) VALUES ('replica_id', ?), ('queue_bytes', 0), ('pull_cursor', 7)",
                arguments: [Data(ReplicaID(high: 9, low: 9).bytes)])
            for (id, record) in records.sorted(by: { $0.key < $1.key }) {
                try db.execute(
                    sql: "INSERT INTO documents VALUES ('c', ?, ?, 0)", arguments: [id, Data(record.encoded())])
            }
            // Sequences 1–3 were pushed and acknowledged (c's entry among them); 4 is a's entry
            // that was in flight when a was written again (5); 6 is b's.
            try db.execute(sql: "INSERT INTO queue (seq, collection, id, delta, bytes) VALUES (3, 'c', 'c', X'00', 1)")
            try db.execute(sql: "DELETE FROM queue")
            for (seq, id, bytes) in [(4, "a", 11), (5, "a", 12), (6, "b", 13)] {
                try db.execute(
                    sql: "INSERT INTO queue (seq, collection, id, delta, bytes) VALUES (?, 'c', ?, ?, ?)",
                    arguments: [seq, id, Data(records[id]!.encoded()), bytes])
            }
            try db.execute(sql: "UPDATE meta SET value = 36 WHERE key = 'queue_bytes'")
        }
        try queue.close()
    }

    @Test("A version-2 queue moves into the documents table: entries, sizes and sequence numbers kept")
    func versionTwoQueueMigrates() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("old.sqlite")
        let records = [
            "a": sampleRecord("n", 1, wall: 1), "b": sampleRecord("n", 2, wall: 2), "c": sampleRecord("n", 3, wall: 3),
        ]
        try Self.makeVersion2Database(path, records: records)

        let storage = try SQLiteReplicaStorage(path: path)
        #expect(try await storage.metadata().replicaID == ReplicaID(high: 9, low: 9))
        #expect(try await storage.metadata().pullCursor == 7)
        let entries = try await storage.entries()
        #expect(entries.map(\.sequence) == [4, 5, 6])
        #expect(entries.map(\.key.id.rawValue) == ["a", "a", "b"])
        #expect(entries.map(\.record) == [records["a"], records["a"], records["b"]])
        // The superseded entry keeps its size; the newest entries count their records.
        let size = { (id: String) in QueueEntry.byteCount(key: key("c", id), recordBytes: records[id]!.encoded().count) }
        #expect(entries.map(\.byteCount) == [11, size("a"), size("b")])
        #expect(try await storage.totalBytes() == 11 + size("a") + size("b"))
        #expect(try await storage.integrityCheck() == ["ok"])

        // Sequence numbers continue above every number the old queue handed out.
        let written = try await storage.commitLocalWrites(
            [LocalWrite(key: key("c", "c"), record: records["c"]!)], maxQueueBytes: 1 << 20)
        #expect(written == [7])
        // Acknowledging the old in-flight entry keeps the newer one.
        try await storage.acknowledge(through: 4)
        #expect(try await storage.entries().map(\.sequence) == [5, 6, 7])
        try await storage.acknowledge(through: 7)
        #expect(try await storage.entries().isEmpty)
        #expect(try await storage.totalBytes() == 0)
    }
}

extension MigrationTests {
    /// A v2 file (no index registry) opened with declared indexes runs every migration since
    /// and indexes the documents it already held.
    @Test func anOldFileGetsItsDeclaredIndexes() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("old.sqlite")
        let records = [
            "a": sampleRecord("n", 1, wall: 1), "b": sampleRecord("n", 2, wall: 2), "c": sampleRecord("n", 3, wall: 3),
        ]
        try Self.makeVersion2Database(path, records: records)
        let storage = try SQLiteReplicaStorage(path: path)
        var configuration = ReplicaConfiguration()
        configuration.collectionIndexes = ["c": [.value("n")]]
        let replica = try await Replica(storage: storage, configuration: configuration)
        let query = DocumentQuery(Field("n") >= 2, orderBy: [Field("n").descending])
        #expect(try replica.collection("c").explain(query).usesOnlyIndexes)
        #expect(try await replica.collection("c").query(query).documents.map(\.id.rawValue) == ["c", "b"])
        #expect(try storage.indexDiscrepancies() == [])
        #expect(try await storage.integrityCheck() == ["ok"])
    }
}

@Suite("Identifiers and reserved names")
struct IdentifierTests {
    @Test(arguments: StorageKind.allCases)
    func idsThatDifferOnlyInNormalizationAreTwoDocuments(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let replica = try await Replica(storage: storage)
        let composed = "caf\u{E9}"  // é as one scalar
        let decomposed = "cafe\u{301}"  // e + combining acute
        #expect(try DocumentID(composed) != DocumentID(decomposed))
        try await replica.batch { batch in
            try batch.create("c", composed) { $0.set("v", to: 1) }
            try batch.create("c", decomposed) { $0.set("v", to: 2) }
        }
        let documents = try await replica.collection("c").list()
        #expect(documents.count == 2, "one write was lost: \(documents.map(\.id))")
        #expect(try await replica.queuedChanges().count == 2)
        #expect(try await replica.collection("c").get(composed)?.int("v") == 1)
        #expect(try await replica.collection("c").get(decomposed)?.int("v") == 2)
    }

    @Test func theSiblingsFieldIsReserved() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        do {
            try await replica.collection("c").create("d") { $0.set(DocumentRecord.siblingsField, to: "x") }
            Issue.record("a write to the reserved field was accepted")
        } catch {
            #expect(error.kind == .invalidArgument)
        }
        #expect(try await replica.queuedChanges().isEmpty)
    }
}
