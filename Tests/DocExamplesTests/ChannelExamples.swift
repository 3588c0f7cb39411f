// The example of "Who sees what" (WeftServer): its server configuration parsed, and its Swift
// example run against a real server on loopback, with a static token standing in for the
// auth provider's JSON Web Token.
import Foundation
import Testing
import Weft
import WeftSQLite
import WeftServer
import WeftURLSession

@Suite("Doc examples: who sees what")
struct ChannelExamples {
    /// The app's auth SDK: hands out the current token.
    struct Auth: Sendable {
        let token: String
        func currentToken() async throws -> String { token }
    }

    @Test func aGatewaySyncsItsSite() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "weft-doc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let parsed = try WeftConfiguration.parse(
            """
            [server.channels]
            workOrders = ["user:{assignee}", "site:{site}"]
            customers = ["customers"]
            [[server.tokens]]
            token = "dispatch-service-token-change-me"
            databases = ["fieldapp"]
            read_channels = ["*"]
            write_channels = ["*"]
            [[server.tokens]]
            token = "gateway-token-for-every-site"
            databases = ["fieldapp"]
            read_channels = ["site:7", "site:9"]
            write_channels = ["site:7"]
            """)
        var configuration = try #require(parsed.server)
        configuration.port = 0
        let service = SyncService(
            store: try SQLiteCentralStore(path: directory.appendingPathComponent("standalone.sqlite").path),
            configuration: configuration)
        let server = try await RunningStandalone.start(service: service, configuration: configuration)
        let serverURL = try #require(URL(string: "http://127.0.0.1:\(server.port)"))
        let dispatch = try await Replica(storage: MemoryReplicaStorage())
        for (id, site) in [("wo-1", 7), ("wo-2", 9), ("wo-3", 7)] {
            try await dispatch.collection("workOrders").create(id) { editor in
                editor.set("site", to: .int(Int64(site)))
                editor.set("assignee", to: "ana")
            }
        }
        try await SyncEngine(
            replica: dispatch,
            transport: URLSessionTransport(
                baseURL: serverURL, database: "fieldapp", token: "dispatch-service-token-change-me")
        ).syncOnce()
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let auth = Auth(token: "gateway-token-for-every-site")

        // The article's example.
        let transport = URLSessionTransport(
            baseURL: serverURL, database: "fieldapp", tokenSource: { try await auth.currentToken() })
        let engine = SyncEngine(replica: replica, transport: transport)
        await engine.subscribe(to: ["site:7"])
        try await engine.syncOnce()
        engine.requestSync()

        var held = Set<String>()
        for try await document in try replica.collection("workOrders").documents() {
            held.insert(document.id.rawValue)
        }
        #expect(held == ["wo-1", "wo-3"])
        await server.stop()
    }
}
