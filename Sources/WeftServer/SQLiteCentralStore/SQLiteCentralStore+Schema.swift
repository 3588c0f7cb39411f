import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftSQLite

// The schema and its migrations.
extension SQLiteCentralStore {
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
        migrator.registerMigration("v3: change log tags") { db in
            // Changes logged before have tag 0, which every cursor matches.
            try db.execute(sql: "ALTER TABLE change_log ADD COLUMN tag INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v4: a compacted change log; remembered pull cursors") { db in
            // The log keeps one entry per document, its latest, and no record: a page reads the
            // record from `documents`, which always holds the latest (see the CentralStore
            // contract, rule 2a). Each document's latest entry of the old log moves over with
            // its sequence and tag (the row max() picks gives the bare column `tag`), and
            // numbering continues above every sequence the old log ever gave. Cursors up to that
            // sequence were served before cursors were remembered: `remembered_from` lets them
            // through when their entry is gone (rule 8). A large document's small change keeps
            // its delta over the previous version beside the entry (`LogDelta`).
            try db.execute(
                sql: """
                    CREATE TABLE log (
                        sequence INTEGER PRIMARY KEY AUTOINCREMENT,
                        tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, tag INTEGER NOT NULL,
                        delta BLOB, base_digest INTEGER, base_sequence INTEGER,
                        UNIQUE (tenant, collection, id)
                    );
                    INSERT INTO log (sequence, tenant, collection, id, tag)
                        SELECT max(sequence), tenant, collection, id, tag FROM change_log GROUP BY tenant, collection, id ORDER BY 1;
                    INSERT INTO sqlite_sequence (name, seq)
                        SELECT 'log', seq FROM sqlite_sequence WHERE name = 'change_log'
                        AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'log');
                    UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'change_log'), 0))
                        WHERE name = 'log';
                    DROP TABLE change_log;
                    CREATE INDEX log_by_tenant ON log (tenant, sequence);
                    CREATE TABLE pull_cursors (
                        tenant TEXT NOT NULL, replica BLOB NOT NULL, sequence INTEGER NOT NULL, tag INTEGER NOT NULL,
                        PRIMARY KEY (tenant, replica, sequence)
                    ) WITHOUT ROWID;
                    CREATE INDEX pull_cursors_by_sequence ON pull_cursors (tenant, sequence);
                    CREATE TABLE log_settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                    INSERT INTO log_settings (name, value)
                        VALUES ('remembered_from', coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'log'), 0));
                    """)
        }
        migrator.registerMigration("v5: forgetting tombstones") { db in
            // `tombstone`: 1 if the record is deleted and holds no field (a tombstone the store
            // may forget), 0 if not, NULL for records written before (the collection pass
            // decodes them once). `born_after`: how far the tenant had forgotten tombstones when
            // the row was created. Each named replica's latest pull, and each tenant's
            // `collected_through`, decide what may be forgotten (CentralStore rule 9).
            try db.execute(
                sql: """
                    ALTER TABLE documents ADD COLUMN tombstone INTEGER;
                    ALTER TABLE documents ADD COLUMN born_after INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX documents_tombstones ON documents (tenant) WHERE tombstone = 1;
                    CREATE INDEX documents_unclassified ON documents (tenant) WHERE tombstone IS NULL;
                    CREATE TABLE pull_positions (
                        tenant TEXT NOT NULL, replica BLOB NOT NULL, after INTEGER NOT NULL, pulled_at INTEGER NOT NULL,
                        PRIMARY KEY (tenant, replica)
                    ) WITHOUT ROWID;
                    CREATE TABLE collected (tenant TEXT PRIMARY KEY, through INTEGER NOT NULL) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v6: push receipts") { db in
            // Each replica's receipt and the one its last push replaced (CentralStore rule 6b):
            // 0 until its next push.
            try db.execute(
                sql: """
                    ALTER TABLE high_water ADD COLUMN receipt INTEGER NOT NULL DEFAULT 0;
                    ALTER TABLE high_water ADD COLUMN previous_receipt INTEGER NOT NULL DEFAULT 0;
                    """)
        }
        migrator.registerMigration("v7: the JSON projection") { db in
            // Each document's JSON projection (CentralStore rule 10), for SQL with SQLite's JSON
            // functions: `doc` is the projection's text (NULL when deleted), `deleted` 1 or 0,
            // and NULL for rows written before, which `projectDocuments` fills in steps.
            try db.execute(
                sql: """
                    ALTER TABLE documents ADD COLUMN doc TEXT;
                    ALTER TABLE documents ADD COLUMN deleted INTEGER;
                    CREATE INDEX documents_unprojected ON documents (tenant) WHERE deleted IS NULL;
                    """)
        }
        migrator.registerMigration("v8: channels") { db in
            // Each document's channels (ChannelIndexedStore rule 1) as a JSON array, NULL where
            // none were assigned; and the index a channel reader pages through: per channel and
            // document, the sequence of the change that put the document there (present) or
            // moved it out (departed).
            try db.execute(
                sql: """
                    ALTER TABLE documents ADD COLUMN channels TEXT;
                    CREATE TABLE channel_entries (
                        tenant TEXT NOT NULL, channel TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
                        sequence INTEGER NOT NULL, tag INTEGER NOT NULL, present INTEGER NOT NULL,
                        PRIMARY KEY (tenant, channel, collection, id)
                    ) WITHOUT ROWID;
                    CREATE INDEX channel_entries_by_sequence ON channel_entries (tenant, channel, sequence);
                    CREATE INDEX channel_entries_by_document ON channel_entries (tenant, collection, id);
                    CREATE INDEX channel_entries_departed ON channel_entries (tenant, sequence) WHERE present = 0;
                    CREATE INDEX documents_unassigned ON documents (tenant) WHERE channels IS NULL;
                    CREATE TABLE secrets (name TEXT PRIMARY KEY, bytes BLOB NOT NULL) WITHOUT ROWID;
                    """)
        }
        return migrator
    }
}
