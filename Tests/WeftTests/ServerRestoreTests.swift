import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftPostgres
import WeftSQLite
import WeftWire

/// Issue #14, point 8: a central store restored from a backup. Replicas detect that the
/// server's history is not the one their cursors came from (the cursor's tag, or a handshake
/// that shows the server applied less than it acknowledged), pull everything again and push
/// back what the server lacks; nothing acknowledged is lost, nothing is applied twice.
///
/// Real SQLite replica files and a real SQLite server file, copied as an operator's backup is.
@Suite("A server restored from a backup", .serialized)
struct ServerRestoreTests {
    /// A transport whose server can be swapped, for a replica whose session stays open while
    /// the operator restores the store.
    final class SwappableTransport: SyncTransport {
        let current: Mutex<InProcessTransport>
        init(_ transport: InProcessTransport) { current = Mutex(transport) }
        func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await current.withLock { $0 }.hello(request) }
        func push(_ request: PushRequest) async throws(SyncError) -> PushResponse { try await current.withLock { $0 }.push(request) }
        func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse { try await current.withLock { $0 }.pull(request) }
    }

    /// A writer on a SQLite store behind a swappable transport, with document items/d0 (n = 1)
    /// synced, so its session is open.
    static func writerInSession(_ directory: TemporaryDirectory) async throws
        -> (live: String, policies: ServerPolicies, transport: SwappableTransport, writer: Replica, engine: SyncEngine)
    {
        let live = directory.path("central.sqlite")
        let policies = ServerPolicies(defaultPolicy: .crdt)
        let before = SyncService(store: try SQLiteCentralStore(path: live), policies: policies)
        let transport = SwappableTransport(InProcessTransport(service: before, database: "db"))
        let writer = try await Replica.open(path: directory.path("writer.sqlite"))
        let engine = SyncEngine(replica: writer, transport: transport)
        try await writer.collection("items").create("d0") { $0.increment("n", by: 1) }
        _ = try await engine.syncOnce()
        return (live, policies, transport, writer, engine)
    }

    /// Found by the fault-injection suite (seed 2851714868834001058): a writer whose session
    /// stayed open across the restore, and whose cursor was still inside the backup's history,
    /// saw no failed request and no `resync`; its acknowledged write was gone from the server
    /// for good. Every round now opens with a hello, whose mark tells it.
    @Test func aWriterWhoseSessionStayedOpenNoticesTheRestore() async throws {
        let directory = TemporaryDirectory()
        let (live, policies, transport, writer, engine) = try await Self.writerInSession(directory)
        try IdentityTests.copy(live, to: directory.path("backup.sqlite"))
        // An increment pushed and acknowledged after the backup; the writer does not pull, so
        // its cursor stays inside the backup's history.
        try await writer.collection("items").update("d0") { $0.increment("n", by: 5) }
        #expect(try await engine.pushAll() == 1)
        let sequence = try await writer.acknowledgedThrough()
        #expect(try await writer.isAcknowledged(sequence: sequence))

        // The operator restores the backup; the writer's engine, and its session, go on.
        try IdentityTests.copy(directory.path("backup.sqlite"), to: directory.path("restored.sqlite"))
        let after = SyncService(store: try SQLiteCentralStore(path: directory.path("restored.sqlite")), policies: policies)
        transport.current.withLock { $0 = InProcessTransport(service: after, database: "db") }
        _ = try await engine.syncOnce()
        #expect(await engine.resyncs == 1, "the writer did not notice the restore")
        let key = DocumentKey(collection: try CollectionName("items"), id: try DocumentID("d0"))
        #expect(try await after.store.record(database: "db", key: key)?.body.counter("n") == 6, "the acknowledged increment is lost")
    }

    /// Found by the fault-injection suite (seed 6060483968877760327): a store restored to a
    /// backup taken during the writer's session. A push in that same session (a write-through
    /// write between rounds) was accepted, and its answer confirmed the new sequence over the
    /// lost ones, so the next hello saw nothing missing: the acknowledged increment was gone for
    /// good. Each push now says what the server should already hold
    /// (`PushRequest.expectedAppliedThrough`); the restored store refuses it as forked, and the
    /// hello that follows starts the resync.
    @Test func aPushAfterARestoreInTheSameSessionIsRefusedAndTheLostChangesComeBack() async throws {
        let directory = TemporaryDirectory()
        let (live, policies, transport, writer, engine) = try await Self.writerInSession(directory)
        // The backup, taken while the writer's session is open.
        try IdentityTests.copy(live, to: directory.path("backup.sqlite"))
        try await writer.collection("items").update("d0") { $0.increment("n", by: 5) }
        #expect(try await engine.pushAll() == 1)

        try IdentityTests.copy(directory.path("backup.sqlite"), to: directory.path("restored.sqlite"))
        let after = SyncService(store: try SQLiteCentralStore(path: directory.path("restored.sqlite")), policies: policies)
        transport.current.withLock { $0 = InProcessTransport(service: after, database: "db") }
        // Another push in the same session, before any round's hello.
        try await writer.collection("items").create("d1") { $0.increment("n", by: 7) }
        #expect(try await engine.pushAll() == 1)
        _ = try await engine.syncOnce()
        #expect(await engine.resyncs == 1, "the writer did not notice the restore")
        #expect(try await after.store.record(database: "db", key: key("items", "d0"))?.body.counter("n") == 6, "the acknowledged increment is lost")
        #expect(try await after.store.record(database: "db", key: key("items", "d1"))?.body.counter("n") == 7)
        for id in ["d0", "d1"] {
            #expect(try await writer.record(key("items", id)) == after.store.record(database: "db", key: key("items", id)))
        }
    }

    /// A write that survives only on a replica that pulled it: its author pushed it and was
    /// acknowledged, then went away for good (a lost phone), and the store was restored to a
    /// backup without it. The reader's resync pushes it back as a relay of another known
    /// replica's write, which the server cannot verify: it limits the claim to what it holds,
    /// and resolves the limited record as concurrent under the policy (joined under CRDT, the
    /// later stamp under last writer wins). Before, the limited record compared equal to the
    /// server's and the server kept its own: the write was lost.
    @Test(arguments: [false, true])
    func aWriteRelayedAfterTheServerLostItSurvives(lastWriterWins: Bool) async throws {
        let directory = TemporaryDirectory()
        let live = directory.path("central.sqlite")
        let policies = ServerPolicies(defaultPolicy: lastWriterWins ? .lastWriterWins : .crdt)
        let before = SyncService(store: try SQLiteCentralStore(path: live), policies: policies)
        let author = try await Replica.open(path: directory.path("author.sqlite"))
        let reader = try await Replica.open(path: directory.path("reader.sqlite"))
        let authorEngine = SyncEngine(replica: author, transport: InProcessTransport(service: before, database: "db"))
        let readerTransport = SwappableTransport(InProcessTransport(service: before, database: "db"))
        let readerEngine = SyncEngine(replica: reader, transport: readerTransport)
        try await author.collection("items").create("d") {
            $0.increment("n", by: 3)
            $0.set("v", to: "first")
        }
        _ = try await authorEngine.syncOnce()
        _ = try await readerEngine.syncOnce()
        try IdentityTests.copy(live, to: directory.path("backup.sqlite"))
        try await author.collection("items").update("d") {
            $0.increment("n", by: 4)
            $0.set("v", to: "second")
        }
        #expect(try await authorEngine.syncOnce().pushed == 1)
        _ = try await readerEngine.syncOnce()
        #expect(try await reader.collection("items").get("d")?.string("v") == "second")

        // The author is gone; the store is restored without its second write.
        try IdentityTests.copy(directory.path("backup.sqlite"), to: directory.path("restored.sqlite"))
        let after = SyncService(store: try SQLiteCentralStore(path: directory.path("restored.sqlite")), policies: policies)
        readerTransport.current.withLock { $0 = InProcessTransport(service: after, database: "db") }
        // A newcomer's write moves the restored log past the reader's cursor.
        let newcomer = try await Replica.open(path: directory.path("newcomer.sqlite"))
        try await newcomer.collection("other").create("x") { $0.set("v", to: "x") }
        try await newcomer.collection("other").create("y") { $0.set("v", to: "y") }
        _ = try await SyncEngine(replica: newcomer, transport: InProcessTransport(service: after, database: "db")).syncOnce()
        _ = try await readerEngine.syncOnce()
        _ = try await readerEngine.syncOnce()
        #expect(await readerEngine.resyncs == 1)

        let server = try #require(try await after.store.record(database: "db", key: key("items", "d")))
        #expect(server.body.string("v") == "second", "the relayed write is lost: \(server.body)")
        if !lastWriterWins { #expect(server.body.counter("n") == 7, "the relayed increment is lost: \(server.body)") }
        // The contents agree; the reader's vector still counts the author's second write,
        // which the server could not verify and did not count.
        let local = try #require(try await reader.record(key("items", "d")))
        #expect(local.body == server.body && local.deletion == server.deletion)
        #expect(local.version.compare(to: server.version) == .after)
    }

    /// The issue's case: 20 changes, a backup after the first 10, the backup restored, new
    /// changes pushed to it (5: the old cursor names no change; 15: it names another change).
    /// A reader whose cursor was 20 gets the new changes; the writers push back the 10 lost
    /// ones; every replica ends equal to the server, and counters are not doubled.
    @Test(arguments: [5, 15])
    func replicasRecoverFromARestoredServer(newChanges: Int) async throws {
        let directory = TemporaryDirectory()
        let live = directory.path("central.sqlite")
        let backup = directory.path("backup.sqlite")
        let policies = ServerPolicies(defaultPolicy: .crdt)
        let before = SyncService(store: try SQLiteCentralStore(path: live), policies: policies)
        var writerA = try await Replica.open(path: directory.path("a.sqlite"))
        let writerB = try await Replica.open(path: directory.path("b.sqlite"))
        let reader = try await Replica.open(path: directory.path("reader.sqlite"))
        func engine(_ replica: Replica, _ service: SyncService) -> SyncEngine {
            SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db"))
        }

        // Ten changes, then the backup.
        for index in 0..<10 {
            let writer = index % 2 == 0 ? writerA : writerB
            try await writer.collection("items").create("d\(index)") { $0.set("v", to: .int(Int64(index))); $0.increment("n", by: 1) }
            _ = try await engine(writer, before).syncOnce()
        }
        try IdentityTests.copy(live, to: backup)
        // Writer A restarts after the backup: a new session, which the backup does not know.
        writerA = try await Replica.open(path: directory.path("a.sqlite"))
        // Ten more, which the backup does not have; the reader pulls all twenty.
        for index in 10..<20 {
            let writer = index % 2 == 0 ? writerA : writerB
            try await writer.collection("items").create("d\(index)") { $0.set("v", to: .int(Int64(index))); $0.increment("n", by: 1) }
            _ = try await engine(writer, before).syncOnce()
        }
        // A counter increment in the lost range, on a document the backup has.
        try await writerA.collection("items").update("d0") { $0.increment("n", by: 5) }
        _ = try await engine(writerA, before).syncOnce()
        _ = try await engine(reader, before).syncOnce()
        let readerCursor = try await reader.pullCursor()
        #expect(readerCursor >= 21)

        // The operator restores the backup (as a new file: the old one is still open here).
        let restoredPath = directory.path("restored.sqlite")
        try IdentityTests.copy(backup, to: restoredPath)
        let after = SyncService(store: try SQLiteCentralStore(path: restoredPath), policies: policies)
        // A newcomer pushes new changes to the restored server.
        let newcomer = try await Replica.open(path: directory.path("newcomer.sqlite"))
        for index in 0..<newChanges {
            try await newcomer.collection("items").create("e\(index)") { $0.set("v", to: .int(Int64(100 + index))) }
        }
        _ = try await engine(newcomer, after).syncOnce()
        let serverHead = try #require(try await after.store.changes(database: "db", after: 0, limit: 1_000, maxBytes: 1 << 24).changes.last)
        #expect(serverHead.sequence >= 10 + UInt64(newChanges))

        // Writer A restarts again: its last confirmed session is one the restored server never saw.
        writerA = try await Replica.open(path: directory.path("a.sqlite"))
        // The reader pulls first: its cursor names a change the restored history lacks.
        let readerEngine = engine(reader, after)
        _ = try await readerEngine.syncOnce()
        #expect(await readerEngine.resyncs == 1, "the reader did not notice the restore")
        for index in 0..<newChanges {
            #expect(try await reader.collection("items").get("e\(index)") != nil, "the reader never got e\(index)")
        }
        // The writers say hello: the server applied less than it acknowledged to them.
        let engines = [engine(writerA, after), engine(writerB, after), readerEngine, engine(newcomer, after)]
        for _ in 0..<3 { for engine in engines { _ = try await engine.syncOnce() } }
        for engine in engines.prefix(2) { #expect(await engine.resyncs == 1, "a writer did not resync") }

        // Nothing acknowledged is lost, nothing doubled, and every replica equals the server.
        for index in 0..<20 {
            let record = try #require(try await after.store.record(database: "db", key: key("items", "d\(index)")), "d\(index) was lost")
            #expect(record.body.int("v") == Int64(index))
            #expect(record.body.counter("n") == (index == 0 ? 6 : 1), "d\(index)'s counter: \(String(describing: record.body.counter("n")))")
        }
        for index in 0..<newChanges {
            #expect(try await after.store.record(database: "db", key: key("items", "e\(index)")) != nil)
        }
        var keys = (0..<20).map { key("items", "d\($0)") }
        keys += (0..<newChanges).map { key("items", "e\($0)") }
        for (name, replica) in [("a", writerA), ("b", writerB), ("reader", reader), ("newcomer", newcomer)] {
            for document in keys {
                let server = try await after.store.record(database: "db", key: document)
                #expect(try await replica.record(document) == server, "\(name) differs from the server on \(document)")
            }
            #expect(try await replica.queuedChanges().isEmpty, "\(name) still has queued changes")
            #expect(try await replica.isResyncing() == false)
        }
    }

    /// The handshake alone detects it: a lone writer, restarted after the backup and again after
    /// the restore (so the restored server knows neither of its last two sessions), is not told
    /// it forked: the server applied less than it acknowledged, so the writer resyncs and pushes
    /// back what the backup lacks. An older copy of the writer's file is still told it forked.
    @Test func aLoneWriterPushesBackWhatTheBackupLacks() async throws {
        let directory = TemporaryDirectory()
        let live = directory.path("central.sqlite")
        let path = directory.path("w.sqlite")
        let service = SyncService(store: try SQLiteCentralStore(path: live))
        var writer = try await Replica.open(path: path)
        for index in 0..<10 {
            try await writer.collection("items").create("d\(index)") { $0.set("v", to: .int(Int64(index))) }
            _ = try await SyncEngine(replica: writer, transport: InProcessTransport(service: service, database: "db")).syncOnce()
        }
        try IdentityTests.copy(live, to: directory.path("backup.sqlite"))
        try IdentityTests.copy(path, to: directory.path("old-copy.sqlite"))
        writer = try await Replica.open(path: path)
        for index in 10..<20 {
            try await writer.collection("items").create("d\(index)") { $0.set("v", to: .int(Int64(index))) }
            _ = try await SyncEngine(replica: writer, transport: InProcessTransport(service: service, database: "db")).syncOnce()
        }
        try IdentityTests.copy(directory.path("backup.sqlite"), to: directory.path("restored.sqlite"))
        let restored = SyncService(store: try SQLiteCentralStore(path: directory.path("restored.sqlite")))
        writer = try await Replica.open(path: path)
        let identity = writer.replicaID
        let engine = SyncEngine(replica: writer, transport: InProcessTransport(service: restored, database: "db"))
        _ = try await engine.syncOnce()
        #expect(await engine.resyncs == 1)
        #expect(writer.replicaID == identity, "the writer was told it forked")
        for index in 0..<20 {
            #expect(try await restored.store.record(database: "db", key: key("items", "d\(index)")) != nil, "d\(index) was lost")
        }
        // The copy of the file from before the backup's later writes: still a fork.
        let copy = try await Replica.open(path: directory.path("old-copy.sqlite"))
        _ = try await SyncEngine(replica: copy, transport: InProcessTransport(service: restored, database: "db")).syncOnce()
        #expect(copy.replicaID != identity, "an older copy of the file kept the writer's identity")
    }

    /// The same on PostgreSQL: the database copied (`CREATE DATABASE … TEMPLATE`, as a restore
    /// from a dump or point-in-time recovery leaves it) after ten changes, ten more written,
    /// then the copy put in service and a newcomer's changes pushed to it.
    @Test(.enabled(if: !TestPostgres.skipped, "WEFT_SKIP_POSTGRES=1 leaves PostgreSQL out"))
    func replicasRecoverFromARestoredPostgreSQL() async throws {
        let directory = TemporaryDirectory()
        let url = try await TestPostgres.freshDatabase()
        let name = url.lastPathComponent
        func service(_ url: URL) async throws -> SyncService {
            SyncService(store: try await PostgresCentralStore(url: url), policies: ServerPolicies(defaultPolicy: .crdt))
        }
        let writer = try await Replica.open(path: directory.path("w.sqlite"))
        let reader = try await Replica.open(path: directory.path("r.sqlite"))
        var live = try await service(url)
        func round(_ service: SyncService, _ replicas: [Replica]) async throws {
            for replica in replicas { _ = try await SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db")).syncOnce() }
        }
        for index in 0..<10 {
            try await writer.collection("items").create("d\(index)") { $0.set("v", to: .int(Int64(index))); $0.increment("n", by: 1) }
            try await round(live, [writer])
        }
        try await round(live, [reader])
        await (live.store as? PostgresCentralStore)?.shutdown()
        let backup = try await TestPostgres.freshDatabase(options: "TEMPLATE \(name)")
        live = try await service(url)
        for index in 10..<20 {
            try await writer.collection("items").create("d\(index)") { $0.set("v", to: .int(Int64(index))); $0.increment("n", by: 1) }
            try await round(live, [writer])
        }
        try await writer.collection("items").update("d0") { $0.increment("n", by: 5) }
        try await round(live, [writer, reader])
        await (live.store as? PostgresCentralStore)?.shutdown()

        let restored = try await service(try await TestPostgres.freshDatabase(options: "TEMPLATE \(backup.lastPathComponent)"))
        let newcomer = try await Replica.open(path: directory.path("n.sqlite"))
        for index in 0..<15 { try await newcomer.collection("items").create("e\(index)") { $0.set("v", to: .int(Int64(index))) } }
        try await round(restored, [newcomer])
        for _ in 0..<3 { try await round(restored, [reader, writer, newcomer]) }
        for index in 0..<20 {
            let record = try #require(try await restored.store.record(database: "db", key: key("items", "d\(index)")), "d\(index) was lost")
            #expect(record.body.counter("n") == (index == 0 ? 6 : 1))
        }
        var keys = (0..<20).map { key("items", "d\($0)") }
        keys += (0..<15).map { key("items", "e\($0)") }
        for replica in [writer, reader, newcomer] {
            for document in keys {
                #expect(try await replica.record(document) == restored.store.record(database: "db", key: document), "\(document)")
            }
        }
        await (restored.store as? PostgresCentralStore)?.shutdown()
    }

    /// A resync cut short by a crash (the flag is set, the push-backs not yet queued) starts over
    /// when the replica opens again, and ends with the same result.
    @Test func anInterruptedResyncStartsOver() async throws {
        let directory = TemporaryDirectory()
        let service = SyncService(store: try SQLiteCentralStore(path: directory.path("central.sqlite")), policies: ServerPolicies(defaultPolicy: .crdt))
        let path = directory.path("r.sqlite")
        do {
            let replica = try await Replica.open(path: path)
            try await replica.collection("items").create("x") { $0.insert("a", intoSet: "s") }
            try await replica.beginResync()
            #expect(try await replica.isResyncing())
            #expect(try await replica.pullPosition() == (0, 0))
        }
        let reopened = try await Replica.open(path: path)
        #expect(try await reopened.isResyncing(), "the resync flag did not survive the restart")
        let engine = SyncEngine(replica: reopened, transport: InProcessTransport(service: service, database: "db"))
        _ = try await engine.syncOnce()
        #expect(await engine.resyncs == 1)
        #expect(try await reopened.isResyncing() == false)
        #expect(try await service.store.record(database: "db", key: key("items", "x")) == reopened.record(key("items", "x")))
    }

    /// The wire check alone: a cursor whose tag the server's change does not have is answered
    /// `resync`; the right tag, a tag of 0 (unknown) and the start of the log are answered.
    @Test func aCursorWithAnotherTagIsAnsweredResync() async throws {
        let directory = TemporaryDirectory()
        let service = SyncService(store: try SQLiteCentralStore(path: directory.path("central.sqlite")))
        let replica = try await Replica.open(path: directory.path("r.sqlite"))
        try await replica.collection("items").create("x") { $0.set("v", to: 1) }
        _ = try await SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db")).syncOnce()
        let page = try await service.pull(database: "db", PullRequest(after: 0))
        let change = try #require(page.changes.first)
        #expect(page.cursorTag != 0)
        _ = try await service.pull(database: "db", PullRequest(after: change.sequence, afterTag: page.cursorTag))
        _ = try await service.pull(database: "db", PullRequest(after: change.sequence, afterTag: 0))
        await #expect(throws: SyncError.self) {
            try await service.pull(database: "db", PullRequest(after: change.sequence, afterTag: page.cursorTag ^ 1))
        }
        do {
            _ = try await service.pull(database: "db", PullRequest(after: change.sequence + 100, afterTag: 5))
            Issue.record("a cursor past the end of the log was answered")
        } catch {
            #expect(error.kind == .resync)
        }
        #expect(await service.resyncsRequested == 2)
    }
}
