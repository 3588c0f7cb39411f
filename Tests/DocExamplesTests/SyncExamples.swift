// The examples of "Syncing with a server" (Weft) and "Running the Standalone server" (WeftServer),
// compiled and run against a real server on loopback.
import Foundation
import Testing
import Weft
import WeftServer
import WeftSQLite
import WeftURLSession

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
        try await engine.syncOnce()  // push everything, pull everything
        let loop = Task { await engine.runWriteBehind(everyMilliseconds: 5_000) }  // write-behind

        // Rule 1b, on a document written before.
        try await replica.collection("orders").create("wo-1") { $0.set("status", to: "open") }
        let orders = try replica.collection("orders")
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

    /// "Running the Standalone server", Rule 7: the server embedded in a program.
    static func embedded(_ serverConfiguration: ServerConfiguration) async throws {
        let store = try SQLiteCentralStore(path: serverConfiguration.storePath)
        let service = SyncService(store: store, configuration: serverConfiguration)
        let app = try StandaloneServer.application(service: service, configuration: serverConfiguration)
        try await app.runService()
    }

    @Test func runningTheStandaloneServerInCode() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-doc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var serverConfiguration = try #require(
            try WeftConfiguration.parse("[server]\nlisten = \"127.0.0.1:20000\"\nstore_path = \"standalone.sqlite\"\n").server)
        serverConfiguration.port = try Self.freeLoopbackPort()
        serverConfiguration.storePath = directory.appendingPathComponent("standalone.sqlite").path

        let running = Task { [serverConfiguration] in try await Self.embedded(serverConfiguration) }
        let health = try #require(URL(string: "http://127.0.0.1:\(serverConfiguration.port)/health"))
        var answer: String?
        // Up to a minute for the server to listen (a guard against a hang on a busy machine).
        for _ in 0..<2_400 {
            if let (body, _) = try? await URLSession.shared.data(from: health) {
                answer = String(decoding: body, as: UTF8.self)
                break
            }
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect(answer == "ok")
        // Cancelled after the last request was answered, so no accepted connection waits to be
        // served (cancelling then can trap in NIO: apple/swift-nio#3481).
        running.cancel()
        _ = await running.result
        #expect(FileManager.default.fileExists(atPath: serverConfiguration.storePath))
    }

    /// A loopback port nothing listens on now.
    static func freeLoopbackPort() throws -> Int {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        try #require(fd >= 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        try #require(bound)
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
