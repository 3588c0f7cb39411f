import Foundation
import GRDB
import Weft

// The schema: its migrations, the check that every table and column is there, and the refusal
// of a file written by a newer Weft.
extension SQLiteReplicaStorage {
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
}
