import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite
import WeftServer
import WeftTesting
import WeftWire

/// Issue #15, point 3 on the server: tombstones every replica still syncing has pulled past are
/// forgotten, and a replica that comes back after `tombstone_retention_ms` resyncs without
/// bringing deleted documents back.
@Suite("Tombstone collection on the server, and replicas too far behind")
struct TombstoneHorizonTests {
    static let merge = CentralStoreContractTests.merge

    static let writer = ReplicaID(high: 3, low: 3)
    static let day: UInt64 = 86_400_000

    /// A live record of `id` with field `f`, at `wall`, the writer's `count`th write.
    static func live(_ wall: UInt64, _ count: UInt64) -> DocumentRecord {
        var record = sampleRecord("f", Int64(wall), wall: wall, replica: writer)
        record = DocumentRecord(
            body: record.body, deletion: record.deletion, version: VersionVector([writer: count]))
        return record
    }

    /// `record` deleted at `wall`: its fields removed (unless `hidden`), the flag set.
    static func deleted(_ record: DocumentRecord, _ wall: UInt64, hidden: Bool = false) -> DocumentRecord {
        var body = record.body
        if !hidden { body.removeField("f") }
        var version = record.version
        version.increment(writer)
        return DocumentRecord(
            body: body,
            deletion: LWWRegister(
                true, stamp: HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: writer)),
            version: version)
    }

    @Test(
        "central store 9. the stable point, the horizon, collected_through, born_after and the push guard",
        arguments: CentralKind.testable)
    func storeContract(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        let (a, b, h, d) = (key("c", "a"), key("c", "b"), key("c", "h"), key("c", "d"))
        func push(
            _ sequence: UInt64, _ key: DocumentKey, _ record: DocumentRecord, pulledThrough: UInt64? = 0
        ) async throws {
            _ = try await store.applyPush(
                database: "db", replica: Self.writer, epoch: 0, expectedMark: 0, pulledThrough: pulledThrough,
                changes: [(sequence, key, record)], merge: Self.merge)
        }
        try await push(1, a, Self.live(10, 1))
        try await push(2, b, Self.live(11, 1))
        try await push(3, h, Self.live(12, 1))
        try await push(4, b, Self.deleted(Self.live(11, 1), 13))
        try await push(5, h, Self.deleted(Self.live(12, 1), 14, hidden: true))
        try await push(6, d, Self.live(15, 1))
        try await push(7, d, Self.deleted(Self.live(15, 1), 16))
        let log = try await store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes
        #expect(log.map(\.key) == [a, b, h, d])
        let at = Dictionary(uniqueKeysWithValues: log.map { ($0.key, $0.sequence) })
        let now: UInt64 = 1_000 * Self.day
        // R1 pulled from past b's and h's entries just now; R2 from before them, 40 days ago.
        let r1 = ReplicaID(high: 9, low: 1)
        let r2 = ReplicaID(high: 9, low: 2)
        try await store.rememberPull(
            database: "db", replica: r1, after: at[h] ?? 0, afterTag: 0, served: at[d] ?? 0, servedTag: 0,
            pulledAt: now)
        try await store.rememberPull(
            database: "db", replica: r2, after: 1, afterTag: 0, served: at[b] ?? 0, servedTag: 0,
            pulledAt: now - 40 * Self.day)
        #expect(try await store.collectedThrough(database: "db") == 0)

        // Within 30 days only R1 counts: b goes; h holds a hidden field; d is past R1's cursor.
        var step = try await store.collectTombstones(pulledSince: now - 30 * Self.day, limit: 100)
        #expect(step.removed == 1 && step.passFinished)
        #expect(try await store.record(database: "db", key: b) == nil)
        #expect(
            try await store.record(database: "db", key: h) != nil, "a tombstone holding a hidden field stays")
        #expect(try await store.record(database: "db", key: d) != nil)
        #expect(try await store.collectedThrough(database: "db") == at[b])
        #expect(
            try await store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes.map(
                \.key) == [a, h, d])
        #expect(await store.collectedTombstones >= 1)

        // Counting R2 (a recent pull from 1) holds everything back.
        try await store.rememberPull(
            database: "db", replica: r2, after: 1, afterTag: 0, served: at[b] ?? 0, servedTag: 0,
            pulledAt: now)
        try await store.rememberPull(
            database: "db", replica: r1, after: at[d] ?? 0, afterTag: 0, served: at[d] ?? 0, servedTag: 0,
            pulledAt: now)
        step = try await store.collectTombstones(pulledSince: now - 30 * Self.day, limit: 100)
        #expect(step.removed == 0)
        // Once every replica is past the horizon (none pulled since), the stable point is
        // unbounded: d goes too.
        step = try await store.collectTombstones(pulledSince: now + 1, limit: 100)
        #expect(step.removed == 1)
        let through = try await store.collectedThrough(database: "db")
        #expect(through == at[d])

        // The push guard (rule 6a): a cursor behind what was forgotten (0 included), or none, is
        // refused and changes nothing; a current cursor is not.
        for refused: UInt64? in [0, 1, nil] {
            await #expect(throws: WeftError.self) {
                try await push(20, b, Self.live(30, 5), pulledThrough: refused)
            }
            #expect(try await store.record(database: "db", key: b) == nil)
        }
        try await push(21, b, Self.live(31, 6), pulledThrough: through)
        try await push(22, key("c", "new"), Self.live(32, 1), pulledThrough: through)
        // born_after: b was created again after the store forgot through `through`.
        let page = try await store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes
        #expect(page.first { $0.key == b }?.bornAfter == through)
        #expect(page.first { $0.key == a }?.bornAfter == 0)

        // Databases are apart: one no replica pulls from has an unbounded stable point.
        _ = try await store.applyPush(
            database: "other", replica: Self.writer, changes: [(1, b, Self.live(40, 1))], merge: Self.merge)
        _ = try await store.applyPush(
            database: "other", replica: Self.writer, changes: [(2, b, Self.deleted(Self.live(40, 1), 41))],
            merge: Self.merge)
        _ = try await store.collectTombstones(pulledSince: now - 30 * Self.day, limit: 100)
        #expect(try await store.record(database: "other", key: b) == nil)
        #expect(
            try await store.collectedThrough(database: "db") == through,
            "another database's collection leaves this one's alone")
    }
}

/// End to end: a replica that comes back after the horizon, on SQLite files, against every
/// central store.
@Suite("A replica back after tombstone_retention")
struct TooFarBehindTests {
    static let day: UInt64 = 86_400_000

    struct Fixture {
        let time: ManualTimeSource
        let service: SyncService
        let a: Replica
        let b: Replica
        let engineA: SyncEngine
        let engineB: SyncEngine
    }

    static func fixture(_ kind: CentralKind, _ directory: TemporaryDirectory) async throws -> Fixture {
        let time = ManualTimeSource(milliseconds: SystemTimeSource().currentMilliseconds())
        let service = SyncService(store: try await kind.make(directory), timeSource: time)
        var configuration = ReplicaConfiguration()
        configuration.tombstoneRetentionMilliseconds = 30 * day
        let a = try await Replica.open(
            path: directory.path("a.sqlite"), configuration: configuration, timeSource: time)
        let b = try await Replica.open(
            path: directory.path("b.sqlite"), configuration: configuration, timeSource: time)
        return Fixture(
            time: time, service: service, a: a, b: b,
            engineA: SyncEngine(replica: a, transport: InProcessTransport(service: service, database: "db")),
            engineB: SyncEngine(replica: b, transport: InProcessTransport(service: service, database: "db")))
    }

    @Test(
        "deleted documents stay deleted, writes to them are set aside, the rest is pushed",
        arguments: CentralKind.testable)
    func comingBackAfterTheHorizon(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let f = try await Self.fixture(kind, directory)
        try await f.engineA.syncOnce()
        try await f.engineB.syncOnce()
        let docs = try f.a.collection("docs")
        for id in ["p1", "p2", "p3", "p4", "p5"] {
            try await docs.create(id) { $0.set("v", to: .string("old \(id)")) }
        }
        try await f.engineA.syncOnce()
        try await f.engineB.syncOnce()
        let away = try f.b.collection("docs")
        #expect(try await away.get("p1")?.string("v") == "old p1")
        // A field of p4 written by B, which both see before A deletes p4.
        try await away.update("p4") { $0.set("z", to: .string("b's old")) }
        try await f.engineB.syncOnce()
        try await f.engineA.syncOnce()

        // B goes away with unpushed writes: to a document A deletes (p2), to one A keeps (p3), to
        // one A deletes and creates again (p5), and a document of its own (p9).
        try await away.update("p2") { $0.set("w", to: .string("b on p2")) }
        try await away.update("p3") { $0.set("w", to: .string("b on p3")) }
        try await away.update("p5") { $0.set("w", to: .string("b on p5")) }
        try await away.create("p9") { $0.set("v", to: .string("b's own")) }
        // And one B creates offline that A, meanwhile, creates, deletes and creates again (q).
        try await away.create("q") { $0.set("mine", to: .string("b's q")) }
        try await docs.create("q") { $0.set("v", to: .string("old q")) }
        try await f.engineA.syncOnce()
        for id in ["p1", "p2", "p4", "p5", "q"] { try await docs.delete(id) }
        try await f.engineA.syncOnce()

        // 31 days on, A still syncs; the server forgets the deletions A pulled (B is past the
        // horizon, so it does not hold them back). A creates p4 and p5 again.
        f.time.advance(by: 31 * Self.day)
        try await f.engineA.syncOnce()
        let forgotten = try await f.service.collectTombstones(retention: 30 * Self.day)
        #expect(forgotten == 5)
        #expect(try await f.service.store.collectedThrough(database: "db") > 0)
        // A forgets its tombstones too, so the new p4 and p5 do not descend from the old ones.
        #expect(try await f.a.collectTombstones() == 5)
        try await docs.create("p4") { $0.set("n", to: .string("new p4")) }
        try await docs.create("p5") { $0.set("n", to: .string("new p5")) }
        try await docs.create("q") { $0.set("n", to: .string("new q")) }
        try await f.engineA.syncOnce()

        // B comes back: its push is refused (too far behind), it resyncs, and pushes what may go.
        let report = try await f.engineB.syncOnce()
        #expect(await f.engineB.resyncs == 1)
        _ = report
        #expect(try await away.get("p1") == nil, "deleted on the server: gone here, not brought back")
        #expect(try await f.b.record(key("docs", "p1")) == nil)
        #expect(try await away.get("p2") == nil)
        #expect(
            try await away.get("p3")?.string("w") == "b on p3",
            "a write to a document the server kept is kept")
        let p4 = try #require(try await away.get("p4"))
        #expect(
            p4.string("n") == "new p4" && p4.string("v") == nil && p4.string("z") == nil,
            "the old p4 does not come back into the new one")
        let p5 = try #require(try await away.get("p5"))
        #expect(p5.string("n") == "new p5" && p5.string("w") == nil && p5.string("v") == nil)
        #expect(try await away.get("p9")?.string("v") == "b's own")
        let q = try #require(try await away.get("q"))
        #expect(q.string("mine") == "b's q" && q.string("n") == "new q" && q.string("v") == nil, "B's own q joins the new one")
        let letters = try await f.b.deadLetters()
        #expect(Set(letters.map(\.key.id.rawValue)) == ["p2", "p5"], "\(letters.map(\.key))")
        #expect(
            letters.first { $0.key.id.rawValue == "p2" }?.record.body.string("w") == "b on p2",
            "the set-aside write is readable")
        #expect(letters.allSatisfy { $0.reason.contains("tombstone_retention_ms") })
        #expect(try await f.b.queuedChanges().isEmpty)

        // The server holds B's kept writes, and nothing deleted came back.
        let store = f.service.store
        #expect(try await store.record(database: "db", key: key("docs", "p1")) == nil)
        #expect(try await store.record(database: "db", key: key("docs", "p2")) == nil)
        #expect(try await store.record(database: "db", key: key("docs", "p3"))?.body.string("w") == "b on p3")
        #expect(try await store.record(database: "db", key: key("docs", "p9"))?.body.string("v") == "b's own")
        #expect(try await store.record(database: "db", key: key("docs", "p5"))?.body.string("w") == nil)

        // A replica joining now bootstraps in small pages: its cursor passes below what the
        // server forgot, so after its first page it resyncs, and ends as the server is.
        let late = try await Replica.open(path: directory.path("late.sqlite"), timeSource: f.time)
        let lateEngine = SyncEngine(replica: late, transport: InProcessTransport(service: f.service, database: "db"))
        await lateEngine.setPageSize(2)
        try await lateEngine.syncOnce()
        for id in ["p1", "p2", "p3", "p4", "p5", "p9", "q"] {
            #expect(try await late.record(key("docs", id)) == store.record(database: "db", key: key("docs", id)), "\(id) on the late replica")
        }
        #expect(try await late.deadLetters().isEmpty)

        // Both converge.
        try await f.engineA.syncOnce()
        try await f.engineB.syncOnce()
        for id in ["p1", "p2", "p3", "p4", "p5", "p9", "q"] {
            let held = try await f.b.record(key("docs", id))
            let server = try await store.record(database: "db", key: key("docs", id))
            #expect(held == server, "\(id)")
            // A still holds the tombstones the server forgot (its own retention has not run).
            let other = try await f.a.record(key("docs", id))
            if server == nil, let other {
                #expect(other.isDeleted, "\(id) on A")
            } else {
                #expect(other == server, "\(id) on A")
            }
        }
    }

    @Test("a client that cannot resync for it is refused without being told to resync")
    func olderClientsAreRefused() async throws {
        let directory = TemporaryDirectory()
        let f = try await Self.fixture(.memory, directory)
        try await f.engineA.syncOnce()
        let docs = try f.a.collection("docs")
        try await docs.create("x") { $0.set("v", to: .int(1)) }
        try await docs.create("y") { $0.set("v", to: .int(1)) }
        try await f.engineA.syncOnce()
        let cursor = try await f.a.pullCursor()
        try await docs.delete("x")
        try await f.engineA.syncOnce()
        f.time.advance(by: 31 * Self.day)
        #expect(try await f.service.collectTombstones(retention: 30 * Self.day) == 1)

        let old = PullRequest(after: cursor - 1, replica: ReplicaID(high: 5, low: 5))
        await #expect {
            _ = try await f.service.pull(database: "db", old)
        } throws: { error in
            (error as? SyncError)?.kind == .unavailable && "\(error)".contains("upgrade")
        }
        var current = old
        current.handlesCollection = true
        await #expect {
            _ = try await f.service.pull(database: "db", current)
        } throws: { error in
            (error as? SyncError)?.kind == .tooFarBehind
        }
        // A pull from 0 too: the client may hold documents of its own that were deleted since.
        current.after = 0
        await #expect {
            _ = try await f.service.pull(database: "db", current)
        } throws: { error in
            (error as? SyncError)?.kind == .tooFarBehind
        }
        // A resync's pull goes through and says what the replica needs to know.
        current.resyncingFrom = cursor - 1
        let page = try await f.service.pull(database: "db", current)
        #expect(page.resync?.tooFarBehind == true)
        // x's tombstone was the log's last change: the page that reaches the end ends past it, so
        // the replica, caught up, is not behind (it would be told so for ever).
        let collected = try await f.service.store.collectedThrough(database: "db")
        #expect(!page.hasMore && page.cursor == collected && page.cursor > (page.changes.last?.sequence ?? 0))
        let next = try await f.service.pull(
            database: "db", PullRequest(after: page.cursor, afterTag: page.cursorTag, replica: ReplicaID(high: 5, low: 5), handlesCollection: true))
        #expect(next.changes.isEmpty && next.cursor == collected)
        // A push that does not say what it pulled is refused as transient (its queue stays).
        let record = try #require(try await f.a.record(key("docs", "y")))
        let push = PushRequest(
            replica: ReplicaID(high: 5, low: 5),
            changes: [WireChange(sequence: 1, key: WireKey(collection: "docs", id: "y"), record: record)])
        await #expect {
            _ = try await f.service.push(database: "db", push)
        } throws: { error in
            (error as? SyncError)?.kind == .unavailable && "\(error)".contains("upgrade")
        }
    }
}
