// The examples of "Syncing with a server" (Weft) and "Running the Standalone server" (WeftServer),
// compiled; the parts that start network services run against a real server on loopback.
import Foundation
import Testing
import Weft
import WeftServer
import WeftSQLite
import WeftURLSession

@Suite("Doc examples: sync and server")
struct SyncExamples {
    @Test func syncingWithAServer() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-doc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let databasePath = directory.appendingPathComponent("app.sqlite").path
        let token = "replica-token-0123456789"

        // The server, as in "Running the Standalone server".
        var serverConfiguration = ServerConfiguration()
        serverConfiguration.port = 0
        serverConfiguration.tokens = [ServerToken(token: token, databases: ["mydb"], access: .readWrite)]
        let store = try SQLiteCentralStore(path: directory.appendingPathComponent("standalone.sqlite").path)
        let service = SyncService(store: store)
        let server = try await RunningStandalone.start(service: service, configuration: serverConfiguration)
        let port = server.port

        // The article's example, with the port the server got.
        let serverURL = try #require(URL(string: "http://127.0.0.1:\(port)"))
        let replica = try await Replica.open(path: databasePath)
        let transport = URLSessionTransport(baseURL: serverURL, database: "mydb", token: token)
        let engine = SyncEngine(replica: replica, transport: transport)
        try await replica.collection("c").create("d") { $0.set("v", to: 1) }
        try await engine.syncOnce()  // push everything, pull everything
        let loop = Task { await engine.runWriteBehind(everyMilliseconds: 5_000) }  // write-behind

        // Rule 1b.
        let orders = try replica.collection("orders")
        try await orders.create("wo-1") { $0.set("status", to: "open") }
        try await orders.update("wo-1") { $0.set("status", to: "done") }
        engine.requestSync()  // push now instead of at the next interval
        await engine.setLivePulls(true, wait: .seconds(25))
        // The request is honoured by a round: wait for the server to acknowledge the write.
        let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID("wo-1"))
        var checks = 0
        while try await !replica.queuedChanges().isEmpty, checks < 12_000 {
            try await Task.sleep(for: .milliseconds(5))
            checks += 1
        }
        #expect(try await server.service.store.record(database: "mydb", key: key)?.body.string("status") == "done")
        loop.cancel()
        await loop.value
        #expect(try await replica.queuedChanges().isEmpty)
        await server.stop()
    }
}
