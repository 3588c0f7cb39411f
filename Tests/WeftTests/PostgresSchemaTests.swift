import Foundation
import Testing
import Weft
import WeftCRDT
import WeftPostgres
import WeftServer

/// The PostgreSQL store's schema and sequencer against a real server: the sequencer's cost
/// follows the rows it numbers, not the log's size, and a database from the first schema
/// version upgrades in place.
@Suite(
    "PostgreSQL schema and sequencer",
    .enabled(if: !TestPostgres.skipped, "WEFT_SKIP_POSTGRES=1 leaves PostgreSQL out"))
struct PostgresSchemaTests {
    static func push(_ store: PostgresCentralStore, _ range: Range<Int>, replica: ReplicaID) async throws {
        _ = try await store.applyPush(
            database: "t", replica: replica, changes: try TestPostgres.newDocuments(range, replica: replica)
        ) {
            local, key, remote throws(WeftError) in
            try DocumentMerge.merge(local: local, remote: remote, key: key, policy: .crdt)
        }
    }

    /// Closes the store and waits until its backends have gone (and so flushed their statistics).
    static func closeAndFlush(_ store: PostgresCentralStore, _ url: URL) async throws {
        await store.shutdown()
        for _ in 0..<2_400 {
            let others = try await TestPostgres.query(
                url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            )
            if others == "0" { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        Issue.record("the store's backends did not exit")
    }

    /// Rows of the change log read through its primary key or a sequential scan, so far.
    static func logRowsRead(_ url: URL) async throws -> Int {
        let text = try await TestPostgres.query(
            url,
            """
            SELECT (SELECT coalesce(idx_tup_read, 0) FROM pg_stat_user_indexes WHERE indexrelname = 'weft_change_log_pkey')
                 + (SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relname = 'weft_change_log')
            """)
        guard let rows = Int(text) else { throw WeftError.storage("unexpected statistics: \(text)") }
        return rows
    }

    @Test("Numbering a few rows reads a few rows, however long the log and however stale its statistics")
    func theSequencerFollowsThePendingRowsNotTheLog() async throws {
        let url = try await TestPostgres.freshDatabase()
        let replica = ReplicaID(high: 3, low: 3)
        var store = try await PostgresCentralStore(url: url)
        // 12,000 rows wait for their numbers while another session holds the tenant's
        // sequencer lock, and the planner's statistics are taken then.
        let holder = try await SequencerLockHolder(url: url, tenant: "t")
        try await Self.push(store, 0..<12_000, replica: replica)
        #expect(try await TestPostgres.query(url, "SELECT count(*) FROM weft_pending") == "12000")
        _ = try await TestPostgres.query(url, "ANALYZE weft_change_log, weft_pending")
        try await holder.release()

        // A pull numbers all of them, more than one run's worth, in order and without a gap.
        var pulled = [LoggedChange]()
        while true {
            let page = try await store.changes(
                database: "t", after: pulled.last?.sequence ?? 0, limit: 5_000, maxBytes: 1 << 26)
            pulled += page.changes
            if !page.hasMore { break }
        }
        #expect(pulled.map(\.sequence) == Array(1...12_000))
        #expect(pulled.map(\.key.id.rawValue) == (0..<12_000).map { "d\($0)" })

        // Now 100 more: the sequencer, run by the push, reads the 100 staged rows, not the
        // 12,100-row log.
        try await Self.closeAndFlush(store, url)
        let before = try await Self.logRowsRead(url)
        store = try await PostgresCentralStore(url: url)
        try await Self.push(store, 12_000..<12_100, replica: replica)
        try await Self.closeAndFlush(store, url)
        let read = try await Self.logRowsRead(url) - before
        #expect(
            try await TestPostgres.query(url, "SELECT count(*) FROM weft_pending") == "0",
            "the push's sequencer numbered its rows")
        #expect(try await TestPostgres.query(url, "SELECT max(sequence) FROM weft_change_log") == "12100")
        #expect(read < 1_000, "numbering 100 rows read \(read) rows of a 12,100-row log")
    }

    /// Issue #14, point 7: numbering used to update every log row once (a dead row version per
    /// change, for autovacuum to find in a table that only grows); now pushes stage their rows
    /// and the sequencer moves them into the log. (Since the log is compacted, a document's new
    /// entry deletes its previous one; new documents, as here, leave nothing dead.)
    @Test("Numbering leaves no dead row versions in the change log: new documents only insert")
    func theChangeLogKeepsNoDeadRows() async throws {
        let url = try await TestPostgres.freshDatabase()
        let replica = ReplicaID(high: 6, low: 6)
        let store = try await PostgresCentralStore(url: url)
        for batch in 0..<20 {
            try await Self.push(store, (batch * 100)..<(batch * 100 + 100), replica: replica)
        }
        let log = try await store.changes(database: "t", after: 0, limit: 5_000, maxBytes: 1 << 26).changes
        #expect(log.map(\.sequence) == Array(1...2_000))
        try await Self.closeAndFlush(store, url)
        let figures = try await TestPostgres.query(
            url,
            "SELECT n_tup_ins, n_tup_upd, n_tup_del, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'weft_change_log'"
        )
        #expect(figures == "2000|0|0|0", "inserted|updated|deleted|dead: \(figures)")
        #expect(try await TestPostgres.query(url, "SELECT count(*) FROM weft_pending") == "0")
    }

    /// A rolling upgrade: a server of the previous build still inserts unnumbered rows into the
    /// log itself; the new sequencer numbers those in place, before the staged ones, without a
    /// gap.
    @Test(
        "Rows an older server leaves unnumbered in the log are numbered with the staged ones, without a gap")
    func rowsOfAnOlderServerAreNumberedToo() async throws {
        let url = try await TestPostgres.freshDatabase()
        let replica = ReplicaID(high: 8, low: 1)
        let store = try await PostgresCentralStore(url: url)
        try await Self.push(store, 0..<3, replica: replica)
        // What a server of schema v4 writes for a push: the documents, and unnumbered log rows.
        let old = try TestPostgres.newDocuments(3..<6, replica: replica)
        let values = old.map { change in
            let hex = change.delta.encoded().map { String(format: "%02x", $0) }.joined()
            return "('t', 'c', '\(change.key.id.rawValue)', '\\x\(hex)'::bytea, \(hex.count / 2), 7)"
        }
        _ = try await TestPostgres.query(
            url,
            "INSERT INTO weft_change_log (tenant, collection, doc_id, record, bytes, tag) VALUES \(values.joined(separator: ", "))"
        )
        _ = try await TestPostgres.query(
            url,
            "INSERT INTO weft_documents (tenant, collection, id, record) SELECT tenant, collection, doc_id, record FROM weft_change_log WHERE sequence IS NULL"
        )
        try await Self.push(store, 6..<9, replica: replica)
        let log = try await store.changes(database: "t", after: 0, limit: 100, maxBytes: 1 << 20).changes
        #expect(log.map(\.sequence) == Array(1...9))
        #expect(log.map(\.key.id.rawValue) == (0..<9).map { "d\($0)" })
        #expect(
            try await TestPostgres.query(url, "SELECT count(*) FROM weft_change_log WHERE sequence IS NULL")
                == "0")
        await store.shutdown()
    }

    /// A log written before compaction (or by a server of an older build) holds several
    /// entries per document, and a record in each: background compaction removes the
    /// superseded entries and clears the records, tenant by tenant, in bounded steps, while
    /// pulls go on.
    @Test("Background compaction removes what an older build left, tenant by tenant, in steps")
    func backgroundCompactionCleansAnOlderLog() async throws {
        let url = try await TestPostgres.freshDatabase()
        let replica = ReplicaID(high: 8, low: 2)
        let store = try await PostgresCentralStore(url: url)
        let service = SyncService(store: store)
        try await Self.push(store, 0..<40, replica: replica)
        for tenant in ["t", "u"] {
            // Move every entry up by 100, and put an older entry of each document (with its
            // record, as older builds stored) below: the history of a log never compacted.
            _ = try await TestPostgres.query(
                url,
                """
                INSERT INTO weft_documents (tenant, collection, id, record)
                    SELECT \(tenant == "u" ? "'u'" : "tenant"), collection, id, record FROM weft_documents WHERE tenant = 't'
                    ON CONFLICT DO NOTHING;
                DELETE FROM weft_change_log WHERE tenant = '\(tenant)';
                INSERT INTO weft_change_log (tenant, sequence, collection, doc_id, record, bytes, tag)
                    SELECT '\(tenant)', s, 'c', 'd' || (s - 1), (SELECT record FROM weft_documents LIMIT 1), 1, s FROM generate_series(1, 40) AS s;
                INSERT INTO weft_change_log (tenant, sequence, collection, doc_id, record, bytes, tag)
                    SELECT '\(tenant)', 100 + s, 'c', 'd' || (s - 1), CASE WHEN s > 30 THEN (SELECT record FROM weft_documents LIMIT 1) END, 1, s
                    FROM generate_series(1, 40) AS s;
                INSERT INTO weft_tenants (tenant, next_sequence) VALUES ('\(tenant)', 141)
                    ON CONFLICT (tenant) DO UPDATE SET next_sequence = 141
                """)
        }
        let before = store.compactedEntries
        // Steps of 7 entries: many steps and both tenants in one pass.
        let removed = try await service.compactLog(step: 7)
        let counted = store.compactedEntries - before
        #expect(removed == 80 && counted == 80)
        #expect(try await TestPostgres.query(url, "SELECT count(*) FROM weft_change_log") == "80")
        #expect(
            try await TestPostgres.query(url, "SELECT count(*) FROM weft_change_log WHERE record IS NOT NULL")
                == "0")
        for tenant in ["t", "u"] {
            let log = try await store.changes(database: tenant, after: 0, limit: 1_000, maxBytes: 1 << 30)
                .changes
            #expect(
                log.map(\.sequence) == Array(101...140)
                    && log.map(\.key.id.rawValue) == (0..<40).map { "d\($0)" })
        }
        // A second pass finds nothing.
        #expect(try await service.compactLog(step: 7) == 0)
        await store.shutdown()
    }

    @Test("Without its counter row a tenant's numbering goes on after the largest number in the log")
    func aLostCounterRowIsRebuiltFromTheLog() async throws {
        let url = try await TestPostgres.freshDatabase()
        let store = try await PostgresCentralStore(url: url)
        let replica = ReplicaID(high: 4, low: 4)
        try await Self.push(store, 0..<10, replica: replica)
        #expect(
            try await TestPostgres.query(url, "SELECT next_sequence FROM weft_tenants WHERE tenant = 't'")
                == "11")
        _ = try await TestPostgres.query(url, "DELETE FROM weft_tenants")
        try await Self.push(store, 10..<15, replica: replica)
        let log = try await store.changes(database: "t", after: 0, limit: 100, maxBytes: 1 << 20).changes
        #expect(log.map(\.sequence) == Array(1...15))
        #expect(log.map(\.key.id.rawValue) == (0..<15).map { "d\($0)" })
        #expect(
            try await TestPostgres.query(url, "SELECT next_sequence FROM weft_tenants WHERE tenant = 't'")
                == "16")
        await store.shutdown()
    }

    @Test(
        "Upgrading a version-1 database while an old server's sequencer holds its tables: neither deadlocks")
    func theUpgradeWaitsForOldServersInTheirLockOrder() async throws {
        let url = try await TestPostgres.versionOneDatabase()
        _ = try await TestPostgres.query(
            url,
            """
            INSERT INTO weft_change_log (tenant, sequence, collection, doc_id, record, bytes)
            SELECT 't', g, 'c', 'd' || g, '\\x00', 1 FROM generate_series(1, 50) AS g
            """)
        // A version-1 sequencer, as an old server runs it: the tenants table first, then (after
        // a while, here) the change log, in one transaction.
        let old = Process()
        old.executableURL = TestPostgres.psql
        old.arguments = [
            url.absoluteString, "-v", "ON_ERROR_STOP=1", "-qAt", "-c",
            """
            BEGIN;
            INSERT INTO weft_tenants (tenant, next_sequence) VALUES ('t', 1) ON CONFLICT (tenant) DO NOTHING;
            SELECT pg_sleep(3);
            SELECT count(*) FROM weft_change_log WHERE tenant = 't' AND sequence IS NULL;
            COMMIT;
            """,
        ]
        let errors = Pipe()
        old.standardOutput = FileHandle.nullDevice
        old.standardError = errors
        try old.run()
        defer { if old.isRunning { old.terminate() } }
        for _ in 0..<250 {
            let active = try await TestPostgres.query(
                url,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE '%pg_sleep(3)%' AND pid <> pg_backend_pid()"
            )
            if active != "0" { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        // The migration starts meanwhile, waits for the old transaction, and then runs.
        let store = try await PostgresCentralStore(url: url)
        try await TestPostgres.exit(of: old)
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(old.terminationStatus == 0, "the old server's sequencer failed: \(message)")
        #expect(
            try await TestPostgres.query(url, "SELECT max(version) FROM weft_migrations")
                == "\(PostgresCentralStore.migrations.count)")
        // Analysed at the end: statistics for the key columns, none for the sequence.
        #expect(
            try await TestPostgres.query(
                url,
                "SELECT count(*) FROM pg_stats WHERE tablename = 'weft_change_log' AND attname = 'tenant'")
                == "1")
        #expect(
            try await TestPostgres.query(
                url,
                "SELECT count(*) FROM pg_stats WHERE tablename = 'weft_change_log' AND attname = 'sequence'")
                == "0")
        await store.shutdown()
    }

    @Test(
        "A database of schema version 1 upgrades in place, two servers at once: byte-order keys, data kept, pushes and pulls go on"
    )
    func aVersionOneDatabaseUpgrades() async throws {
        // A locale whose collation is not byte order, as production databases often have.
        let url = try await TestPostgres.versionOneDatabase(
            options: "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'")
        let keyColumns = """
            SELECT count(*) FROM information_schema.columns
            WHERE table_name LIKE 'weft_%' AND column_name IN ('tenant', 'collection', 'id', 'doc_id') AND collation_name = 'C'
            """
        #expect(try await TestPostgres.query(url, keyColumns) == "0")
        // Version 1's rows: one document, logged as sequence 1, and the tenant's counter.
        let old = try #require(
            try TestPostgres.newDocuments(41..<42, replica: ReplicaID(high: 8, low: 8)).first?.delta)
        let hex = "\\x" + old.encoded().map { String(format: "%02x", $0) }.joined()
        _ = try await TestPostgres.query(
            url,
            """
            INSERT INTO weft_documents VALUES ('t', 'c', 'old', '\(hex)');
            INSERT INTO weft_change_log (tenant, sequence, collection, doc_id, record, bytes) VALUES ('t', 1, 'c', 'old', '\(hex)', \(old.encoded().count));
            INSERT INTO weft_tenants VALUES ('t', 2)
            """)

        // Two servers start at once; the migration runs once.
        async let first = PostgresCentralStore(url: url)
        async let second = PostgresCentralStore(url: url)
        let (store, other) = try await (first, second)
        await other.shutdown()
        #expect(
            try await TestPostgres.query(
                url, "SELECT string_agg(version::text, ',' ORDER BY version) FROM weft_migrations")
                == (1...PostgresCentralStore.migrations.count).map(String.init).joined(separator: ","))
        #expect(
            try await TestPostgres.query(
                url,
                "SELECT attstattarget FROM pg_attribute WHERE attrelid = 'weft_change_log'::regclass AND attname = 'sequence'"
            ) == "0")
        // Cursors served before the compacted log (up to sequence 1) are taken without a
        // remembered entry; later ones are not.
        #expect(
            try await TestPostgres.query(url, "SELECT remembered_from FROM weft_tenants WHERE tenant = 't'")
                == "1")
        #expect(try await store.servedCursor(database: "t", sequence: 1, tag: 99))
        #expect(try await !store.servedCursor(database: "t", sequence: 2, tag: 99))
        // Every key column of every table: documents (3), tenants (1), change log (3), high-water
        // marks (1), conflicts (3), sessions (1), staged changes (3), remembered cursors (1),
        // pull positions (1), channel entries (3).
        #expect(try await TestPostgres.query(url, keyColumns) == "20")

        // What version 1 held is still there: the document, and the log from sequence 1 on.
        let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID("old"))
        let record = try #require(try await store.record(database: "t", key: key))
        #expect(record == old)
        #expect(record.body.scalar("n") == .int(41))
        // Its projection is filled in by the background pass (schema v9).
        #expect(
            try await TestPostgres.query(
                url, "SELECT coalesce(deleted::text, 'unprojected') FROM weft_documents WHERE id = 'old'")
                == "unprojected")
        #expect(try await SyncService(store: store).projectDocuments() == 1)
        #expect(
            try await TestPostgres.query(
                url, "SELECT doc->>'n' || ' ' || deleted::text FROM weft_documents WHERE id = 'old'")
                == "41 false")
        let replica = ReplicaID(high: 9, low: 9)
        try await Self.push(store, 0..<3, replica: replica)
        let log = try await store.changes(database: "t", after: 0, limit: 100, maxBytes: 1 << 20).changes
        #expect(log.map(\.sequence) == [1, 2, 3, 4])
        #expect(log.map(\.key.id.rawValue) == ["old", "d0", "d1", "d2"])
        await store.shutdown()
    }
}
