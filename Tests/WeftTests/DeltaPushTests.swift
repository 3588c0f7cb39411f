import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftSQLite
import WeftServer
import WeftWire

/// Pushes of a large document's small change as a delta over the record the server last sent
/// (the replica's server base), against real SQLite replicas and every central store: small on
/// the wire, the server ends with exactly the replica's record, and whole records whenever the
/// server no longer holds the base, after lost answers and restarts, and with older peers.
@Suite("Delta pushes", .serialized)
struct DeltaPushTests {
    typealias Setup = DeltaSyncTests.Setup

    static let big = key("orders", "big")

    /// A and B both hold the large document, and each holds the server's record as its base.
    static func twoReplicasHoldingTheDocument(_ setup: Setup, fields: Int = 5_000) async throws -> (
        a: (Replica, SyncEngine, DeltaSyncTests.CountingTransport),
        b: (Replica, SyncEngine, DeltaSyncTests.CountingTransport)
    ) {
        let a = try await setup.replica("a")
        let b = try await setup.replica("b")
        try await DeltaSyncTests.fill(a.0, "orders", "big", fields: fields)
        _ = try await a.1.syncOnce()
        _ = try await b.1.syncOnce()
        return (a, b)
    }

    @Test(
        "One field of a large document edited: the push is a small delta, and the server ends with the replica's record",
        arguments: CentralKind.testable)
    func aSmallEditPushesSmall(_ kind: CentralKind) async throws {
        let setup = try await Setup(kind)
        let ((a, engineA, transportA), (b, engineB, _)) = try await Self.twoReplicasHoldingTheDocument(setup)
        let bases = try await SQLiteReplicaStorage(path: setup.directory.path("a.sqlite")).serverBaseDigests(
            for: [Self.big])
        #expect(bases.count == 1, "the pull kept the server's record as a base")
        let whole = transportA.pushedBytes.withLock { $0 }
        #expect(whole > 10_000, "the first push carries the whole record")

        for round in 0..<3 {
            try await a.collection("orders").update("big") {
                $0.set("field\(round)", to: .string("edited in round \(round)"))
            }
            transportA.pushedBytes.withLock { $0 = 0 }
            transportA.pulled.withLock { $0 = 0 }
            _ = try await engineA.syncOnce()
            let pushed = transportA.pushedBytes.withLock { $0 }
            let pulled = transportA.pulled.withLock { $0 }
            #expect(pushed < 2_048, "round \(round): one field's edit pushed in \(pushed) bytes")
            #expect(
                pulled < 2_048,
                "round \(round): its own change came back in \(pulled) bytes, a delta over the base")
            let server = try #require(try await setup.store.record(database: "db", key: Self.big))
            #expect(
                try await a.record(Self.big) == server, "round \(round): the server holds exactly A's record")
        }
        #expect(transportA.deltasPushed.withLock { $0 } == 3)
        let refusals = await engineA.deltaPushes.refused
        #expect(refusals == 0)
        #expect(transportA.wholeRetries.withLock { $0 } == 0)
        _ = try await engineB.syncOnce()
        #expect(try await b.record(Self.big) == (try await a.record(Self.big)))
        #expect(try await b.collection("orders").get("big")?.string("field2") == "edited in round 2")
    }

    @Test(
        "A delta over a version the server no longer holds is refused whole, nothing applied, and goes again whole",
        arguments: CentralKind.testable)
    func aStaleBaseFallsBackToTheWholeRecord(_ kind: CentralKind) async throws {
        let setup = try await Setup(kind)
        let ((a, engineA, transportA), (b, engineB, _)) = try await Self.twoReplicasHoldingTheDocument(setup)
        // B's edit reaches the server first; A's delta is over the version before it.
        try await b.collection("orders").update("big") { $0.set("field1", to: "b") }
        _ = try await engineB.syncOnce()
        try await a.collection("orders").update("big") { $0.set("field2", to: "a") }
        try await a.collection("orders").update("big") { $0.removeField("field3") }
        transportA.pushedBytes.withLock { $0 = 0 }
        _ = try await engineA.syncOnce()
        let counts = await engineA.deltaPushes
        #expect(counts.sent == 1 && counts.refused == 1)
        #expect(transportA.pushedBytes.withLock { $0 } > 10_000, "the refused document went again whole")
        _ = try await engineB.syncOnce()
        let server = try #require(try await setup.store.record(database: "db", key: Self.big))
        let (atA, atB) = (try await a.record(Self.big), try await b.record(Self.big))
        #expect(atA == server && atB == server)
        #expect(
            server.body.string("field1") == "b" && server.body.string("field2") == "a"
                && server.body["field3"] == nil)
        #expect(server.body.string("field4") == "value 4 of a large document")
    }

    @Test(
        "The service refuses a delta over any record but its own, applying nothing of the push",
        arguments: CentralKind.testable)
    func theServiceRefusesAForeignBase(_ kind: CentralKind) async throws {
        let setup = try await Setup(kind)
        let ((a, engineA, _), _) = try await Self.twoReplicasHoldingTheDocument(setup, fields: 300)
        let before = try #require(try await setup.store.record(database: "db", key: Self.big))
        let log = try await setup.store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 30)
            .changes
        try await a.collection("orders").update("big") { $0.set("field1", to: "edited") }
        let edited = try #require(try await a.record(Self.big))
        let delta = try #require(edited.delta(since: before))
        // A client of its own, speaking the wire directly.
        let client = ReplicaID(high: 0x5eed, low: 77)
        let hello = try await setup.service.hello(
            database: "db",
            HelloRequest(replica: client, confirmedEpoch: 0, epoch: 77, acknowledgedThrough: 0))
        #expect(
            hello.status == .accepted && !hello.acceptsDeltaPushes,
            "a hello that does not offer deltas is not told")
        let other = WireChange(sequence: 90, key: WireKey(collection: "orders", id: "other"), record: edited)
        for base in [before.digest &+ 1, 0] {
            let push = PushRequest(
                replica: client, epoch: 77,
                changes: [
                    other,
                    WireChange(
                        sequence: 91, key: WireKey(collection: "orders", id: "big"), record: delta,
                        deltaBase: base),
                ])
            do {
                _ = try await setup.service.push(database: "db", push)
                Issue.record("a delta over base \(base) was applied")
            } catch {
                #expect(error.kind == .deltaBaseUnknown, "\(error)")
            }
        }
        // A delta of a document the server does not hold at all.
        let missing = PushRequest(
            replica: client, epoch: 77,
            changes: [
                WireChange(
                    sequence: 92, key: WireKey(collection: "orders", id: "nowhere"), record: delta,
                    deltaBase: before.digest)
            ])
        await #expect(throws: SyncError.self) { _ = try await setup.service.push(database: "db", missing) }
        #expect(try await setup.store.record(database: "db", key: Self.big) == before)
        #expect(try await setup.store.record(database: "db", key: key("orders", "other")) == nil)
        #expect(
            try await setup.store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 30).changes
                == log)
        _ = engineA
    }

    /// Forwards to a store, running a hook once at the start of the next push: a change that
    /// commits between the service's rebuilding of a delta and the push's own transaction.
    final class InterleavingStore: CentralStore {
        let base: any CentralStore
        let hook = Mutex<(@Sendable () async -> Void)?>(nil)
        /// How many records were read one by one (`record(database:key:)`).
        let reads = Mutex(0)
        init(_ base: any CentralStore) { self.base = base }
        func hello(database: String, replica: ReplicaID, confirmedEpoch: UInt64, epoch: UInt64, acknowledgedThrough: UInt64)
            async throws(WeftError) -> (accepted: Bool, appliedThrough: UInt64, receipt: UInt64)
        {
            try await base.hello(
                database: database, replica: replica, confirmedEpoch: confirmedEpoch, epoch: epoch, acknowledgedThrough: acknowledgedThrough)
        }
        func tag(database: String, sequence: UInt64) async throws(WeftError) -> UInt64? {
            try await base.tag(database: database, sequence: sequence)
        }
        func knownReplicas(database: String, among replicas: Set<ReplicaID>) async throws(WeftError) -> Set<ReplicaID> {
            try await base.knownReplicas(database: database, among: replicas)
        }
        func applyPush(
            database: String, replica: ReplicaID, epoch: UInt64, expectedMark: UInt64, pulledThrough: UInt64?, receipt: UInt64,
            changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)], projector: DocumentProjector,
            merge: @escaping @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
                record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
            )
        ) async throws(WeftError) -> (mark: UInt64, receipt: PushReceipt) {
            if let run = hook.withLock({ hook in
                defer { hook = nil }
                return hook
            }) {
                await run()
            }
            return try await base.applyPush(
                database: database, replica: replica, epoch: epoch, expectedMark: expectedMark, pulledThrough: pulledThrough, receipt: receipt,
                changes: changes, projector: projector, merge: merge)
        }
        func documents(
            database: String, collection: CollectionName, after: DocumentID?, limit: Int, filters: [ProjectionFilter], projector: DocumentProjector
        ) async throws(WeftError) -> [(id: DocumentID, record: DocumentRecord)] {
            try await base.documents(database: database, collection: collection, after: after, limit: limit, filters: filters, projector: projector)
        }
        func changes(database: String, after: UInt64, limit: Int, maxBytes: Int) async throws(WeftError)
            -> (changes: [LoggedChange], hasMore: Bool)
        {
            try await base.changes(database: database, after: after, limit: limit, maxBytes: maxBytes)
        }
        func record(database: String, key: DocumentKey) async throws(WeftError) -> DocumentRecord? {
            reads.withLock { $0 += 1 }
            return try await base.record(database: database, key: key)
        }
        func conflicts(database: String, limit: Int) async throws(WeftError) -> [ConflictRecord] {
            try await base.conflicts(database: database, limit: limit)
        }
        func rememberPull(
            database: String, replica: ReplicaID, after: UInt64, afterTag: UInt64, served: UInt64, servedTag: UInt64, pulledAt: UInt64
        ) async throws(WeftError) {
            try await base.rememberPull(
                database: database, replica: replica, after: after, afterTag: afterTag, served: served, servedTag: servedTag,
                pulledAt: pulledAt)
        }
        func servedCursor(database: String, sequence: UInt64, tag: UInt64) async throws(WeftError) -> Bool {
            try await base.servedCursor(database: database, sequence: sequence, tag: tag)
        }
        func compactLog(limit: Int) async throws(WeftError) -> (removed: Int, passFinished: Bool) {
            try await base.compactLog(limit: limit)
        }
        var compactedEntries: UInt64 { get async { await base.compactedEntries } }
        func collectTombstones(pulledSince: UInt64, limit: Int) async throws(WeftError) -> (removed: Int, passFinished: Bool) {
            try await base.collectTombstones(pulledSince: pulledSince, limit: limit)
        }
        func collectedThrough(database: String) async throws(WeftError) -> UInt64 { try await base.collectedThrough(database: database) }
        var collectedTombstones: UInt64 { get async { await base.collectedTombstones } }
    }

    @Test(
        "A change committed between the rebuild of a delta and the push's transaction is merged, not lost",
        arguments: CentralKind.testable)
    func aChangeBetweenRebuildAndCommitIsMerged(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = InterleavingStore(try await kind.make(directory))
        let service = SyncService(store: store)
        func replica(_ name: String) async throws -> (Replica, SyncEngine) {
            let replica = try await Replica.open(path: directory.path("\(name).sqlite"))
            return (replica, SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db")))
        }
        let (a, engineA) = try await replica("a")
        let (b, engineB) = try await replica("b")
        try await DeltaSyncTests.fill(a, "orders", "big", fields: 2_000)
        _ = try await engineA.syncOnce()
        _ = try await engineB.syncOnce()
        try await a.collection("orders").update("big") { $0.set("field1", to: "a") }
        try await b.collection("orders").update("big") { $0.set("field2", to: "b") }
        // B's push commits after the service rebuilt A's delta and before A's push applies.
        store.hook.withLock { $0 = { _ = try? await engineB.pushAll() } }
        _ = try await engineA.pushAll()
        let counts = await engineA.deltaPushes
        #expect(counts.sent == 1 && counts.refused == 0)
        #expect(store.hook.withLock { $0 == nil }, "the hook ran")
        _ = try await engineB.syncOnce()
        _ = try await engineA.syncOnce()
        let server = try #require(try await store.record(database: "db", key: Self.big))
        let (atA, atB) = (try await a.record(Self.big), try await b.record(Self.big))
        #expect(atA == server && atB == server)
        #expect(server.body.string("field1") == "a" && server.body.string("field2") == "b")
        #expect(server.body.string("field3") == "value 3 of a large document")
    }

    @Test("A hostile push of many deltas costs the server one read, or reads bounded by the size limit")
    func manyDeltasAreBounded() async throws {
        let directory = TemporaryDirectory()
        let store = InterleavingStore(try await CentralKind.sqlite.make(directory))
        // 1 MiB of rebuilt records per push at most.
        let service = SyncService(store: store, limits: WireLimits(maximumDecompressedBytes: 1 << 20))
        let replica = try await Replica.open(path: directory.path("a.sqlite"))
        let engine = SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db"))
        try await DeltaSyncTests.fill(replica, "orders", "big", fields: 3_000)
        _ = try await engine.syncOnce()
        let stored = try #require(try await store.record(database: "db", key: Self.big))
        try await replica.collection("orders").update("big") { $0.set("field1", to: "x") }
        let delta = try #require(try await replica.record(Self.big)?.delta(since: stored))
        let client = ReplicaID(high: 0x5eed, low: 9)
        _ = try await service.hello(database: "db", HelloRequest(replica: client, confirmedEpoch: 0, epoch: 9))
        for (base, expected) in [(UInt64(0), SyncError.Kind.deltaBaseUnknown), (stored.digest, .rejected)] {
            let push = PushRequest(
                replica: client, epoch: 9,
                changes: (1...2_000).map {
                    WireChange(sequence: UInt64($0), key: WireKey(collection: "orders", id: "big"), record: delta, deltaBase: base)
                })
            store.reads.withLock { $0 = 0 }
            do {
                _ = try await service.push(database: "db", push)
                Issue.record("a push of 2,000 deltas was applied")
            } catch {
                #expect(error.kind == expected, "\(error)")
            }
            let reads = store.reads.withLock { $0 }
            let bound = (1 << 20) / stored.encoded().count + 1
            #expect(reads <= (base == 0 ? 1 : bound), "\(reads) records read for one push")
        }
        #expect(try await store.record(database: "db", key: Self.big) == stored, "nothing applied")
    }

    @Test(
        "A lost answer to a delta push, and a restart, lose nothing and keep pushes small",
        arguments: CentralKind.testable)
    func lostAnswersAndRestarts(_ kind: CentralKind) async throws {
        let setup = try await Setup(kind)
        let ((a, engineA, transportA), (b, engineB, _)) = try await Self.twoReplicasHoldingTheDocument(setup)
        // The server applies A's delta, and the answer is lost: A sends it again, now over a
        // version the server has moved past, and the server refuses it; it goes whole.
        try await a.collection("orders").update("big") { $0.set("field1", to: "first") }
        transportA.loseNextDeltaAnswer.withLock { $0 = true }
        await #expect(throws: SyncError.self) { _ = try await engineA.syncOnce() }
        #expect(try await setup.store.record(database: "db", key: Self.big)?.body.string("field1") == "first")
        try await a.collection("orders").update("big") { $0.set("field2", to: "second") }
        _ = try await engineA.syncOnce()
        #expect(try await a.queuedChanges().isEmpty)
        let server = try #require(try await setup.store.record(database: "db", key: Self.big))
        #expect(try await a.record(Self.big) == server)
        #expect(server.body.string("field1") == "first" && server.body.string("field2") == "second")

        // Reopened, the replica still holds its base and pushes the next edit small.
        let reopened = try await Replica.open(path: setup.directory.path("a.sqlite"))
        let transport = DeltaSyncTests.CountingTransport(
            InProcessTransport(service: setup.service, database: "db"))
        let engine = SyncEngine(replica: reopened, transport: transport)
        try await reopened.collection("orders").update("big") { $0.set("field3", to: "after the restart") }
        _ = try await engine.syncOnce()
        #expect(transport.deltasPushed.withLock { $0 } == 1)
        #expect(transport.pushedBytes.withLock { $0 } < 2_048)
        _ = try await engineB.syncOnce()
        let final = try #require(try await setup.store.record(database: "db", key: Self.big))
        let (atA, atB) = (try await reopened.record(Self.big), try await b.record(Self.big))
        #expect(atA == final && atB == final)
        #expect(final.body.string("field3") == "after the restart")
        _ = engineA
    }

    @Test(
        "Pushes in a row without a sync round between them (write-through) stay small deltas",
        arguments: CentralKind.testable)
    func pushesInARowStaySmall(_ kind: CentralKind) async throws {
        let setup = try await Setup(kind)
        let ((a, engineA, transportA), (b, engineB, _)) = try await Self.twoReplicasHoldingTheDocument(setup)
        transportA.pushedBytes.withLock { $0 = 0 }
        transportA.pulled.withLock { $0 = 0 }
        for step in 0..<4 {
            try await a.collection("orders").update("big") { $0.set("field\(step)", to: .string("write \(step)")) }
            _ = try await engineA.pushAll()
        }
        let counts = await engineA.deltaPushes
        #expect(counts.sent == 4 && counts.refused == 0, "\(counts)")
        let (pushed, pulled) = (transportA.pushedBytes.withLock { $0 }, transportA.pulled.withLock { $0 })
        #expect(pushed < 4 * 2_048 && pulled < 4 * 2_048, "four writes pushed in \(pushed) bytes, bases refreshed in \(pulled)")
        _ = try await engineB.syncOnce()
        _ = try await engineA.syncOnce()
        let server = try #require(try await setup.store.record(database: "db", key: Self.big))
        let (atA, atB) = (try await a.record(Self.big), try await b.record(Self.big))
        #expect(atA == server && atB == server)
        #expect(server.body.string("field3") == "write 3")
    }

    @Test("A server older than delta pushes refuses the offer; the replica says hello without it and pushes whole records", arguments: CentralKind.testable)
    func anOlderServerGetsWholeRecords(_ kind: CentralKind) async throws {
        let setup = try await Setup(kind)
        let a = try await setup.replica("a")
        a.2.olderServer.withLock { $0 = true }
        try await DeltaSyncTests.fill(a.0, "orders", "big", fields: 5_000)
        _ = try await a.1.syncOnce()
        try await a.0.collection("orders").update("big") { $0.set("field1", to: "edited") }
        a.2.pushedBytes.withLock { $0 = 0 }
        _ = try await a.1.syncOnce()
        #expect(a.2.deltasPushed.withLock { $0 } == 0)
        #expect(a.2.pushedBytes.withLock { $0 } > 10_000)
        #expect(
            try await a.0.record(Self.big) == (try await setup.store.record(database: "db", key: Self.big)))
    }

    @Test("Over HTTP: deltas push small, and a foreign base is a 409 with Weft-Error: delta-base")
    func overHTTP() async throws {
        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(
            store: try SQLiteCentralStore(path: directory.path("central.sqlite")))
        defer { Task { await server.stop() } }
        let replica = try await Replica.open(path: directory.path("a.sqlite"))
        let transport = DeltaSyncTests.CountingTransport(
            HTTPTransport(baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken))
        let engine = SyncEngine(replica: replica, transport: transport)
        try await DeltaSyncTests.fill(replica, "orders", "big", fields: 5_000)
        _ = try await engine.syncOnce()
        try await replica.collection("orders").update("big") { $0.set("field1", to: "edited") }
        transport.pushedBytes.withLock { $0 = 0 }
        _ = try await engine.syncOnce()
        #expect(transport.deltasPushed.withLock { $0 } == 1 && transport.pushedBytes.withLock { $0 } < 2_048)
        #expect(
            try await replica.record(Self.big)
                == (try await server.store.record(database: "mydb", key: Self.big)))

        let record = try #require(try await replica.record(Self.big))
        try await replica.collection("orders").update("big") { $0.set("field2", to: "not pushed") }
        let edited = try #require(try await replica.record(Self.big))
        let delta = try #require(edited.delta(since: record))
        let client = ReplicaID(high: 0x5eed, low: 5)
        let hello = HelloRequest(replica: client, confirmedEpoch: 0, epoch: 5, acknowledgedThrough: 0)
        var offering = hello
        offering.offersDeltaPushes = true
        let (helloStatus, helloBody) = try await server.postFrame(
            "/v1/mydb/hello", WireMessage.encode(offering))
        #expect(helloStatus == 200)
        let answer = try WireMessage.decode(HelloResponse.self, from: helloBody)
        #expect(answer.status == .accepted && answer.acceptsDeltaPushes)
        let push = PushRequest(
            replica: client, epoch: 5,
            changes: [
                WireChange(
                    sequence: 50, key: WireKey(collection: "orders", id: "big"), record: delta,
                    deltaBase: 12_345)
            ])
        let (status, body) = try await server.post("/v1/mydb/push", WireMessage.encode(push))
        #expect(status == 409 && body.contains("whole"), "\(status) \(body)")
        #expect(try await server.store.record(database: "mydb", key: Self.big) == record, "nothing applied")
    }
}
