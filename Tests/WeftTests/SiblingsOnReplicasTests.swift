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
        let service = SyncService(store: MemoryCentralStore(), policy: { _, _ in policy })
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
}
