import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftWire

/// Write-through mode: receipts, and the timeout fallback both ways.
@Suite("Write-through")
struct WriteThroughTests {
    /// Answers pushes late: after `delay`, optionally having applied them at once on the server.
    final class SlowTransport: SyncTransport {
        let inner: InProcessTransport
        let delay = Mutex<Duration>(.zero)
        let applyBeforeDelay = Mutex(false)
        init(_ inner: InProcessTransport) { self.inner = inner }
        func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await inner.hello(request) }
        func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
            let wait = delay.withLock { $0 }
            if applyBeforeDelay.withLock({ $0 }) {
                let response = try await inner.push(request)
                try? await Task.sleep(for: wait)
                if Task.isCancelled { throw SyncError(.unavailable, "cancelled while waiting for the answer") }
                return response
            }
            try? await Task.sleep(for: wait)
            if Task.isCancelled { throw SyncError(.unavailable, "cancelled before reaching the server") }
            return try await inner.push(request)
        }
        func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse { try await inner.pull(request) }
    }

    /// A timeout long enough for a loaded test machine to confirm, and a short one for the
    /// fallback cases (whose server never answers in time).
    static let generous = 20_000
    static let short = 1_000

    static func setUp(_ fallback: WriteThroughFallback, timeout: Int = generous) async throws
        -> (Replica, SyncEngine, SlowTransport, MemoryCentralStore)
    {
        var configuration = ReplicaConfiguration()
        configuration.syncMode = .writeThrough
        configuration.collectionModes = ["notes": .writeBehind]
        configuration.writeThroughTimeoutMilliseconds = timeout
        configuration.writeThroughFallback = fallback
        let store = MemoryCentralStore()
        let transport = SlowTransport(InProcessTransport(service: SyncService(store: store), database: "db"))
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: configuration)
        return (replica, SyncEngine(replica: replica, transport: transport), transport, store)
    }

    @Test func aWriteThroughWriteReturnsAConfirmedReceiptOnceTheServerHasIt() async throws {
        let (replica, engine, _, store) = try await Self.setUp(.keepQueued)
        let orders = try engine.collection("orders")
        let receipt = try await orders.create("o1") { $0.set("qty", to: 3) }
        #expect(receipt.confirmed && receipt.pendingReason == nil)
        #expect(await store.record(database: "db", key: receipt.key) == receipt.record)
        #expect(try await replica.queuedChanges().isEmpty)
        // A write-behind collection of the same replica returns at once, unconfirmed and queued.
        let note = try await engine.collection("notes").create("n1") { $0.set("text", to: "later") }
        #expect(!note.confirmed && note.pendingReason == "write-behind")
        #expect(try await replica.queuedChanges().map(\.sequence) == [note.sequence])
        #expect(await store.record(database: "db", key: note.key) == nil)
    }

    @Test func unreachableInTimeWithTheQueueFallbackKeepsTheWriteQueued() async throws {
        let (replica, engine, transport, store) = try await Self.setUp(.keepQueued, timeout: Self.short)
        transport.delay.withLock { $0 = .seconds(60) }
        let clock = ContinuousClock()
        let started = clock.now
        let receipt = try await engine.collection("orders").upsert("o1") { $0.set("qty", to: 5) }
        #expect(clock.now - started < .seconds(45), "the write waited past its timeout")
        #expect(!receipt.confirmed && receipt.pendingReason != nil)
        #expect(try await replica.collection("orders").get("o1")?.int("qty") == 5, "kept locally")
        #expect(try await replica.queuedChanges().map(\.sequence) == [receipt.sequence], "and queued")
        #expect(await store.record(database: "db", key: receipt.key) == nil)
        // Once the server answers, the queued write goes through.
        transport.delay.withLock { $0 = .zero }
        #expect(try await engine.pushAll() == 1)
        #expect(await store.record(database: "db", key: receipt.key)?.body.int("qty") == 5)
    }

    @Test func unreachableInTimeWithTheRollbackFallbackUndoesTheWriteAndThrows() async throws {
        let (replica, engine, transport, store) = try await Self.setUp(.rollBack, timeout: Self.short)
        let orders = try engine.collection("orders")
        // The first version reaches the server through an ordinary push.
        try await replica.collection("orders").create("o1") { $0.set("qty", to: 1) }
        #expect(try await engine.pushAll() == 1)
        let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID("o1"))
        transport.delay.withLock { $0 = .seconds(60) }
        do {
            try await orders.update("o1") { $0.set("qty", to: 99) }
            Issue.record("an unconfirmed write-through write did not throw")
        } catch {
            #expect(error.kind == .writeNotConfirmed && error.message.contains("rolled back"), "\(error)")
        }
        #expect(try await replica.collection("orders").get("o1")?.int("qty") == 1, "the document is as before the write")
        // The undo syncs like any write; the server ends with the content from before.
        transport.delay.withLock { $0 = .zero }
        _ = try await engine.syncOnce()
        #expect(await store.record(database: "db", key: key)?.body.int("qty") == 1)
        #expect(try await replica.queuedChanges().isEmpty)
    }

    @Test func aRollbackAlsoWinsOverAWriteTheServerAppliedButAnsweredTooLate() async throws {
        let (replica, engine, transport, store) = try await Self.setUp(.rollBack, timeout: Self.short)
        let orders = try engine.collection("orders")
        try await replica.collection("orders").create("o1") { $0.set("qty", to: 1) }
        #expect(try await engine.pushAll() == 1)
        let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID("o1"))
        transport.delay.withLock { $0 = .seconds(60) }
        transport.applyBeforeDelay.withLock { $0 = true }
        await #expect(throws: WeftError.self) { try await orders.update("o1") { $0.set("qty", to: 99) } }
        #expect(await store.record(database: "db", key: key)?.body.int("qty") == 99, "the server did apply it")
        transport.delay.withLock { $0 = .zero }
        _ = try await engine.syncOnce()
        #expect(await store.record(database: "db", key: key)?.body.int("qty") == 1, "the undo won")
        #expect(try await replica.collection("orders").get("o1")?.int("qty") == 1)
    }

    @Test func theModeAndFallbackComeFromTOML() throws {
        let persistence = try WeftConfiguration.parse(
            """
            [persistence]
            mode = "write_through"
            write_through_timeout_ms = 1500
            write_through_fallback = "rollback"

            [persistence.collections.telemetry]
            mode = "write_behind"

            [persistence.collections.orders]
            mode = "write_through"
            conflict_resolution = "crdt"
            """
        ).persistence
        let configuration = persistence.replicaConfiguration
        #expect(configuration.syncMode == .writeThrough && configuration.writeThroughTimeoutMilliseconds == 1_500)
        #expect(configuration.writeThroughFallback == .rollBack)
        #expect(configuration.mode(for: try CollectionName("telemetry")) == .writeBehind)
        #expect(configuration.mode(for: try CollectionName("orders")) == .writeThrough)
        #expect(configuration.policy(for: try CollectionName("orders")) == .crdt)
        #expect(configuration.policy(for: try CollectionName("telemetry")) == .lastWriterWins)
        #expect(throws: ConfigurationError.self) { try WeftConfiguration.parse("[persistence]\nwrite_through_fallback = \"drop\"\n") }
    }
}
