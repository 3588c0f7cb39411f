import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftSQLite
import WeftTesting
import WeftWire

/// A Standalone server on a loopback port for one test.
struct RunningServer {
    let running: RunningStandalone
    let store: any CentralStore
    var port: Int { running.port }
    var baseURL: String { "http://127.0.0.1:\(port)" }

    static let writeToken = "write-token-0123456789"
    static let readToken = "read-token-0123456789ab"

    static func start(store: any CentralStore, limits: ServerLimits = ServerLimits(), policy: ConflictPolicy = .crdt) async throws
        -> RunningServer
    {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.limits = limits
        configuration.tokens = [
            ServerToken(token: writeToken, databases: ["mydb"], access: .readWrite),
            ServerToken(token: readToken, databases: ["mydb"], access: .read),
        ]
        let service = SyncService(
            store: store,
            limits: WireLimits(
                maximumFrameBytes: limits.maxRequestBytes, maximumDecompressedBytes: limits.maxDecompressedBytes,
                maximumChanges: limits.maxChangesPerBatch),
            policies: ServerPolicies(defaultPolicy: policy))
        var quiet = Logger(label: "weft.test.server")
        quiet.logLevel = .critical
        let running = try await RunningStandalone.start(service: service, configuration: configuration, logger: quiet)
        return RunningServer(running: running, store: store)
    }

    func stop() async { await running.stop() }

    /// Posts raw bytes and returns the status and body.
    func post(_ path: String, _ body: [UInt8], token: String? = RunningServer.writeToken) async throws -> (Int, String) {
        var request = HTTPClientRequest(url: "\(baseURL)\(path)")
        request.method = .POST
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
        return (Int(response.status.code), text)
    }
}

@Suite("HTTP sync against a real server on loopback", .serialized)
struct HTTPSyncTests {
    @Test(arguments: [ConflictPolicy.crdt, .lastWriterWins])
    func threeReplicasConvergeOverHTTP(_ policy: ConflictPolicy) async throws {
        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(store: try SQLiteCentralStore(path: directory.path("central.sqlite")), policy: policy)
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = policy
        var engines = [SyncEngine]()
        for index in 0..<3 {
            let replica = try await Replica.open(path: directory.path("r\(index).sqlite"), configuration: configuration)
            let transport = HTTPTransport(baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken)
            engines.append(SyncEngine(replica: replica, transport: transport))
        }
        for (index, engine) in engines.enumerated() {
            for step in 0..<10 {
                try await engine.replica.collection("orders").upsert("shared") { editor in
                    editor.increment("n")
                    editor.set("last", to: .int(Int64(index * 100 + step)))
                }
                try await engine.replica.collection("orders").upsert("own-\(index)") { $0.set("v", to: .int(Int64(step))) }
            }
        }
        for _ in 0..<2 { for engine in engines { try await engine.syncOnce() } }
        for id in ["shared", "own-0", "own-1", "own-2"] {
            let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID(id))
            let central = try await server.store.record(database: "mydb", key: key)
            #expect(central != nil)
            for engine in engines { #expect(try await engine.replica.record(key) == central, "\(id) under \(policy)") }
        }
        if policy == .crdt {
            #expect(try await engines[0].replica.collection("orders").get("shared")?.counter("n") == 30)
        }
        await server.stop()
    }

    /// A server restored from a backup, over HTTP: a pull whose cursor names a change the
    /// restored history lacks gets 410 with `Weft-Error: resync`, and the replicas resync
    /// through HTTPTransport until the server holds every acknowledged write again.
    @Test func aRestoredServerAnswers410AndReplicasResyncOverHTTP() async throws {
        let directory = TemporaryDirectory()
        let store = MemoryCentralStore()
        let server = try await RunningServer.start(store: store)
        func engine(_ name: String) async throws -> SyncEngine {
            let replica = try await Replica.open(path: directory.path("\(name).sqlite"))
            return SyncEngine(replica: replica, transport: HTTPTransport(baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken))
        }
        let writer = try await engine("writer")
        let reader = try await engine("reader")
        var backup: MemoryCentralStore.Snapshot?
        for index in 0..<6 {
            try await writer.replica.collection("items").create("d\(index)") { $0.set("v", to: .int(Int64(index))) }
            _ = try await writer.syncOnce()
            if index == 2 { backup = await store.backup() }
        }
        _ = try await reader.syncOnce()
        let cursor = try await reader.replica.pullPosition()
        // Back to the backup taken after three changes, and one new change from someone else.
        await store.restore(try #require(backup))
        let newcomer = try await engine("newcomer")
        try await newcomer.replica.collection("items").create("e") { $0.set("v", to: 100) }
        _ = try await newcomer.syncOnce()

        let stale = WireMessage.encode(PullRequest(after: cursor.cursor, afterTag: cursor.tag))
        let (status, body) = try await server.post("/v1/mydb/pull", stale)
        #expect(status == 410, "\(body)")

        _ = try await reader.syncOnce()
        #expect(await reader.resyncs == 1)
        for _ in 0..<2 { for engine in [writer, reader, newcomer] { _ = try await engine.syncOnce() } }
        for id in ["d0", "d1", "d2", "d3", "d4", "d5", "e"] {
            let central = try await store.record(database: "mydb", key: key("items", id))
            #expect(central != nil, "\(id) was lost")
            for engine in [writer, reader, newcomer] { #expect(try await engine.replica.record(key("items", id)) == central) }
        }
        await server.stop()
    }

    @Test func badRequestsGetTheRightStatusAndChangeNothing() async throws {
        let server = try await RunningServer.start(
            store: MemoryCentralStore(), limits: ServerLimits(maxRequestBytes: 64 << 10, maxDecompressedBytes: 1 << 20))
        let replica = ReplicaID(high: 5, low: 5)
        var body = Document()
        body.set("v", to: 1, at: HLCTimestamp(wallMilliseconds: 1, counter: 0, replica: replica))
        let record = DocumentRecord(
            body: body, deletion: LWWRegister(false, stamp: HLCTimestamp(wallMilliseconds: 1, counter: 0, replica: replica)),
            version: VersionVector([replica: 1]))
        let push = WireMessage.encode(PushRequest(replica: replica, changes: [WireChange(sequence: 1, key: WireKey(collection: "c", id: "d"), record: record)]))

        #expect(try await server.post("/v1/mydb/push", push, token: nil).0 == 401)
        #expect(try await server.post("/v1/mydb/push", push, token: "wrong-token-0123456789").0 == 401)
        #expect(try await server.post("/v1/other/push", push).0 == 403)
        #expect(try await server.post("/v1/mydb/push", push, token: RunningServer.readToken).0 == 403)
        #expect(try await server.post("/v1/bad%20name/push", push).0 == 400)
        let malformed = try await server.post("/v1/mydb/push", [0x57, 0x46, 0x54, 0x31, 0, 5, 1, 2])
        #expect(malformed.0 == 400 && malformed.1.contains("error"))
        #expect(try await server.post("/v1/mydb/push", Array(push.prefix(push.count - 3))).0 == 400)
        #expect(try await server.post("/v1/mydb/push", [UInt8](repeating: 7, count: 100 << 10)).0 == 413)
        // A decompression bomb: 8 MiB of zeros in a few hundred bytes.
        let bomb = WireFrame.encode([UInt8](repeating: 0, count: 8 << 20))
        #expect(try await server.post("/v1/mydb/push", bomb).0 == 413)
        // Nothing was applied by any of them, and the server still serves.
        #expect(try await server.store.changes(database: "mydb", after: 0, limit: 10, maxBytes: 1 << 20).changes.isEmpty)
        #expect(try await server.post("/v1/mydb/push", push).0 == 200)
        #expect(try await server.store.changes(database: "mydb", after: 0, limit: 10, maxBytes: 1 << 20).changes.count == 1)
        let health = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(server.baseURL)/health"), timeout: .seconds(10))
        #expect(health.status.code == 200)
        let metrics = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(server.baseURL)/metrics"), timeout: .seconds(10))
        let text = String(buffer: try await metrics.body.collect(upTo: 1 << 16))
        #expect(text.contains("weft_pushes_total 1") && text.contains("weft_requests_unauthorized_total 2"))
        #expect(text.contains("weft_push_duration_seconds_count 1"), "\(text)")
        await server.stop()
    }

    @Test func anUnreachableServerIsUnavailableAndTheQueueStays() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        try await replica.collection("c").create("d") { $0.set("v", to: 1) }
        let transport = HTTPTransport(baseURL: "http://127.0.0.1:1", database: "mydb", token: nil, timeout: .seconds(2))
        do {
            try await SyncEngine(replica: replica, transport: transport).syncOnce()
            Issue.record("the sync should fail")
        } catch {
            #expect(error.kind == .unavailable)
        }
        #expect(try await replica.queuedChanges().count == 1)
    }
}
