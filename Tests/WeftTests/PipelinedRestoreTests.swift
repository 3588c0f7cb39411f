import AsyncHTTPClient
import Foundation
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftWire

/// The gap the fault-injection suite found (seeds 52575448418820631 and 13211683275838028055):
/// the central store restored to a backup between two pushes on the wire at once. The first is
/// applied, answered and lost; the second, applied after the restore, lifts the replica's mark
/// above the first's sequences, so neither its answer nor a later hello shows the loss by the
/// mark. The receipts the answers carry (`PushReceipt`) do: both answers name the same
/// predecessor, the replica resyncs, and the resync pushes the lost write back. The race is
/// played deterministically, in process and over HTTP with a real server on loopback.
@Suite("A restore between two pipelined pushes")
struct PipelinedRestoreTests {
    /// Applies the armed push, restores the store to a backup taken just before it, then lets
    /// the other push through.
    actor Restoring: SyncTransport {
        let inner: any SyncTransport
        let store: MemoryCentralStore
        var pushes = 0
        var firstApplied = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        /// The queue sequence of the batch to apply (and lose) first; nil: pass everything through.
        var first: UInt64?

        init(_ inner: any SyncTransport, _ store: MemoryCentralStore) {
            self.inner = inner
            self.store = store
        }

        func arm(first sequence: UInt64) { first = sequence }

        nonisolated func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse {
            try await inner.hello(request)
        }

        nonisolated func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
            try await inner.pull(request)
        }

        nonisolated func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
            // The batches reach here in either order: the armed one is applied, then lost.
            switch await role(of: request) {
            case .first(let backup):
                let answer = try await inner.push(request)
                await restore(backup)
                return answer
            case .second:
                await waitForFirst()
                return try await inner.push(request)
            case .other:
                return try await inner.push(request)
            }
        }

        enum Role {
            case first(MemoryCentralStore.Snapshot)
            case second, other
        }

        private func role(of request: PushRequest) async -> Role {
            guard let first, let sequence = request.changes.first?.sequence else { return .other }
            pushes += 1
            if sequence == first { return .first(await store.backup()) }
            return pushes <= 2 ? .second : .other
        }

        private func restore(_ backup: MemoryCentralStore.Snapshot) async {
            await store.restore(backup)
            firstApplied = true
            for waiter in waiting { waiter.resume() }
            waiting.removeAll()
        }

        private func waitForFirst() async {
            if firstApplied { return }
            await withCheckedContinuation { waiting.append($0) }
        }
    }

    @Test func aPushLostBetweenTwoPipelinedPushesIsNoticedAndPushedAgain() async throws {
        let store = MemoryCentralStore()
        let service = SyncService(store: store)
        try await playRace(store, Restoring(InProcessTransport(service: service, database: "db"), store), database: "db")
    }

    @Test func overHTTPTheReceiptsTravelInHeaders() async throws {
        let store = MemoryCentralStore()
        let server = try await RunningServer.start(store: store)
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        let transport = HTTPTransport(
            baseURL: "http://127.0.0.1:\(server.port)", database: "mydb", token: RunningServer.writeToken, client: client)
        let outcome: Result<Void, any Error>
        do {
            try await playRace(store, Restoring(transport, store), database: "mydb")
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        try await client.shutdown()
        await server.stop()
        try outcome.get()
    }

    func playRace(_ store: MemoryCentralStore, _ transport: Restoring, database: String) async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let engine = SyncEngine(replica: replica, transport: transport)
        await engine.setBatchLimits(entries: 1, bytes: 1 << 20)
        await engine.setPushesInFlight(2)
        let items = try replica.collection("items")
        try await items.create("seed") { $0.increment("n", by: 1) }
        try await engine.syncOnce()

        try await items.create("first") { $0.increment("n", by: 5) }
        try await items.create("second") { $0.increment("n", by: 7) }
        let queued = try await replica.queuedChanges()
        let firstSequence = try #require(queued.first { $0.key == key("items", "first") }?.sequence)
        await transport.arm(first: firstSequence)
        #expect(try await engine.pushAll() == 2)
        #expect(
            await store.record(database: database, key: key("items", "first")) == nil,
            "the restore lost the first push")
        #expect(try await replica.queuedChanges().isEmpty, "both pushes were acknowledged")
        #expect(await engine.forgottenPushesNoticed == 1, "the two answers name the same predecessor")
        #expect(try await replica.isResyncing())

        try await engine.syncOnce()
        #expect(await store.record(database: database, key: key("items", "second"))?.body.counter("n") == 7)
        #expect(
            await store.record(database: database, key: key("items", "first"))?.body.counter("n") == 5,
            "the resync pushed the lost write back")
        #expect(try await !replica.isResyncing())
        #expect(await engine.forgottenPushesNoticed == 1, "no false alarm after")
    }
}
