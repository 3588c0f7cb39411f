import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftSQLite
import WeftTesting
import WeftWire

/// A transport that loses the server's answer once, after the server committed: the client must
/// retry, and the retry must have no second effect.
final class LosingTransport: SyncTransport {
    let inner: InProcessTransport
    let losePushes = Mutex(0)
    init(_ inner: InProcessTransport) { self.inner = inner }
    func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await inner.hello(request) }
    func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
        let response = try await inner.push(request)
        if losePushes.withLock({ count in
            if count > 0 { count -= 1; return true }
            return false
        }) {
            throw SyncError(.unavailable, "connection reset after the server committed")
        }
        return response
    }
    func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse { try await inner.pull(request) }
}

/// A server that is down.
struct DownTransport: SyncTransport {
    func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { throw SyncError(.unavailable, "connection refused") }
    func push(_ request: PushRequest) async throws(SyncError) -> PushResponse { throw SyncError(.unavailable, "connection refused") }
    func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse { throw SyncError(.unavailable, "connection refused") }
}

@Suite("Sync loop (in-process server)")
struct SyncLoopTests {
    static let policies: [ConflictPolicy] = [.crdt, .lastWriterWins]

    @Test(arguments: policies, CentralKind.testable)
    func threeReplicasAndTheServerConverge(_ policy: ConflictPolicy, _ central: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await central.make(directory)
        let service = SyncService(store: store, policies: ServerPolicies(defaultPolicy: policy))
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = policy
        var engines = [SyncEngine]()
        for index in 0..<3 {
            let replica = try await Replica.open(path: directory.path("r\(index).sqlite"), configuration: configuration)
            engines.append(SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "mydb")))
        }
        // Concurrent edits of shared and private documents, with partial syncs in between.
        var random = SplitMix64(seed: 99)
        for step in 0..<60 {
            let engine = engines[Int.random(in: 0..<3, using: &random)]
            let id = ["shared", "shared", "a", "b"].randomElement(using: &random) ?? "shared"
            let field = ["x", "y"].randomElement(using: &random) ?? "x"
            try await engine.replica.collection("orders").upsert(id) { editor in
                editor.increment("n")
                editor.set(field, to: .int(Int64(step)))
            }
            if Int.random(in: 0..<4, using: &random) == 0 { try await engine.syncOnce() }
        }
        // Two full rounds: the first pushes everything, the second pulls what others pushed last.
        for _ in 0..<2 { for engine in engines { try await engine.syncOnce() } }
        for id in ["shared", "a", "b"] {
            let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID(id))
            let server = try await store.record(database: "mydb", key: key)
            for engine in engines {
                #expect(try await engine.replica.record(key) == server, "\(id) under \(policy)")
            }
        }
        for engine in engines { #expect(try await engine.replica.queuedChanges().isEmpty) }
        let shared = try #require(try await engines[0].replica.collection("orders").get("shared"))
        if policy == .crdt {
            // Under the CRDT policy every increment of every replica counts.
            var total: Int64 = 0
            for id in ["shared", "a", "b"] { total += try await engines[0].replica.collection("orders").get(id)?.counter("n") ?? 0 }
            #expect(total == 60)
        }
        #expect(shared.counter("n") != nil)
        let conflicts = try await store.conflicts(database: "mydb", limit: 1_000)
        #expect(!conflicts.isEmpty && conflicts.allSatisfy { $0.policy == policy })
    }

    @Test func aLostResponseIsRetriedWithoutASecondEffect() async throws {
        let store = MemoryCentralStore()
        let service = SyncService(store: store)
        let losing = LosingTransport(InProcessTransport(service: service, database: "db"))
        losing.losePushes.withLock { $0 = 1 }
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let engine = SyncEngine(replica: replica, transport: losing)
        try await replica.collection("c").create("counter") { $0.increment("n", by: 5) }
        await #expect(throws: SyncError.self) { try await engine.syncOnce() }
        #expect(try await replica.queuedChanges().count == 1, "an unconfirmed entry stays queued")
        try await engine.syncOnce()
        #expect(try await replica.queuedChanges().isEmpty)
        let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID("counter"))
        #expect(await store.record(database: "db", key: key)?.body.counter("n") == 5, "the increment counted once")
        // Pushing the very same batch again is a no-op on the server.
        let again = PushRequest(
            replica: replica.replicaID, epoch: replica.sessionEpoch,
            changes: [WireChange(sequence: 1, key: WireKey(collection: "c", id: "counter"), record: try #require(try await replica.record(key)))])
        let response = try await InProcessTransport(service: service, database: "db").push(again)
        #expect(response.appliedThrough >= 1)
        #expect(await store.record(database: "db", key: key)?.body.counter("n") == 5)
        #expect(await store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes.count == 1)
    }

    @Test func anUnreachableServerLeavesTheQueueIntact() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        try await replica.collection("c").create("d") { $0.set("v", to: 1) }
        let before = try await replica.queuedChanges()
        await #expect(throws: SyncError.self) { try await SyncEngine(replica: replica, transport: DownTransport()).syncOnce() }
        #expect(try await replica.queuedChanges() == before)
        // The entry was released from flight: a later write still coalesces into it.
        try await replica.collection("c").update("d") { $0.set("v", to: 2) }
        #expect(try await replica.queuedChanges().count == 1)
    }

    @Test func pagesAreServedInOrderWithoutGapsOrRepeats() async throws {
        let store = MemoryCentralStore()
        let service = SyncService(store: store)
        let writer = try await Replica(storage: MemoryReplicaStorage())
        let writerEngine = SyncEngine(replica: writer, transport: InProcessTransport(service: service, database: "db"))
        try await writer.batch { batch in
            for index in 0..<250 { try batch.upsert("c", "d\(index)") { $0.set("v", to: .int(Int64(index))) } }
        }
        try await writerEngine.syncOnce()
        let reader = try await Replica(storage: MemoryReplicaStorage())
        let readerEngine = SyncEngine(replica: reader, transport: InProcessTransport(service: service, database: "db"))
        await readerEngine.setPageSize(40)
        let report = try await readerEngine.syncOnce()
        #expect(report.pulled == 250 && report.cursor == 250)
        #expect(try await reader.collection("c").list().count == 250)
        // A second round finds nothing new; the cursor stays.
        let again = try await readerEngine.syncOnce()
        #expect(again.pulled == 0 && again.cursor == 250)
        // Another database sees none of it.
        let other = try await service.pull(database: "other", PullRequest(after: 0))
        #expect(other.changes.isEmpty)
    }

    @Test func aLongPollWaitsForAPush() async throws {
        let service = SyncService(store: MemoryCentralStore())
        let waiting = Task { try await service.pull(database: "db", PullRequest(after: 0, waitMilliseconds: 5_000)) }
        try await Task.sleep(for: .milliseconds(100))
        let replica = try await Replica(storage: MemoryReplicaStorage())
        try await replica.collection("c").create("d") { $0.set("v", to: 1) }
        _ = try await SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db")).pushAll()
        let page = try await waiting.value
        #expect(page.changes.count == 1 && page.cursor == 1)
    }

    /// Fails the push of the first batch (the one holding sequence 1) before the server gets it,
    /// and holds it until a later batch has been applied: the later batch succeeds while the
    /// earlier one fails.
    final class FirstPushFailsLate: SyncTransport {
        let inner: InProcessTransport
        let laterApplied = Mutex(false)
        let failed = Mutex(false)
        init(_ inner: InProcessTransport) { self.inner = inner }
        func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await inner.hello(request) }
        func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
            let first = request.changes.contains { $0.sequence == 1 } && !failed.withLock { $0 }
            if first {
                while !laterApplied.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(5)) }
                failed.withLock { $0 = true }
                throw SyncError(.unavailable, "the first push was lost")
            }
            let response = try await inner.push(request)
            laterApplied.withLock { $0 = true }
            return response
        }
        func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse { try await inner.pull(request) }
    }

    @Test func aFailedPushIsNotAcknowledgedByALaterOneThatSucceeded() async throws {
        let store = MemoryCentralStore()
        let service = SyncService(store: store)
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let c = try replica.collection("c")
        for index in 0..<10 { try await c.create("d\(index)") { $0.increment("n", by: 1) } }
        let transport = FirstPushFailsLate(InProcessTransport(service: service, database: "db"))
        let engine = SyncEngine(replica: replica, transport: transport)
        await engine.setBatchLimits(entries: 2, bytes: 1 << 20)
        #expect(await engine.maximumPushesInFlight == 2)
        await #expect(throws: SyncError.self) { try await engine.pushAll() }
        // The second batch reached the server, but the first did not: acknowledging the second
        // ("everything through its last sequence") would drop the first. Nothing was dropped.
        let left = try await replica.queuedChanges().count
        let applied = await store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes.count
        #expect(left == 10, "\(left) entries left; \(applied) applied")
        #expect(await store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes.count == 2)
        // The next round sends everything again; the server applies each document once.
        #expect(try await engine.pushAll() == 10)
        #expect(try await replica.queuedChanges().isEmpty)
        let reader = try await Replica(storage: MemoryReplicaStorage())
        _ = try await SyncEngine(replica: reader, transport: InProcessTransport(service: service, database: "db")).pullAll()
        let documents = try await reader.collection("c").list()
        #expect(documents.count == 10 && documents.allSatisfy { $0.document.counter("n") == 1 })
    }

    @Test func aPushWakesAWaitingPullAtOnce() async throws {
        // The store is looked at only every 10 minutes and the pull may wait 10 minutes: only the
        // push's wake-up can end the wait in time.
        let service = SyncService(store: MemoryCentralStore(), storePollInterval: .seconds(600))
        let clock = ContinuousClock()
        let started = clock.now
        let waiting = Task { try await service.pull(database: "db", PullRequest(after: 0, waitMilliseconds: 600_000)) }
        let other = Task { try await service.pull(database: "other", PullRequest(after: 0, waitMilliseconds: 600_000)) }
        try await Task.sleep(for: .milliseconds(100))
        let replica = try await Replica(storage: MemoryReplicaStorage())
        try await replica.collection("c").create("d") { $0.set("v", to: 1) }
        _ = try await SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db")).pushAll()
        let page = try await waiting.value
        #expect(page.changes.count == 1 && page.cursor == 1)
        #expect(clock.now - started < .seconds(60), "the pull waited for its deadline instead of waking")
        // A push to one database does not wake pulls waiting on another; cancelling ends them.
        other.cancel()
        let empty = try await other.value
        #expect(empty.changes.isEmpty && empty.cursor == 0)
    }
}

@Suite("Write-behind")
struct WriteBehindTests {
    @Test func writesArePushedEveryIntervalAndFailedRoundsAreRetried() async throws {
        let store = MemoryCentralStore()
        let service = SyncService(store: store)
        let losing = LosingTransport(InProcessTransport(service: service, database: "db"))
        losing.losePushes.withLock { $0 = 1 }  // the first round fails after the server committed
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let engine = SyncEngine(replica: replica, transport: losing)
        try await replica.collection("c").create("d") { $0.increment("n", by: 3) }
        let (rounds, roundDone) = AsyncStream<Result<SyncReport, SyncError>>.makeStream()
        let loop = Task { await engine.runWriteBehind(every: .milliseconds(20), clock: ContinuousClock()) { roundDone.yield($0) } }
        var results = [Result<SyncReport, SyncError>]()
        for await result in rounds {
            results.append(result)
            if results.count == 3 { break }
        }
        loop.cancel()
        await loop.value
        if case .failure = results[0] {} else { Issue.record("the first round should have failed") }
        if case .success(let report) = results[1] { #expect(report.pushed == 1) } else { Issue.record("the second round should push") }
        #expect(try await replica.queuedChanges().isEmpty)
        let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID("d"))
        #expect(await store.record(database: "db", key: key)?.body.counter("n") == 3)
    }
}
