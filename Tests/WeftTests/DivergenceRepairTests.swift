import Foundation
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftSQLite

/// Issue #13, point 3: a replica never ends a sync round quietly different from the server.
/// Two resolutions of the same concurrent versions can disagree (a resolver that is not a
/// join); then the version vectors are equal and the contents are not, and the server's
/// version must win everywhere.
@Suite("Equal version vectors, different contents")
struct DivergenceRepairTests {
    /// The resolver the docs used to print: the larger stock wins, and equal stocks go to the
    /// first argument, so it is not commutative.
    static func unfairResolvers() -> ResolverRegistry {
        var resolvers = ResolverRegistry()
        resolvers.register("stock") { a, b in (a.body.int("stock") ?? 0) >= (b.body.int("stock") ?? 0) ? a.body : b.body }
        return resolvers
    }

    @Test func aReplicaThatResolvedDifferentlyTakesTheServersVersion() async throws {
        let directory = TemporaryDirectory()
        let resolvers = Self.unfairResolvers()
        let service = SyncService(store: MemoryCentralStore(), policies: ServerPolicies(defaultPolicy: .custom(resolver: "stock")), resolvers: resolvers)
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .custom(resolver: "stock")
        let a = try await Replica.open(path: directory.path("a.sqlite"), configuration: configuration, resolvers: resolvers)
        let b = try await Replica.open(path: directory.path("b.sqlite"), configuration: configuration, resolvers: resolvers)
        let syncA = SyncEngine(replica: a, transport: InProcessTransport(service: service, database: "db"))
        let syncB = SyncEngine(replica: b, transport: InProcessTransport(service: service, database: "db"))
        try await a.collection("parts").create("valve") { $0.set("stock", to: 1) }
        _ = try await syncA.syncOnce()
        _ = try await syncB.syncOnce()
        // Offline, the same stock and different notes: the resolver's tie decides by argument order.
        try await a.collection("parts").update("valve") { $0.set("stock", to: 5); $0.set("note", to: "from a") }
        try await b.collection("parts").update("valve") { $0.set("stock", to: 5); $0.set("note", to: "from b") }
        _ = try await syncA.syncOnce()
        // B pulls one change a page: it resolves A's version with its own (its order), then meets
        // the server's resolution of the same two versions (the server's order).
        await syncB.setPageSize(1)
        _ = try await syncB.syncOnce()
        _ = try await syncA.syncOnce()
        let server = try #require(try await service.store.record(database: "db", key: key("parts", "valve")))
        #expect(try await a.record(key("parts", "valve")) == server)
        #expect(try await b.record(key("parts", "valve")) == server, "B stayed different from the server")
    }
}
