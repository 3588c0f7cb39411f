import Foundation
import GRDB
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftWire

/// The compacted change log (CentralStore contract, rules 2a and 8) on every store: one entry
/// per document, readers interleaved with pushes miss nothing, and a cursor whose entry
/// compaction removed is still recognised for the replica it was served to.
@Suite("Change-log compaction")
struct LogCompactionTests {
    static let replicas = [ReplicaID(high: 1, low: 1), ReplicaID(high: 2, low: 2)]
    static let merge = CentralStoreContractTests.merge

    /// A reader of the log: its cursor and the last record it received of each document.
    struct Reader {
        var cursor: UInt64 = 0
        var view: [DocumentKey: DocumentRecord] = [:]

        /// Pulls one page; checks that its sequences increase past the cursor.
        mutating func page(_ store: any CentralStore, limit: Int) async throws -> Bool {
            let page = try await store.changes(database: "db", after: cursor, limit: limit, maxBytes: 1 << 20)
            var last = cursor
            for change in page.changes {
                #expect(change.sequence > last, "sequences increase past the cursor")
                last = change.sequence
                view[change.key] = change.record
            }
            cursor = last
            return page.hasMore
        }

        mutating func drain(_ store: any CentralStore) async throws {
            while try await page(store, limit: 3) {}
        }
    }

    /// A push of one new version of `id` by replica `index`: a field of its own, and the
    /// replica's next counter, so every push changes the document.
    static func push(_ store: any CentralStore, _ id: String, by index: Int, count: UInt64, step: Int)
        async throws
    {
        let replica = replicas[index]
        var record = sampleRecord("f\(step)", Int64(step), wall: UInt64(1_000 + step), replica: replica)
        record = DocumentRecord(
            body: record.body, deletion: record.deletion, version: VersionVector([replica: count]))
        _ = try await store.applyPush(
            database: "db", replica: replica, changes: [(count, key("c", id), record)], merge: merge)
    }

    @Test(
        "2a. one entry per document, and readers interleaved with pushes miss no change",
        arguments: CentralKind.testable)
    func readersInterleavedWithPushes(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        let seed = UInt64.random(in: 1...UInt64.max)
        var generator = SplitMix64(seed: seed)
        let ids = (0..<6).map { "d\($0)" }
        var counts: [UInt64] = [0, 0]
        var readers = [Reader](repeating: Reader(), count: 3)
        var pushes = 0
        for step in 0..<240 {
            if generator.next() % 3 != 0 {
                let index = Int(generator.next() % 2)
                counts[index] += 1
                try await Self.push(
                    store, ids[Int(generator.next() % UInt64(ids.count))], by: index, count: counts[index],
                    step: step)
                pushes += 1
            } else {
                let reader = Int(generator.next() % 3)
                _ = try await readers[reader].page(store, limit: 1 + Int(generator.next() % 3))
            }
            if step % 60 == 59 {
                // A reader that drains sees every document at its current version.
                let reader = Int(generator.next() % 3)
                try await readers[reader].drain(store)
                for id in ids {
                    #expect(
                        readers[reader].view[key("c", id)]
                            == (try await store.record(database: "db", key: key("c", id))), "seed \(seed)")
                }
            }
        }
        for index in readers.indices {
            try await readers[index].drain(store)
            for id in ids {
                #expect(
                    readers[index].view[key("c", id)]
                        == (try await store.record(database: "db", key: key("c", id))), "seed \(seed)")
            }
        }
        // From 0, the log holds each live document once, however long the history.
        let all = try await store.changes(database: "db", after: 0, limit: 1_000, maxBytes: 1 << 30)
        let touched = Set(readers.flatMap(\.view.keys))
        #expect(pushes > 100)
        #expect(
            all.changes.count == touched.count && Set(all.changes.map(\.key)) == touched && !all.hasMore,
            "seed \(seed)")
        #expect(
            await store.compactedEntries == UInt64(pushes - touched.count),
            "every entry but each document's last was compacted")
    }

    @Test(
        "8. a cursor whose entry was compacted away is still recognised, whoever presents it",
        arguments: CentralKind.testable)
    func aCompactedCursorIsStillValid(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        let service = SyncService(store: store)
        let reader = ReplicaID(high: 7, low: 7)
        try await Self.push(store, "x", by: 0, count: 1, step: 1)
        try await Self.push(store, "y", by: 0, count: 2, step: 2)
        let first = try await service.pull(database: "db", PullRequest(after: 0, replica: reader))
        #expect(first.changes.map(\.key.id) == ["x", "y"])
        let xEntry = try #require(first.changes.first?.sequence)
        let xTag = try #require(try await store.tag(database: "db", sequence: xEntry))
        // y changes again: its entry, the reader's cursor, goes.
        try await Self.push(store, "y", by: 1, count: 1, step: 3)
        #expect(
            try await store.tag(database: "db", sequence: first.cursor) == nil,
            "compaction removed the cursor's entry")
        let next = try await service.pull(
            database: "db", PullRequest(after: first.cursor, afterTag: first.cursorTag, replica: reader))
        #expect(next.changes.map(\.key.id) == ["y"], "no resync, and the new version of y arrives")
        // The tag is what proves the cursor came from this history: the same cursor presented
        // under a new identity of the reader, or by a client that does not name itself, is
        // taken too; with another tag it is refused, whoever presents it.
        for other in [ReplicaID(high: 8, low: 8), nil] {
            let page = try await service.pull(
                database: "db", PullRequest(after: first.cursor, afterTag: first.cursorTag, replica: other))
            #expect(page.changes.map(\.key.id) == ["y"])
        }
        for other in [reader, ReplicaID(high: 8, low: 8), nil] {
            await #expect(throws: SyncError.self) {
                _ = try await service.pull(
                    database: "db",
                    PullRequest(after: first.cursor, afterTag: first.cursorTag ^ 1, replica: other))
            }
        }
        // A client that does not name itself keeps its cursor too: unnamed clients' page ends
        // are remembered in one shared list.
        let unnamed = try await service.pull(
            database: "db", PullRequest(after: first.cursor, afterTag: first.cursorTag))
        try await Self.push(store, "y", by: 1, count: 3, step: 40)
        let unnamedNext = try await service.pull(
            database: "db", PullRequest(after: unnamed.cursor, afterTag: unnamed.cursorTag))
        #expect(unnamedNext.changes.map(\.key.id) == ["y"])
        // A cursor that was never a page's end, whose entry is gone, is refused too.
        try await Self.push(store, "x", by: 1, count: 2, step: 4)
        await #expect(throws: SyncError.self) {
            _ = try await service.pull(
                database: "db", PullRequest(after: xEntry, afterTag: xTag, replica: reader))
        }
        // The reader's newest cursor works too, and remembered cursors stay few.
        for step in 5..<20 {
            try await Self.push(store, "z\(step)", by: 0, count: UInt64(step), step: step)
        }
        var cursor = (next.cursor, next.cursorTag)
        while true {
            let page = try await service.pull(
                database: "db",
                PullRequest(after: cursor.0, afterTag: cursor.1, maximumChanges: 2, replica: reader))
            if page.changes.isEmpty { break }
            cursor = (page.cursor, page.cursorTag)
        }
        try await Self.push(store, "z19", by: 1, count: 2, step: 30)
        #expect(try await store.tag(database: "db", sequence: cursor.0) == nil)
        let last = try await service.pull(
            database: "db", PullRequest(after: cursor.0, afterTag: cursor.1, replica: reader))
        #expect(last.changes.map(\.key.id) == ["z19"])
    }

    @Test("A restored store does not take a cursor it served in the history it lost")
    func aRestoreForgetsTheCursorsItServed() async throws {
        let store = MemoryCentralStore()
        let service = SyncService(store: store)
        let reader = ReplicaID(high: 7, low: 7)
        try await Self.push(store, "a", by: 0, count: 1, step: 1)
        let backup = await store.backup()
        try await Self.push(store, "b", by: 0, count: 2, step: 2)
        let page = try await service.pull(database: "db", PullRequest(after: 0, replica: reader))
        try await Self.push(store, "b", by: 0, count: 3, step: 3)
        await store.restore(backup)
        // The restored history goes on past the cursor with other changes.
        for step in 4..<8 { try await Self.push(store, "n\(step)", by: 1, count: UInt64(step), step: step) }
        await #expect(throws: SyncError.self) {
            _ = try await service.pull(
                database: "db", PullRequest(after: page.cursor, afterTag: page.cursorTag, replica: reader))
        }
    }

    @Test(
        "A version-3 SQLite store migrates to the compacted log: latest entries, sequences and tags kept, numbering goes on above"
    )
    func aVersionThreeStoreMigrates() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("central.sqlite")
        let records = (0..<3).map { sampleRecord("v", Int64($0), wall: UInt64(10 + $0)) }
        try Self.makeVersion3Store(path, records: records)
        let store = try SQLiteCentralStore(path: path)
        let log = try await store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20)
        #expect(log.changes.map(\.sequence) == [3, 4] && log.changes.map(\.key.id.rawValue) == ["b", "a"])
        #expect(log.changes.map(\.tag) == [13, 14] && log.changes.last?.record == records[2])
        try await Self.push(store, "b", by: 0, count: 1, step: 9)
        let after = try await store.changes(database: "db", after: 4, limit: 100, maxBytes: 1 << 20)
        #expect(after.changes.map(\.sequence) == [6], "numbering goes on above every sequence given before")
        // A replica's cursor from before the migration whose entry is gone (a's at 2, or b's at
        // 3 since b changed) still works; cursors given since must have been served.
        let service = SyncService(store: store)
        for (cursor, tag) in [(UInt64(2), UInt64(12)), (3, 13)] {
            let page = try await service.pull(
                database: "db", PullRequest(after: cursor, afterTag: tag, replica: ReplicaID(high: 5, low: 5))
            )
            #expect(page.changes.map(\.sequence).contains(6))
        }
        #expect(try await !store.servedCursor(database: "db", sequence: 6, tag: 1))
    }

    /// Builds the version-3 schema by hand (as the Weft of that time created it), with a log of
    /// several versions of one document.
    static func makeVersion3Store(_ path: String, records: [DocumentRecord]) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                    INSERT INTO grdb_migrations VALUES ('v1: central documents, change log, high-water marks, conflicts'),
                        ('v2: replica sessions'), ('v3: change log tags');
                    CREATE TABLE documents (
                        tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL, record BLOB NOT NULL,
                        PRIMARY KEY (tenant, collection, id)) WITHOUT ROWID;
                    CREATE TABLE change_log (
                        sequence INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, collection TEXT NOT NULL, id TEXT NOT NULL,
                        record BLOB NOT NULL, bytes INTEGER NOT NULL, tag INTEGER NOT NULL DEFAULT 0);
                    CREATE INDEX change_log_by_tenant ON change_log (tenant, sequence);
                    CREATE TABLE high_water (tenant TEXT NOT NULL, replica BLOB NOT NULL, applied_through INTEGER NOT NULL,
                        PRIMARY KEY (tenant, replica)) WITHOUT ROWID;
                    CREATE TABLE conflicts (number INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, collection TEXT NOT NULL,
                        id TEXT NOT NULL, policy TEXT NOT NULL, resolver TEXT, local BLOB NOT NULL, remote BLOB NOT NULL, winner BLOB NOT NULL);
                    CREATE TABLE sessions (tenant TEXT NOT NULL, replica BLOB NOT NULL, epoch INTEGER NOT NULL,
                        PRIMARY KEY (tenant, replica)) WITHOUT ROWID;
                    """)
            // a: three versions (1, 2, 4); b: one (3); sequence 5 was given and then lost
            // (the AUTOINCREMENT counter remembers it).
            let history: [(sequence: Int64, id: String, version: Int, tag: Int64)] = [
                (1, "a", 0, 11), (2, "a", 1, 12), (3, "b", 0, 13), (4, "a", 2, 14), (5, "gone", 0, 15),
            ]
            for entry in history {
                let bytes = Data(records[entry.version].encoded())
                let arguments: StatementArguments = [entry.sequence, entry.id, bytes, bytes.count, entry.tag]
                try db.execute(
                    sql:
                        "INSERT INTO change_log (sequence, tenant, collection, id, record, bytes, tag) VALUES (?, 'db', 'c', ?, ?, ?, ?)",
                    arguments: arguments)
            }
            try db.execute(sql: "DELETE FROM change_log WHERE sequence = 5")
            for (id, version) in [("a", 2), ("b", 0)] {
                try db.execute(
                    sql: "INSERT INTO documents (tenant, collection, id, record) VALUES ('db', 'c', ?, ?)",
                    arguments: [id, Data(records[version].encoded())])
            }
        }
        try queue.close()
    }
}
