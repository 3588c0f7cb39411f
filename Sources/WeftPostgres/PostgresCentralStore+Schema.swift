import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import Synchronization
import Weft
import WeftCRDT
import WeftServer

extension PostgresCentralStore {
    /// The schema migrations, in order; the index plus one is the version.
    package static let migrations: [(name: String, sql: [String])] = [
        (
            "v1: documents, change log, tenant counters, high-water marks, conflicts",
            [
                """
                CREATE TABLE weft_documents (
                    tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, record BYTEA NOT NULL,
                    PRIMARY KEY (tenant, collection, id))
                """,
                "CREATE TABLE weft_tenants (tenant TEXT PRIMARY KEY, next_sequence BIGINT NOT NULL)",
                """
                CREATE TABLE weft_change_log (
                    id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, sequence BIGINT,
                    collection TEXT NOT NULL, doc_id TEXT NOT NULL, record BYTEA NOT NULL, bytes INTEGER NOT NULL)
                """,
                "CREATE UNIQUE INDEX weft_change_log_by_sequence ON weft_change_log (tenant, sequence) WHERE sequence IS NOT NULL",
                "CREATE INDEX weft_change_log_unnumbered ON weft_change_log (tenant, id) WHERE sequence IS NULL",
                """
                CREATE TABLE weft_high_water (
                    tenant TEXT NOT NULL, replica BYTEA NOT NULL, applied_through BIGINT NOT NULL,
                    PRIMARY KEY (tenant, replica))
                """,
                """
                CREATE TABLE weft_conflicts (
                    number BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL, collection TEXT NOT NULL, doc_id TEXT NOT NULL,
                    policy TEXT NOT NULL, resolver TEXT, local BYTEA NOT NULL, remote BYTEA NOT NULL, winner BYTEA NOT NULL)
                """,
            ]
        ),
        (
            // 1. Tenants, collections and document ids are identifiers, compared byte for byte:
            // the "C" collation makes every index comparison a memcmp instead of a locale's
            // strcoll (equality, and so every key, is the same under both).
            // 2. No planner statistics for `weft_change_log.sequence`. Whether a row is numbered
            // is a passing state: statistics taken while many rows waited say "most rows are
            // unnumbered" long after they were numbered, and the planner then reads the whole
            // log to find the few waiting rows. Without them it assumes few wait and reads the
            // partial index of unnumbered rows. (Changing the column to its own type drops the
            // statistics already taken.)
            // Both rebuild the indexes involved.
            // The tables are locked first, in the one order every push and sequencer takes them
            // (high-water marks, documents, tenants, change log, conflicts), so that servers
            // still running cannot deadlock with the migration; and analysed last, since
            // changing a column drops its statistics.
            "v2: byte-order keys; no statistics on the change log's sequence",
            [
                "LOCK TABLE weft_high_water, weft_documents, weft_tenants, weft_change_log, weft_conflicts IN ACCESS EXCLUSIVE MODE",
                """
                ALTER TABLE weft_documents ALTER COLUMN tenant TYPE TEXT COLLATE "C",
                    ALTER COLUMN collection TYPE TEXT COLLATE "C", ALTER COLUMN id TYPE TEXT COLLATE "C"
                """,
                #"ALTER TABLE weft_tenants ALTER COLUMN tenant TYPE TEXT COLLATE "C""#,
                """
                ALTER TABLE weft_change_log ALTER COLUMN tenant TYPE TEXT COLLATE "C",
                    ALTER COLUMN collection TYPE TEXT COLLATE "C", ALTER COLUMN doc_id TYPE TEXT COLLATE "C",
                    ALTER COLUMN sequence SET STATISTICS 0, ALTER COLUMN sequence TYPE BIGINT
                """,
                #"ALTER TABLE weft_high_water ALTER COLUMN tenant TYPE TEXT COLLATE "C""#,
                """
                ALTER TABLE weft_conflicts ALTER COLUMN tenant TYPE TEXT COLLATE "C",
                    ALTER COLUMN collection TYPE TEXT COLLATE "C", ALTER COLUMN doc_id TYPE TEXT COLLATE "C"
                """,
                "ANALYZE weft_documents, weft_tenants, weft_change_log, weft_high_water, weft_conflicts",
            ]
        ),
        (
            // Each replica's current session (the handshake): a new table, so nothing to lock.
            "v3: replica sessions",
            [
                """
                CREATE TABLE weft_sessions (
                    tenant TEXT COLLATE "C" NOT NULL, replica BYTEA NOT NULL, epoch BIGINT NOT NULL,
                    PRIMARY KEY (tenant, replica))
                """
            ]
        ),
        (
            // Each logged change's tag, which cursors carry (0 for changes logged before, which
            // every cursor matches). A constant default adds the column without rewriting the
            // table.
            "v4: change log tags",
            ["ALTER TABLE weft_change_log ADD COLUMN tag BIGINT NOT NULL DEFAULT 0"]
        ),
        (
            // Pushes write their log rows here, and the sequencer moves them into the change log
            // numbered (`DELETE … RETURNING` into `INSERT`), so the log is insert-only: it had a
            // dead row version for every change (each was inserted, then updated with its
            // number). The dead rows are here instead, in a table that holds only the changes
            // waiting for a number (a few, for milliseconds) and that autovacuum cleans after
            // every 1,000 of them rather than after a fifth of the table. Rows an older server
            // still inserts unnumbered into the log (a rolling upgrade) are numbered in place, as
            // before. A new table: nothing to lock.
            "v5: a staging table for changes waiting for their number",
            [
                """
                CREATE TABLE weft_pending (
                    id BIGSERIAL PRIMARY KEY, tenant TEXT COLLATE "C" NOT NULL, collection TEXT COLLATE "C" NOT NULL,
                    doc_id TEXT COLLATE "C" NOT NULL, record BYTEA NOT NULL, bytes INTEGER NOT NULL, tag BIGINT NOT NULL)
                WITH (autovacuum_vacuum_threshold = 1000, autovacuum_vacuum_scale_factor = 0,
                      toast.autovacuum_vacuum_threshold = 1000, toast.autovacuum_vacuum_scale_factor = 0)
                """,
                "CREATE INDEX weft_pending_by_tenant ON weft_pending (tenant, id)",
            ]
        ),
        (
            // The log is compacted: the sequencer removes a document's earlier entries when it
            // numbers a new one (found through the new index by key), and a page reads each
            // entry's record from `weft_documents`, which always holds the latest, so new
            // entries and staged rows carry no record (the column stays for rows an older build
            // wrote, which background compaction clears). Servers of an older build cannot
            // read entries without a record: upgrade every server of a database together.
            // The cursors served per replica (contract, rule 8): a new table, and where remembering
            // began.
            "v6: a compacted change log; remembered pull cursors",
            [
                "LOCK TABLE weft_tenants, weft_change_log, weft_pending IN ACCESS EXCLUSIVE MODE",
                "ALTER TABLE weft_change_log ALTER COLUMN record DROP NOT NULL",
                "ALTER TABLE weft_pending ALTER COLUMN record DROP NOT NULL",
                // A large document's small change keeps its delta over the previous version
                // (`LogDelta`): staged with the push, placed by the sequencer.
                "ALTER TABLE weft_change_log ADD COLUMN delta BYTEA, ADD COLUMN base_digest BIGINT, ADD COLUMN base_sequence BIGINT",
                "ALTER TABLE weft_pending ADD COLUMN delta BYTEA, ADD COLUMN base_digest BIGINT",
                "CREATE INDEX weft_change_log_by_key ON weft_change_log (tenant, collection, doc_id, sequence)",
                """
                CREATE TABLE weft_pull_cursors (
                    tenant TEXT COLLATE "C" NOT NULL, replica BYTEA NOT NULL, sequence BIGINT NOT NULL, tag BIGINT NOT NULL,
                    PRIMARY KEY (tenant, replica, sequence))
                """,
                "CREATE INDEX weft_pull_cursors_by_sequence ON weft_pull_cursors (tenant, sequence)",
                // Cursors up to the last number given so far were served before cursors were
                // remembered: they pass when their entry is gone (rule 8).
                "ALTER TABLE weft_tenants ADD COLUMN remembered_from BIGINT NOT NULL DEFAULT 0",
                "UPDATE weft_tenants SET remembered_from = next_sequence - 1",
            ]
        ),
        (
            // Forgetting tombstones (CentralStore rule 9): which records may go (`tombstone`:
            // deleted and holding no field; NULL for records written before, which the
            // collection pass decodes once), how far the tenant had forgotten when each document
            // was created, each named replica's latest pull, and how far each tenant forgot.
            "v7: forgetting tombstones",
            [
                "ALTER TABLE weft_documents ADD COLUMN tombstone BOOLEAN, ADD COLUMN born_after BIGINT NOT NULL DEFAULT 0",
                "CREATE INDEX weft_documents_tombstones ON weft_documents (tenant) WHERE tombstone",
                "CREATE INDEX weft_documents_unclassified ON weft_documents (tenant) WHERE tombstone IS NULL",
                """
                CREATE TABLE weft_pull_positions (
                    tenant TEXT COLLATE "C" NOT NULL, replica BYTEA NOT NULL, after BIGINT NOT NULL, pulled_at BIGINT NOT NULL,
                    PRIMARY KEY (tenant, replica))
                """,
                "ALTER TABLE weft_tenants ADD COLUMN collected_through BIGINT NOT NULL DEFAULT 0",
            ]
        ),
        (
            // Each replica's receipt and the one its last push replaced (CentralStore rule 6b).
            // Constant defaults add the columns without rewriting the table.
            "v8: push receipts",
            [
                "ALTER TABLE weft_high_water ADD COLUMN receipt BIGINT NOT NULL DEFAULT 0, ADD COLUMN previous_receipt BIGINT NOT NULL DEFAULT 0"
            ]
        ),
        (
            // Each document's JSON projection (CentralStore rule 10), for SQL: `doc` (NULL when
            // deleted) and `deleted`, NULL for rows written before, which `projectDocuments`
            // fills in steps through the partial index. Columns without a default are added
            // without rewriting the table; the index is built while the migration holds the
            // table (one pass over it). Servers of an older build would store records without
            // their projection: upgrade every server of a database together.
            "v9: the JSON projection",
            [
                "ALTER TABLE weft_documents ADD COLUMN doc JSONB, ADD COLUMN deleted BOOLEAN",
                "CREATE INDEX weft_documents_unprojected ON weft_documents (tenant) WHERE deleted IS NULL",
            ]
        ),
        (
            // Channels (ChannelIndexedStore rule 1): each document's channels (NULL where none
            // were assigned), carried by its staged log rows to the sequencer, which writes the
            // index a channel reader pages through: per channel and document, the sequence of
            // the change that put the document there (present) or moved it out (departed).
            "v10: channels",
            [
                "ALTER TABLE weft_documents ADD COLUMN channels TEXT[]",
                "ALTER TABLE weft_pending ADD COLUMN channels TEXT[]",
                """
                CREATE TABLE weft_channel_entries (
                    tenant TEXT COLLATE "C" NOT NULL, channel TEXT COLLATE "C" NOT NULL, collection TEXT COLLATE "C" NOT NULL,
                    doc_id TEXT COLLATE "C" NOT NULL, sequence BIGINT NOT NULL, tag BIGINT NOT NULL, present BOOLEAN NOT NULL,
                    PRIMARY KEY (tenant, channel, collection, doc_id))
                """,
                "CREATE INDEX weft_channel_entries_by_sequence ON weft_channel_entries (tenant, channel, sequence)",
                "CREATE INDEX weft_channel_entries_by_document ON weft_channel_entries (tenant, collection, doc_id)",
                "CREATE INDEX weft_channel_entries_departed ON weft_channel_entries (tenant, sequence) WHERE NOT present",
                "CREATE INDEX weft_documents_unassigned ON weft_documents (tenant) WHERE channels IS NULL",
                "CREATE TABLE weft_settings (name TEXT PRIMARY KEY, value BIGINT, text TEXT, bytes BYTEA)",
            ]
        ),
    ]

    func migrate() async throws(WeftError) {
        do {
            // Connecting gets a minute, whatever the operation timeout, so an unreachable server
            // fails the start-up soon. Migrating then gets an hour: a migration that rebuilds
            // indexes takes about a second per million rows.
            let logger = logger
            _ = try await withDeadline(max(operationTimeout, .seconds(60))) {
                try await self.client.query("SELECT 1", logger: logger)
            }
            try await withDeadline(.seconds(3_600)) { try await self.migrateNow() }
        } catch {
            throw map(error)
        }
    }

    func migrateNow() async throws {
        do {
            let logger = logger
            try await client.withConnection { connection in
                try await connection.query("SELECT pg_advisory_lock(\(Self.migrationLock))", logger: logger)
                do {
                    try await connection.query(
                        """
                        CREATE TABLE IF NOT EXISTS weft_migrations (
                            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                        """, logger: logger)
                    var applied = 0
                    for try await version in try await connection.query(
                        "SELECT max(version) FROM weft_migrations", logger: logger
                    )
                    .decode(Int?.self) {
                        applied = version ?? 0
                    }
                    guard applied <= Self.migrations.count else {
                        throw WeftError.schemaTooNew(
                            "the PostgreSQL schema is at version \(applied); this build of Weft knows \(Self.migrations.count)"
                        )
                    }
                    for (index, migration) in Self.migrations.enumerated() where index + 1 > applied {
                        let logger = logger
                        // Servers still running an older build may hold the tables: a migration
                        // waits at most 2 s for each lock, so pushes do not queue long behind
                        // the locks it already holds, and starts again after such a wait or a
                        // deadlock (for about five minutes) rather than failing the start-up.
                        var attempt = 0
                        while true {
                            attempt += 1
                            do {
                                try await connection.withTransaction(logger: logger) { connection in
                                    try await connection.query(
                                        "SET LOCAL lock_timeout = '2s'", logger: logger)
                                    for statement in migration.sql {
                                        try await connection.query(
                                            PostgresQuery(unsafeSQL: statement), logger: logger)
                                    }
                                    try await connection.query(
                                        "INSERT INTO weft_migrations (version, name) VALUES (\(index + 1), \(migration.name))",
                                        logger: logger)
                                }
                                break
                            } catch {
                                guard attempt < 120,
                                    Self.isRetryable(error) || Self.sqlState(error) == "55P03"
                                else { throw error }
                                try await Task.sleep(for: .milliseconds(100 * min(attempt, 5)))
                            }
                        }
                    }
                } catch {
                    _ = try? await connection.query(
                        "SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
                    throw error
                }
                try await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
            }
        } catch {
            throw map(error)
        }
    }
}
