import Foundation
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftSQLite
import WeftWire

/// Issue #13, points 1 and 2, end to end: SQLite replicas and an in-process server. An edit a
/// user made after removing and re-creating a field, after a write-through rollback, or as the
/// last of two writes in one edit closure, survives every sync.
@Suite("No lost edit across replicas")
struct NoLostEditReplicaTests {
    static func crdtConfiguration() -> ReplicaConfiguration {
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        return configuration
    }

    @Test func anElementAddedAfterRemovingTheSetSurvivesAConcurrentAddition() async throws {
        let directory = TemporaryDirectory()
        let service = SyncService(store: MemoryCentralStore(), policies: ServerPolicies(defaultPolicy: .crdt))
        let a = try await Replica.open(path: directory.path("a.sqlite"), configuration: Self.crdtConfiguration())
        let b = try await Replica.open(path: directory.path("b.sqlite"), configuration: Self.crdtConfiguration())
        let syncA = SyncEngine(replica: a, transport: InProcessTransport(service: service, database: "db"))
        let syncB = SyncEngine(replica: b, transport: InProcessTransport(service: service, database: "db"))
        try await a.collection("orders").create("o1") { $0.insert("x", intoSet: "tags") }
        _ = try await syncA.syncOnce()
        _ = try await syncB.syncOnce()
        // Offline, at the same time: A removes the set and starts a new one; B adds to the old one.
        try await a.collection("orders").update("o1") { $0.removeField("tags") }
        try await a.collection("orders").update("o1") { $0.insert("y", intoSet: "tags") }
        try await b.collection("orders").update("o1") { $0.insert("z", intoSet: "tags") }
        _ = try await syncA.syncOnce()
        _ = try await syncB.syncOnce()
        _ = try await syncA.syncOnce()
        let server = try #require(try await service.store.record(database: "db", key: key("orders", "o1")))
        #expect(server.body.set("tags") == ["y", "z"], "\(server.body)")
        #expect(try await a.record(key("orders", "o1"))?.body == server.body)
        #expect(try await b.record(key("orders", "o1"))?.body == server.body)
    }

    /// A write-through write the server applied but confirmed too late is rolled back; the
    /// replica's next write, and a concurrent write of another replica, both survive.
    @Test func theWriteAfterARollbackSurvivesAConcurrentWrite() async throws {
        let directory = TemporaryDirectory()
        let service = SyncService(store: MemoryCentralStore(), policies: ServerPolicies(defaultPolicy: .crdt))
        var configuration = Self.crdtConfiguration()
        configuration.syncMode = .writeThrough
        configuration.writeThroughTimeoutMilliseconds = WriteThroughTests.short
        configuration.writeThroughFallback = .rollBack
        let a = try await Replica.open(path: directory.path("a.sqlite"), configuration: configuration)
        let b = try await Replica.open(path: directory.path("b.sqlite"), configuration: Self.crdtConfiguration())
        let slow = WriteThroughTests.SlowTransport(InProcessTransport(service: service, database: "db"))
        let syncA = SyncEngine(replica: a, transport: slow)
        let syncB = SyncEngine(replica: b, transport: InProcessTransport(service: service, database: "db"))
        try await a.collection("orders").create("o1") { $0.insert("a", intoSet: "tags") }
        _ = try await syncA.syncOnce()
        // The server applies "b" but answers after the timeout: A rolls it back.
        slow.delay.withLock { $0 = .seconds(60) }
        slow.applyBeforeDelay.withLock { $0 = true }
        await #expect(throws: WeftError.self) {
            try await syncA.collection("orders").update("o1") { $0.insert("b", intoSet: "tags") }
        }
        slow.delay.withLock { $0 = .zero }
        slow.applyBeforeDelay.withLock { $0 = false }
        // B saw the version with "b" and adds "d"; A, after its rollback, adds "c".
        _ = try await syncB.syncOnce()
        try await b.collection("orders").update("o1") { $0.insert("d", intoSet: "tags") }
        try await a.collection("orders").update("o1") { $0.insert("c", intoSet: "tags") }
        _ = try await syncA.syncOnce()
        _ = try await syncB.syncOnce()
        _ = try await syncA.syncOnce()
        let server = try #require(try await service.store.record(database: "db", key: key("orders", "o1")))
        #expect(server.body.set("tags") == ["a", "c", "d"], "\(server.body)")
        #expect(try await a.record(key("orders", "o1"))?.body == server.body)
        #expect(try await b.record(key("orders", "o1"))?.body == server.body)
    }

    @Test func theLastOfTwoWritesInOneEditWins() async throws {
        let directory = TemporaryDirectory()
        let service = SyncService(store: MemoryCentralStore(), policies: ServerPolicies(defaultPolicy: .lastWriterWins))
        let a = try await Replica.open(path: directory.path("a.sqlite"))
        let b = try await Replica.open(path: directory.path("b.sqlite"))
        let syncA = SyncEngine(replica: a, transport: InProcessTransport(service: service, database: "db"))
        let syncB = SyncEngine(replica: b, transport: InProcessTransport(service: service, database: "db"))
        for (first, second) in [("closed", "open"), ("open", "closed")] {
            let id = "o-\(second)"
            try await a.collection("orders").create(id) { editor in
                editor.set("status", to: .string(first))
                editor.set("status", to: .string(second))
            }
            #expect(try await a.collection("orders").get(id)?.string("status") == second)
            _ = try await syncA.syncOnce()
            _ = try await syncB.syncOnce()
            #expect(try await b.collection("orders").get(id)?.string("status") == second)
            #expect(try await service.store.record(database: "db", key: key("orders", id))?.body.string("status") == second)
        }
    }
}
