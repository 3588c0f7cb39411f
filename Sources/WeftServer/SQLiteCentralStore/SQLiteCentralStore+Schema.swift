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
        return migrator
    }
}
