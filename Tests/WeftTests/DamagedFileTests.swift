import Foundation
import GRDB
import Testing
import Weft
import WeftCRDT
import WeftSQLite

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Damaged or foreign database files: each must fail with a `WeftError` (or open and report what
/// it kept), never trap, and never be "repaired" behind the caller's back.
///
/// Every random choice comes from a seed printed by the test (`WEFT_DAMAGE_SEED` replays it).
@Suite("Damaged database files")
struct DamagedFileTests {
    // MARK: Helpers

    static let seed: UInt64 = {
        let seed = ProcessInfo.processInfo.environment["WEFT_DAMAGE_SEED"].flatMap { UInt64($0) }
            ?? UInt64.random(in: 0...UInt64.max)
        print("DamagedFileTests: seed \(seed) (WEFT_DAMAGE_SEED=\(seed) replays it)")
        return seed
    }()

    /// A fresh directory, removed by `cleanup`.
    static func makeDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("weft-damaged-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    static func cleanup(_ directory: URL) { try? FileManager.default.removeItem(at: directory) }

    static func randomBytes(_ count: Int, _ random: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    static func contents(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    /// Every file of `directory` with its bytes.
    static func snapshot(_ directory: URL) throws -> [String: Data] {
        var files = [String: Data]()
        for name in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            files[name] = contents(directory.appendingPathComponent(name).path)
        }
        return files
    }

    /// Opens the replica at `path` and returns the error it throws, or nil if it opened.
    static func openError(_ path: String, durability: Durability = .normal) async -> WeftError? {
        do {
            _ = try await Replica.open(path: path, configuration: ReplicaConfiguration(durability: durability))
            return nil
        } catch {
            return error
        }
    }

    /// Creates a Weft database at `path` holding documents `ids` of collection `collection`, and
    /// closes it (the last connection checkpoints the WAL into the main file).
    static func makeDatabase(_ path: String, collection: String = "c", ids: [String]) async throws {
        let storage = try SQLiteReplicaStorage(path: path)
        let replica = try await Replica(storage: storage)
        let handle = try replica.collection(collection)
        for (n, id) in ids.enumerated() {
            try await handle.create(id) { editor in
                editor.set("n", to: .int(Int64(n)))
                editor.set("name", to: .string("document \(id)"))
                editor.increment("visits", by: 1)
            }
        }
    }

    /// Runs SQL on the database with GRDB directly, then checkpoints and closes it.
    static func withGRDB(_ path: String, _ body: @escaping @Sendable (Database) throws -> Void) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in
            try db.inTransaction {
                try body(db)
                return .commit
            }
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
        try queue.close()
    }

    // MARK: (a) Not a database

    @Test("A file of random bytes fails to open with a WeftError and is left alone", arguments: [512, 4096, 12_289, 65_536])
    func randomBytes(size: Int) async throws {
        var random = SplitMix64(seed: Self.seed &+ UInt64(size))
        let directory = try Self.makeDirectory()
        defer { Self.cleanup(directory) }
        let path = directory.appendingPathComponent("random.sqlite").path
        var bytes = Self.randomBytes(size, &random)
        // Not by chance the SQLite magic string.
        if bytes.starts(with: Array("SQLite format 3".utf8)) { bytes[0] ^= 0xFF }
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let error = await Self.openError(path)
        print("DamagedFileTests: \(size) random bytes → \(error.map { "\($0.kind): \($0.message)" } ?? "opened")")
        let thrown = try #require(error, "a file of \(size) random bytes opened as a replica")
        // SQLite says SQLITE_NOTADB, which SQLiteReplicaStorage documents as `.corrupt`.
        #expect(thrown.kind == .corrupt)
        #expect(Self.contents(path) == Data(bytes), "opening a non-database must not write to it")
    }

    /// Which pages of a real database to overwrite with random bytes (page 1, the header and
    /// schema root, is always kept so SQLite recognises the file).
    enum PageDamage: String, CaseIterable, Sendable {
        case allButFirst, lastQuarter, oneRandomPage, scatteredBytes
    }

    @Test("A real database with random pages fails with a WeftError or reports the damage", arguments: PageDamage.allCases)
    func damagedPages(damage: PageDamage) async throws {
        var random = SplitMix64(seed: Self.seed &+ 1 &+ UInt64(PageDamage.allCases.firstIndex(of: damage)!))
        let directory = try Self.makeDirectory()
        defer { Self.cleanup(directory) }
        let path = directory.appendingPathComponent("pages.sqlite").path
        try await Self.makeDatabase(path, ids: (0..<300).map { "doc-\($0)" })
        var bytes = [UInt8](try #require(Self.contents(path)))
        let pageSize = Int(bytes[16]) << 8 | Int(bytes[17])
        let pages = bytes.count / pageSize
        try #require(pages > 4, "the database should span several pages")
        func scramble(page: Int) {
            for index in page * pageSize..<(page + 1) * pageSize { bytes[index] = UInt8(truncatingIfNeeded: random.next()) }
        }
        switch damage {
        case .allButFirst: for page in 1..<pages { scramble(page: page) }
        case .lastQuarter: for page in (pages - pages / 4)..<pages { scramble(page: page) }
        case .oneRandomPage: scramble(page: 1 + Int(random.next() % UInt64(pages - 1)))
        case .scatteredBytes:
            for _ in 0..<64 { bytes[pageSize + Int(random.next() % UInt64(bytes.count - pageSize))] ^= 0xA5 }
        }
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        // The reader runs in a child process, so a trap is a failure here and not a crash of the run.
        let report = try await Self.runReader(path: path, collection: "c")
        print("DamagedFileTests: damaged pages (\(damage)) → \(report.lines)")
        let exited = report.exitedNormally
        #expect(exited, "the reader trapped on a damaged database (\(damage)): \(report.trap)")
        guard let open = report.steps["open"] else { return }
        if !open.ok {
            // `.corrupt` as a rule; `.schemaTooNew` when the damage rewrote a migration identifier
            // in `grdb_migrations` (then the file does look like one from a newer Weft).
            #expect(["corrupt", "schemaTooNew"].contains(open.detail), "\(damage): open failed with \(open.detail)")
            return
        }
        // Opened: the damage may sit in pages no query reads, but integrity_check reads them all.
        if let integrity = report.steps["integrity"], integrity.ok {
            #expect(integrity.detail != "ok", "\(damage): integrity_check passed on a damaged file")
        }
        // Any step that failed did so as `.corrupt` (SQLITE_CORRUPT or a record that does not decode).
        for (name, result) in report.steps where !result.ok {
            #expect(result.detail == "corrupt", "\(damage): \(name) failed with \(result.detail)")
        }
    }

    // MARK: (b) Truncated WAL

    /// A database copied, with its WAL, while its replica is open, and the copied WAL truncated.
    ///
    /// What can be asserted, and why:
    /// - SQLite rebuilds the WAL index from the WAL on open (no -shm is copied). It replays frames
    ///   in order while their checksums and salts are valid, and keeps only the frames up to the
    ///   last complete commit frame among them. Truncation therefore loses a suffix of the
    ///   committed transactions and nothing else: the database is the state after some prefix of
    ///   the transactions (possibly none: then Weft creates its schema again).
    /// - Each Weft write is one transaction holding the document and its queue entry (the clock
    ///   follows in a second transaction). So the documents present are `doc-0 ..< doc-m` for some
    ///   `m`, each exactly as written, and the queue holds exactly their entries.
    /// - A longer WAL never keeps fewer writes (`m` grows with the length kept).
    /// - The untruncated copy keeps every write that returned before the copy: with
    ///   `synchronous = FULL` each commit was written (and fsynced) to the WAL before returning.
    ///   (A file copy reads the page cache, so this would hold for NORMAL too; FULL additionally
    ///   covers power loss, which a copy cannot simulate.)
    /// - Nothing more: how many writes survive a given cut depends on frame sizes.
    @Test("A truncated WAL opens, passes integrity_check and keeps a prefix of the writes")
    func truncatedWAL() async throws {
        var random = SplitMix64(seed: Self.seed &+ 2)
        let directory = try Self.makeDirectory()
        defer { Self.cleanup(directory) }
        let source = directory.appendingPathComponent("source.sqlite").path
        let count = 40

        let replica = try await Replica.open(path: source, configuration: ReplicaConfiguration(durability: .full))
        let handle = try replica.collection("c")
        for n in 0..<count {
            try await handle.create("doc-\(n)") { editor in
                editor.set("n", to: .int(Int64(n)))
                editor.increment("visits", by: 1)
            }
        }
        // Copy while the replica is open and idle: the main file and WAL are consistent.
        let mainBytes = try #require(Self.contents(source))
        let walBytes = try #require(Self.contents(source + "-wal"), "the open database should have a WAL")
        try #require(walBytes.count > 32 + 24 + 4096, "the WAL should hold frames (it was \(walBytes.count) bytes)")

        var lengths = [0, 16, 32, walBytes.count - 1, walBytes.count]
        for _ in 0..<10 { lengths.append(32 + Int(random.next() % UInt64(walBytes.count - 32))) }
        lengths = Array(Set(lengths)).sorted()

        var kept = [(length: Int, documents: Int)]()
        for length in lengths {
            let copy = directory.appendingPathComponent("copy-\(length)", isDirectory: true)
            try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
            let path = copy.appendingPathComponent("replica.sqlite").path
            try mainBytes.write(to: URL(fileURLWithPath: path))
            try walBytes.prefix(length).write(to: URL(fileURLWithPath: path + "-wal"))

            let storage: SQLiteReplicaStorage
            do {
                storage = try SQLiteReplicaStorage(path: path, durability: .full)
            } catch {
                Issue.record("WAL cut at \(length) of \(walBytes.count) bytes: open failed: \(error)")
                continue
            }
            #expect(try await storage.integrityCheck() == ["ok"], "WAL cut at \(length)")
            let opened = try await Replica(storage: storage)
            let records = try await storage.records(
                in: CollectionName("c"), where: DocumentFilter(includeDeleted: true), limit: nil)
            let present = Set(records.map(\.id.rawValue))
            let m = present.count
            #expect(present == Set((0..<m).map { "doc-\($0)" }), "WAL cut at \(length): not a prefix: \(present.sorted())")
            for (id, record) in records {
                #expect(!record.isDeleted)
                #expect(record.body.int("n").map { "doc-\($0)" } == id.rawValue, "\(id): n = \(String(describing: record.body["n"]))")
                #expect(record.body.counter("visits") == 1)
            }
            if m > 0 { #expect(opened.replicaID == replica.replicaID, "WAL cut at \(length): the replica id changed") }
            // The queue is in step: one entry per document present, equal to its record.
            let entries = try await storage.entries()
            #expect(entries.map(\.key.id.rawValue).sorted() == present.sorted(), "WAL cut at \(length)")
            for entry in entries {
                #expect(records.first { $0.id == entry.key.id }?.record == entry.record, "\(entry.key)")
            }
            #expect(try await storage.totalBytes() == entries.reduce(0) { $0 + $1.byteCount })
            kept.append((length, m))
        }
        print("DamagedFileTests: WAL of \(walBytes.count) bytes cut at (length → documents kept): \(kept.map { "\($0.length)→\($0.documents)" })")
        for (shorter, longer) in zip(kept, kept.dropFirst()) {
            #expect(shorter.documents <= longer.documents, "a longer WAL kept fewer writes: \(shorter) vs \(longer)")
        }
        #expect(kept.last?.length == walBytes.count && kept.last?.documents == count, "the whole WAL must keep every write")
        // A precondition of the test rather than a property of Weft: the writes must still be in the
        // WAL (no checkpoint ran), or the cuts would test nothing.
        #expect(kept.first?.documents == 0, "the writes were checkpointed into the main file; the cuts test nothing")
        withExtendedLifetime(replica) {}
    }

    // MARK: (c) Newer schema

    @Test("A database with a migration from the future fails with schemaTooNew and is left unchanged")
    func schemaFromTheFuture() async throws {
        let directory = try Self.makeDirectory()
        defer { Self.cleanup(directory) }
        let path = directory.appendingPathComponent("future.sqlite").path
        try await Self.makeDatabase(path, ids: ["a", "b"])
        try Self.withGRDB(path) { db in
            try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99: from the future')")
        }
        let before = try Self.snapshot(directory)
        try #require(before[URL(fileURLWithPath: path).lastPathComponent] != nil)
        let contentBefore = try Self.dump(path)

        for attempt in 1...2 {
            let error = await Self.openError(path)
            #expect(error?.kind == .schemaTooNew, "attempt \(attempt): \(String(describing: error))")
        }
        // No WAL holds changes for the file, its content (schema and every row) is the same, and
        // so are its bytes: an older Weft must not touch a newer Weft's file at all.
        let after = try Self.snapshot(directory)
        let name = URL(fileURLWithPath: path).lastPathComponent
        #expect((after[name + "-wal"]?.count ?? 0) == 0, "a failed open left frames in the WAL")
        #expect(try Self.dump(path) == contentBefore, "a failed open changed the database's content")
        #expect(after[name] == before[name], "a failed open changed the database file's bytes")
        let migrations = try await DatabaseQueue(path: path).read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid")
        }
        // The known migrations plus the one from the future, and nothing else: no migration ran.
        #expect(migrations.last == "v99: from the future" && migrations.filter { $0.hasPrefix("v99") }.count == 1, "\(migrations)")
        #expect(migrations.dropLast().map { String($0.prefix(3)) } == ["v1:", "v2:", "v3:", "v4:", "v5:", "v6:", "v7:", "v8:", "v9:"], "\(migrations)")
    }

    /// The schema and every row of every table, as text.
    static func dump(_ path: String) throws -> [String] {
        var configuration = Configuration()
        configuration.readonly = true
        return try DatabaseQueue(path: path, configuration: configuration).read { db in
            var lines = try Row.fetchAll(db, sql: "SELECT type, name, sql FROM sqlite_master ORDER BY name").map(\.description)
            for table in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") {
                lines += try Row.fetchAll(db, sql: "SELECT * FROM \"\(table)\" ORDER BY 1").map { "\(table): \($0)" }
            }
            return lines
        }
    }

    // MARK: (d) Garbage records

    /// Stored bytes that are not a `DocumentRecord`: each must read as `.corrupt`.
    static let garbageRecords: [(name: String, bytes: [UInt8])] = [
        ("0102FF", [0x01, 0x02, 0xFF]),
        ("empty", []),
        ("envelope only", [BinaryFormat.version, DocumentRecord.binaryTypeTag]),
        ("wrong version", [0x7F, DocumentRecord.binaryTypeTag, 0, 0]),
        ("a Document, not a record", Document().encoded()),
        ("huge varint lengths", [BinaryFormat.version, DocumentRecord.binaryTypeTag] + [UInt8](repeating: 0xFF, count: 9) + [0x01]),
    ]

    @Test(
        "A stored record of garbage bytes reads as corrupt, and writes to it change nothing",
        arguments: garbageRecords.indices)
    func garbageRecord(index: Int) async throws {
        let (name, garbage) = Self.garbageRecords[index]
        let directory = try Self.makeDirectory()
        defer { Self.cleanup(directory) }
        let path = directory.appendingPathComponent("garbage.sqlite").path
        try await Self.makeDatabase(path, ids: ["x", "y"])
        let bytes = Data(garbage)
        try Self.withGRDB(path) { db in
            try db.execute(sql: "UPDATE documents SET record = ? WHERE collection = 'c' AND id = 'x'", arguments: [bytes])
        }
        try await Self.expectGarbageIsCorrupt(path: path, name: name)
    }

    @Test("A stored record truncated or with random bytes after a valid envelope never traps")
    func mangledRecord() async throws {
        var random = SplitMix64(seed: Self.seed &+ 3)
        let directory = try Self.makeDirectory()
        defer { Self.cleanup(directory) }
        let path = directory.appendingPathComponent("mangled.sqlite").path
        try await Self.makeDatabase(path, ids: ["x", "y"])
        let valid = try #require(
            try await DatabaseQueue(path: path).read { db in
                try Data.fetchOne(db, sql: "SELECT record FROM documents WHERE id = 'x'")
            })
        var variants: [(String, Data)] = (1..<valid.count).map { ("first \($0) bytes", valid.prefix($0)) }
        variants.append(("one trailing byte", valid + [0]))
        for n in 0..<20 {
            let tail = Self.randomBytes(1 + Int(random.next() % 64), &random)
            variants.append(("envelope + random tail #\(n)", Data([BinaryFormat.version, DocumentRecord.binaryTypeTag] + tail)))
        }
        for (name, bytes) in variants {
            try Self.withGRDB(path) { db in
                try db.execute(sql: "UPDATE documents SET record = ? WHERE id = 'x'", arguments: [bytes])
            }
            let replica = try await Replica.open(path: path)
            let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID("x"))
            do {
                // Random bytes may, rarely, be a valid record; they must never trap.
                _ = try await replica.record(key)
            } catch {
                #expect(error.kind == .corrupt, "\(name): \(error)")
            }
        }
    }

    /// With document c/x stored as garbage: reads of x fail `.corrupt`, writes to x fail `.corrupt`
    /// and change nothing, and document y still works.
    static func expectGarbageIsCorrupt(path: String, name: String) async throws {
        let replica = try await Replica.open(path: path)
        let c = try replica.collection("c")
        let x = DocumentKey(collection: c.name, id: try DocumentID("x"))

        func expectCorrupt(_ what: String, _ body: () async throws(WeftError) -> Void) async {
            do {
                try await body()
                Issue.record("\(name): \(what) succeeded on a garbage record")
            } catch {
                #expect(error.kind == .corrupt, "\(name): \(what): \(error)")
            }
        }
        await expectCorrupt("record(x)") { () async throws(WeftError) in _ = try await replica.record(x) }
        await expectCorrupt("get(x)") { () async throws(WeftError) in _ = try await c.get("x") }
        await expectCorrupt("list") { () async throws(WeftError) in _ = try await c.list() }
        let tables = try Self.tables(path)
        await expectCorrupt("update(x)") { () async throws(WeftError) in try await c.update("x") { $0.set("n", to: 9) } }
        await expectCorrupt("upsert(x)") { () async throws(WeftError) in try await c.upsert("x") { $0.set("n", to: 9) } }
        await expectCorrupt("delete(x)") { () async throws(WeftError) in try await c.delete("x") }
        await expectCorrupt("create(x)") { () async throws(WeftError) in try await c.create("x") { $0.set("n", to: 9) } }
        #expect(try Self.tables(path) == tables, "\(name): a failed write changed the database")
        // The rest of the replica works.
        #expect(try await c.get("y")?.int("n") == 1, "\(name)")
        try await c.update("y") { $0.increment("visits", by: 1) }
        #expect(try await c.get("y")?.counter("visits") == 2, "\(name)")
    }

    /// The documents and queue tables, as rows of hex, for before/after comparisons.
    static func tables(_ path: String) throws -> [String] {
        try DatabaseQueue(path: path).read { db in
            try Row.fetchAll(
                db, sql: "SELECT collection, id, hex(record), deleted, queued_seq, queued_bytes FROM documents ORDER BY collection, id"
            ).map(\.description)
                + Row.fetchAll(db, sql: "SELECT seq, collection, id, bytes FROM superseded ORDER BY seq").map(\.description)
                + Row.fetchAll(db, sql: "SELECT key, hex(value) FROM meta WHERE key != 'last_stamp' ORDER BY key").map(\.description)
        }
    }

    /// SQL that rebuilds `grdb_migrations` without its NOT NULL constraint, with the migrations
    /// it held and one more row whose identifier is `value`.
    static func rebuildMigrations(adding value: String) -> String {
        """
        ALTER TABLE grdb_migrations RENAME TO old_migrations;
        CREATE TABLE grdb_migrations (identifier TEXT PRIMARY KEY);
        INSERT INTO grdb_migrations SELECT identifier FROM old_migrations;
        INSERT INTO grdb_migrations VALUES (\(value));
        DROP TABLE old_migrations
        """
    }

    @Test("A schema whose tables or columns lost their names fails to open as corrupt", arguments: [
        "ALTER TABLE meta RENAME TO meta2",
        "ALTER TABLE documents RENAME COLUMN queued_bytes TO qb",
        "DROP TABLE dead_letters",
        // Damage inside the migrations table (as random bytes once did): an identifier that is
        // NULL or not text. SQLite lets a TEXT PRIMARY KEY hold NULL once NOT NULL is gone.
        Self.rebuildMigrations(adding: "NULL"),
        Self.rebuildMigrations(adding: "X'FFFE'"),
    ])
    func damagedSchemaNames(sql: String) async throws {
        let directory = try Self.makeDirectory()
        defer { Self.cleanup(directory) }
        let path = directory.appendingPathComponent("names.sqlite").path
        try await Self.makeDatabase(path, ids: ["x"])
        try Self.withGRDB(path) { db in try db.execute(sql: sql) }
        do {
            _ = try await Replica.open(path: path)
            Issue.record("\(sql): the replica opened")
        } catch {
            #expect(error.kind == .corrupt, "\(sql): \(error)")
        }
    }

    @Test("A queue entry with a garbage sequence reads as corrupt, and a write to its document changes nothing")
    func garbageQueueEntry() async throws {
        let directory = try Self.makeDirectory()
        defer { Self.cleanup(directory) }
        let path = directory.appendingPathComponent("queue.sqlite").path
        try await Self.makeDatabase(path, ids: ["x", "y"])
        try Self.withGRDB(path) { db in
            try db.execute(sql: "UPDATE documents SET queued_seq = X'0102FF' WHERE collection = 'c' AND id = 'x'")
        }
        let replica = try await Replica.open(path: path)
        let c = try replica.collection("c")
        do {
            _ = try await replica.queuedChanges()
            Issue.record("queuedChanges succeeded with a garbage entry")
        } catch {
            #expect(error.kind == .corrupt, "\(error)")
        }
        // The record is fine, so reads work; a write must coalesce into the garbage entry and fail.
        #expect(try await c.get("x")?.int("n") == 0)
        let tables = try Self.tables(path)
        do {
            try await c.update("x") { $0.set("n", to: 9) }
            Issue.record("a write coalesced into a garbage queue entry")
        } catch {
            #expect(error.kind == .corrupt, "\(error)")
        }
        #expect(try Self.tables(path) == tables, "a failed write changed the database")
        #expect(try await c.get("x")?.int("n") == 0)
    }

    // MARK: Values of the wrong SQL type

    /// Values of the wrong SQL type (from damage, or a foreign tool): the reader runs in a child
    /// process, so a trap (for instance a GRDB conversion `try!`) fails the test instead of
    /// ending the test run.
    static let wrongTypes: [(name: String, sql: String, steps: [String])] = [
        ("record is an integer", "UPDATE documents SET record = 42 WHERE id = 'x'", ["list", "get:x", "write:x"]),
        ("record is text", "UPDATE documents SET record = 'hello' WHERE id = 'x'", ["list", "get:x", "write:x"]),
        ("record is a real", "UPDATE documents SET record = 2.5 WHERE id = 'x'", ["list", "get:x", "write:x"]),
        ("document id is a blob", "UPDATE documents SET id = X'FFFE' WHERE id = 'x'", ["list", "write:y"]),
        ("queue sequence is a real", "UPDATE documents SET queued_seq = 7.5 WHERE id = 'x'", ["entries", "batch", "write:x"]),
        ("queue bytes is text", "UPDATE documents SET queued_bytes = 'many' WHERE id = 'x'", ["entries", "batch", "write:x"]),
        ("superseded id is a blob", "INSERT INTO superseded VALUES (1, 'c', X'FFFE', 10)", ["entries", "batch", "write:y"]),
        ("next_sequence is text", "UPDATE meta SET value = 'soon' WHERE key = 'next_sequence'", ["write:y"]),
        ("replica id is text", "UPDATE meta SET value = 'me' WHERE key = 'replica_id'", ["metadata", "replica"]),
        ("superseded bytes is text", "INSERT INTO superseded VALUES (1, 'c', 'x', 'lots')", ["bytes", "write:y"]),
        ("last_stamp is an integer", "UPDATE meta SET value = 7 WHERE key = 'last_stamp'", ["metadata", "replica"]),
    ]

    @Test("Values of the wrong SQL type fail with a WeftError, never a trap", arguments: wrongTypes.indices)
    func wrongSQLType(index: Int) async throws {
        let (name, sql, steps) = Self.wrongTypes[index]
        let directory = try Self.makeDirectory()
        defer { Self.cleanup(directory) }
        let path = directory.appendingPathComponent("types.sqlite").path
        try await Self.makeDatabase(path, ids: ["x", "y"])
        // SQLite does not enforce column types (the tables are not STRICT), so any value goes in.
        try Self.withGRDB(path) { db in try db.execute(sql: sql) }
        let pristine = try #require(Self.contents(path))
        for step in steps {
            // One process per step, on a fresh copy: a trap in one step does not hide the next.
            try pristine.write(to: URL(fileURLWithPath: path))
            try? FileManager.default.removeItem(atPath: path + "-wal")
            try? FileManager.default.removeItem(atPath: path + "-shm")
            let report = try await Self.runReader(path: path, collection: "c", steps: ["integrity", step])
            print("DamagedFileTests: \(name), \(step) → \(report.lines)")
            let exited = report.exitedNormally
            #expect(exited, "\(name): the reader trapped in step \(step): \(report.trap)")
            #expect(report.steps["open"]?.ok == true, "\(name): \(report.lines)")
            if let result = report.steps[step], !result.ok {
                #expect(result.detail == "corrupt", "\(name): \(step) failed with \(result.detail)")
            }
        }
    }

    struct ReaderReport {
        var steps: [String: (ok: Bool, detail: String)] = [:]
        var lines: [String] = []
        var exitedNormally = false
        var stderr = ""
        /// The lines of `stderr` that say what trapped and where in Weft.
        var trap: String {
            stderr.split(separator: "\n").filter { $0.contains("Fatal error") || $0.contains("Sources/Weft") }
                .prefix(4).joined(separator: "\n")
        }
    }

    /// Runs `WeftCrashWriter read <path> <collection>` and parses its report.
    static func runReader(path: String, collection: String, steps: [String]? = nil) async throws -> ReaderReport {
        let process = Process()
        process.executableURL = try CrashTests.writerExecutable()
        process.arguments = ["read", path, collection] + (steps.map { [$0.joined(separator: ",")] } ?? [])
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        var report = ReaderReport()
        report.exitedNormally = process.terminationReason == .exit && process.terminationStatus == 0
        report.stderr = String(decoding: stderr, as: UTF8.self)
        for line in String(decoding: printed, as: UTF8.self).split(separator: "\n") {
            report.lines.append(String(line))
            let words = line.split(separator: " ", maxSplits: 2)
            guard words.count >= 2 else { continue }
            let detail = words.count > 2 ? String(words[2]) : ""
            report.steps[String(words[0])] = (words[1] == "ok", detail)
        }
        return report
    }
}
