// The examples of "Scaling out on PostgreSQL" (WeftPostgres) and of PostgresEndpoint's doc comment, run
// PostgreSQL server `make test` starts.
import Foundation
import Testing
import Weft
import WeftPostgres

@Suite("Doc examples: PostgreSQL")
struct PostgresExamples {
    @Test func scalingOutOnPostgreSQL() async throws {
        if ProcessInfo.processInfo.environment["WEFT_SKIP_POSTGRES"] == "1" { return }
        let text = try #require(
            ProcessInfo.processInfo.environment["WEFT_POSTGRES_URL"], "run with make test, which starts a throwaway PostgreSQL")
        let url = try #require(URL(string: text + "?tenant=docs"))
        let serverFile = try WeftConfiguration.parse(
            "[server]\nlisten = \"127.0.0.1:20000\"\nstore_url = \"\(url.absoluteString)\"\n")
        #expect(serverFile.server?.storeURL == url)

        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        let resolvers = ResolverRegistry()
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: configuration, resolvers: resolvers)
        try await replica.collection("notes").create("n1") { $0.set("text", to: "hello") }
        let direct = try await PostgresEndpoint.connect(url, configuration: configuration, resolvers: resolvers)
        let engine = SyncEngine(replica: replica, transport: direct.transport)
        try await engine.syncOnce()
        #expect(try await replica.queuedChanges().isEmpty)
        await direct.store.shutdown()
    }
}
