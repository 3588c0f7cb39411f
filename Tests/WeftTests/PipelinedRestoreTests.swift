import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftWire

/// Found by the fault-injection suite (seeds 52575448418820631, 13211683275838028055): the
/// central store restored to a backup between two pushes on the wire at once. The first was
/// applied and lost; the second, applied after the restore, lifted the mark above the first's
/// sequences, so neither its answer nor any later hello could show the loss, and the first
/// push's writes were gone for good. A push's answer now says the replica's mark before it
/// (`PushResponse.appliedBefore`); below the mark an earlier answer showed, it reveals the loss.
@Suite("A restore between two pipelined pushes")
struct PipelinedRestoreTests {
    /// Runs the first push, restores the store to a backup taken just before it, then lets the
    /// second through.
    actor Restoring: SyncTransport {
        let inner: InProcessTransport
        let store: MemoryCentralStore
        var pushes = 0
        var firstApplied = false
        var waiting: [CheckedContinuation<Void, Never>] = []
        /// The queue sequence of the batch to apply (and lose) first; nil: pass everything through.
        var first: UInt64?

        init(_ inner: InProcessTransport, _ store: MemoryCentralStore) {
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
            // The batches reach here in either order: the first one is applied, then lost.
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

    /// Over HTTP the mark before travels in the `Weft-Applied-Before` header.
    @Test func theMarkBeforeTravelsOverHTTP() async throws {
        let server = try await RunningServer.start(store: MemoryCentralStore())
        defer { Task { await server.stop() } }
        let transport = HTTPTransport(
            baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken)
        let replica = ReplicaID.random()
        func push(_ sequence: UInt64) async throws -> PushResponse {
            let record = sampleRecord("n", Int64(sequence), wall: sequence, replica: replica)
            var request = PushRequest(
                replica: replica,
                changes: [
                    WireChange(
                        sequence: sequence, key: WireKey(collection: "c", id: "d\(sequence)"), record: record)
                ])
            request.pulledThrough = 0
            return try await transport.push(request)
        }
        let first = try await push(3)
        #expect(first.appliedBefore == 0 && first.appliedThrough == 3)
        let second = try await push(8)
        #expect(second.appliedBefore == 3 && second.appliedThrough == 8)
    }

    @Test func theLostPushIsNoticedAndItsWritesComeBack() async throws {
        let store = MemoryCentralStore()
        let service = SyncService(store: store)
        let transport = Restoring(InProcessTransport(service: service, database: "db"), store)
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
            try await store.record(database: "db", key: key("items", "first")) == nil,
            "the restore lost the first push")
        #expect(try await replica.isResyncing(), "the answers showed the loss")

        try await engine.syncOnce()
        #expect(try await store.record(database: "db", key: key("items", "first"))?.body.counter("n") == 5)
        #expect(try await store.record(database: "db", key: key("items", "second"))?.body.counter("n") == 7)
        #expect(await engine.resyncs == 1)
    }
}
