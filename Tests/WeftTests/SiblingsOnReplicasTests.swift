import Foundation
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftSQLite

/// Issue #13, point 5: siblings are handled on every replica. A replica without the resolver
/// keeps the document readable and writable; a replica whose resolver arrives later resolves
/// the siblings it holds.
@Suite("Siblings on replicas")
struct SiblingsOnReplicasTests {
    static let policy = ConflictPolicy.custom(resolver: "inventoryLevels")

    static func withResolver() -> (ReplicaConfiguration, ResolverRegistry) {
        var configuration = ReplicaConfiguration()
        configuration.collectionPolicies = ["inventory": policy]
        var resolvers = ResolverRegistry()
        resolvers.register("inventoryLevels", ResolverTests.KeepMoreStock(field: "stock"))
        return (configuration, resolvers)
    }

    /// Two replicas write concurrently; the server has no resolver and keeps siblings.
    static func siblingsOnTheServer(_ directory: TemporaryDirectory) async throws -> (SyncService, [SyncEngine]) {
        let service = SyncService(store: MemoryCentralStore(), policies: ServerPolicies(defaultPolicy: policy))
        let (configuration, resolvers) = withResolver()
        var engines = [SyncEngine]()
        for index in 0..<2 {
            let replica = try await Replica.open(path: directory.path("w\(index).sqlite"), configuration: configuration, resolvers: resolvers)
            engines.append(SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db")))
        }
        try await engines[0].replica.collection("inventory").create("valve") { $0.set("stock", to: 5) }
        for engine in engines { _ = try await engine.syncOnce() }
        for (index, engine) in engines.enumerated() {
            try await engine.replica.collection("inventory").update("valve") { $0.set("stock", to: .int([8, 3][index])) }
            _ = try await engine.pushAll()
        }
        #expect(try await service.store.record(database: "db", key: key("inventory", "valve"))?.holdsSiblings == true)
        return (service, engines)
    }

    @Test func aReplicaWithoutTheResolverCanStillReadAndWrite() async throws {
        let directory = TemporaryDirectory()
        let (service, _) = try await Self.siblingsOnTheServer(directory)
        // A replica that does not have the resolver (its own policy is last-writer-wins).
        let bare = try await Replica.open(path: directory.path("bare.sqlite"))
        let engine = SyncEngine(replica: bare, transport: InProcessTransport(service: service, database: "db"))
        _ = try await engine.syncOnce()
        let valve = try #require(try await bare.collection("inventory").get("valve"))
        #expect(valve.int("stock") != nil, "the document shows only the reserved field: \(valve)")
        #expect(valve[DocumentRecord.siblingsField] == nil)
        try await bare.collection("inventory").update("valve") { $0.set("bin", to: "B7") }
        _ = try await engine.syncOnce()
        let server = try #require(try await service.store.record(database: "db", key: key("inventory", "valve")))
        #expect(!server.holdsSiblings && server.body.string("bin") == "B7" && server.body.int("stock") != nil)
        #expect(try await bare.record(key("inventory", "valve")) == server)
    }

    /// Found by the fault suite (its replica process lacks the resolver): a replica without the
    /// resolver whose write was still queued pulled siblings; its record, which the queue entry
    /// stands for, then held them, the server refused the reserved field, and the write went to
    /// the dead letters. The entry now goes out as the siblings' join, as a write on them would.
    @Test func aQueuedWriteOfAReplicaWithoutTheResolverSurvivesPulledSiblings() async throws {
        let directory = TemporaryDirectory()
        let service = SyncService(store: MemoryCentralStore(), policies: ServerPolicies(defaultPolicy: Self.policy))
        let (configuration, resolvers) = Self.withResolver()
        var writers = [SyncEngine]()
        for index in 0..<2 {
            let replica = try await Replica.open(path: directory.path("w\(index).sqlite"), configuration: configuration, resolvers: resolvers)
            writers.append(SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db")))
        }
        let bare = try await Replica.open(path: directory.path("bare.sqlite"))
        let engine = SyncEngine(replica: bare, transport: InProcessTransport(service: service, database: "db"))
        try await writers[0].replica.collection("inventory").create("valve") { $0.set("stock", to: 5) }
        _ = try await writers[0].syncOnce()
        _ = try await writers[1].syncOnce()
        _ = try await engine.syncOnce()
        for (index, writer) in writers.enumerated() {
            try await writer.replica.collection("inventory").update("valve") { $0.set("stock", to: .int([8, 3][index])) }
            _ = try await writer.pushAll()
        }
        // The bare replica's write waits in its queue while it pulls the siblings.
        try await bare.collection("inventory").update("valve") { $0.set("bin", to: "B7") }
        _ = try await engine.pullAll()
        #expect(try await bare.holdsSiblings(key("inventory", "valve")))
        _ = try await engine.syncOnce()
        #expect(try await bare.deadLetters().isEmpty, "the queued write went to the dead letters")
        let server = try #require(try await service.store.record(database: "db", key: key("inventory", "valve")))
        #expect(!server.holdsSiblings && server.body.string("bin") == "B7", "\(server)")
        _ = try await engine.syncOnce()
        #expect(try await bare.record(key("inventory", "valve")) == server)
    }

    @Test func siblingsHeldBeforeTheResolverWasRegisteredAreResolvedLater() async throws {
        let directory = TemporaryDirectory()
        let (service, _) = try await Self.siblingsOnTheServer(directory)
        // An older app version: no resolver yet. It pulls the siblings and keeps them.
        let path = directory.path("late.sqlite")
        do {
            let old = try await Replica.open(path: path)
            _ = try await SyncEngine(replica: old, transport: InProcessTransport(service: service, database: "db")).syncOnce()
            #expect(try await old.holdsSiblings(key("inventory", "valve")))
        }
        // The new version registers the resolver: its first sync resolves and pushes.
        let (configuration, resolvers) = Self.withResolver()
        let upgraded = try await Replica.open(path: path, configuration: configuration, resolvers: resolvers)
        _ = try await SyncEngine(replica: upgraded, transport: InProcessTransport(service: service, database: "db")).syncOnce()
        let server = try #require(try await service.store.record(database: "db", key: key("inventory", "valve")))
        #expect(!server.holdsSiblings && server.body.int("stock") == 8, "\(server)")
        #expect(try await upgraded.record(key("inventory", "valve")) == server)
    }

    @Test func aReplicaThatLacksTheServersResolverSaysSo() async throws {
        let directory = TemporaryDirectory()
        let (service, _) = try await Self.siblingsOnTheServer(directory)
        let bare = try await Replica.open(path: directory.path("bare.sqlite"))
        let engine = SyncEngine(replica: bare, transport: InProcessTransport(service: service, database: "db"))
        _ = try await engine.syncOnce()
        #expect(await engine.missingResolvers == ["inventoryLevels"])
        #expect(bare.policy(for: try CollectionName("inventory")) == Self.policy, "the server's policy applies")
        #expect(try await bare.holdsSiblings(key("inventory", "valve")), "kept for a replica that has the resolver")
        #expect(try await bare.collection("inventory").get("valve")?.int("stock") != nil)
    }
}
