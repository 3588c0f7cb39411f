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

    static func start(
        store: any CentralStore, limits: ServerLimits = ServerLimits(), policy: ConflictPolicy = .crdt, port: Int = 0
    ) async throws -> RunningServer {
        var configuration = ServerConfiguration()
        configuration.port = port
        configuration.limits = limits
        configuration.tokens = [
            ServerToken(token: writeToken, databases: ["mydb"], access: .readWrite),
            ServerToken(token: readToken, databases: ["mydb"], access: .read),
        ]
        // Every setting of the configuration, as `weft serve` applies them.
        let service = SyncService(store: store, configuration: configuration, policies: ServerPolicies(defaultPolicy: policy))
        var quiet = Logger(label: "weft.test.server")
        quiet.logLevel = .critical
        let running = try await RunningStandalone.start(service: service, configuration: configuration, logger: quiet)
        return RunningServer(running: running, store: store)
    }

    func stop() async { await running.stop() }

    /// Posts raw bytes and returns the status and body.
    func post(
        _ path: String, _ body: [UInt8], token: String? = RunningServer.writeToken, authorization: String? = nil, headers: [(String, String)] = []
    ) async throws -> (Int, String) {
        let (status, bytes) = try await postFrame(path, body, token: token, authorization: authorization, headers: headers)
        return (status, String(decoding: bytes, as: UTF8.self))
    }

    /// Posts raw bytes and returns the status and the body's bytes.
    func postFrame(
        _ path: String, _ body: [UInt8], token: String? = RunningServer.writeToken, authorization: String? = nil, headers: [(String, String)] = []
    ) async throws -> (Int, [UInt8]) {
        var request = HTTPClientRequest(url: "\(baseURL)\(path)")
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let authorization {
            request.headers.add(name: "Authorization", value: authorization)
        } else if let token {
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), Array(buffer: bytes))
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
            // Apps and servers side by side: one replica syncs over URLSession.
            let kind: TransportKind = index == 1 ? .urlSession : .asyncHTTPClient
            engines.append(SyncEngine(replica: replica, transport: kind.make(server.baseURL)))
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
            let central = await store.record(database: "mydb", key: key("items", id))
            #expect(central != nil, "\(id) was lost")
            for engine in [writer, reader, newcomer] { #expect(try await engine.replica.record(key("items", id)) == central) }
        }
        await server.stop()
    }

    /// Issue #14, points 1, 4 and 5, on the SQLite and PostgreSQL stores alike: numbers a client
    /// controls that no store can hold are 400 naming the field (not 503); a truncated string is
    /// malformed (400), nesting past the limit is too large (413); a document over
    /// `max_document_bytes` is refused on its own in the response, the rest applied; and the
    /// bearer scheme is case-insensitive.
    @Test(arguments: CentralKind.testable.filter { $0 != .memory })
    func statusCodesSayWhatIsWrong(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(store: try await kind.make(directory), limits: ServerLimits(maxDocumentBytes: 2_000))
        let replica = ReplicaID(high: 5, low: 5)
        let stamp = HLCTimestamp(wallMilliseconds: 1, counter: 0, replica: replica)
        func record(_ value: String) -> DocumentRecord {
            var body = Document()
            body.set("v", to: .string(value), at: stamp)
            return DocumentRecord(body: body, deletion: LWWRegister(false, stamp: stamp), version: VersionVector([replica: 1]))
        }
        func change(_ sequence: UInt64, _ id: String, _ value: String = "x") -> WireChange {
            WireChange(sequence: sequence, key: WireKey(collection: "c", id: id), record: record(value))
        }
        let huge = UInt64(Int64.max) + 1

        // 1. Out of range: 400, naming the field, and nothing changes.
        let (pullStatus, pullBody) = try await server.post("/v1/mydb/pull", WireMessage.encode(PullRequest(after: huge)))
        #expect(pullStatus == 400 && pullBody.contains("after"), "\(pullStatus) \(pullBody)")
        let (pushStatus, pushBody) = try await server.post(
            "/v1/mydb/push", WireMessage.encode(PushRequest(replica: replica, changes: [change(1, "a"), change(huge, "b")])))
        #expect(pushStatus == 400 && pushBody.contains("changes[1].sequence"), "\(pushStatus) \(pushBody)")
        let hello = HelloRequest(replica: replica, confirmedEpoch: 0, epoch: 9, acknowledgedThrough: huge)
        let (helloStatus, helloBody) = try await server.post("/v1/mydb/hello", WireMessage.encode(hello))
        #expect(helloStatus == 400 && helloBody.contains("acknowledgedThrough"), "\(helloStatus) \(helloBody)")
        #expect(try await server.store.changes(database: "mydb", after: 0, limit: 10, maxBytes: 1 << 20).changes.isEmpty)

        // 4. A string that announces more bytes than the message holds: malformed, 400.
        var payload: [UInt8] = [2, 64, 0] + replica.bytes + [0, 0, 1, 1, 50, 0x61, 0x62]
        #expect(try await server.post("/v1/mydb/push", WireFrame.encode(payload)).0 == 400)
        // Documents nested past the decoding limit (32): too large, 413.
        var nested = Document()
        func nest(_ document: inout Document, _ depth: Int) {
            guard depth > 0 else { document.set("leaf", to: 1, at: stamp); return }
            document.updateMap("m", at: stamp) { nest(&$0, depth - 1) }
        }
        nest(&nested, 40)
        let deep = DocumentRecord(body: nested, deletion: LWWRegister(false, stamp: stamp), version: VersionVector([replica: 1]))
        payload = WireMessage.encode(PushRequest(replica: replica, changes: [WireChange(sequence: 1, key: WireKey(collection: "c", id: "deep"), record: deep)]))
        #expect(try await server.post("/v1/mydb/push", payload).0 == 413)

        // 4. One document over max_document_bytes: refused on its own, the others applied.
        let mixed = PushRequest(replica: replica, changes: [change(1, "a"), change(2, "big", String(repeating: "z", count: 5_000)), change(3, "b")])
        let (mixedStatus, mixedBody) = try await server.postFrame("/v1/mydb/push", WireMessage.encode(mixed))
        #expect(mixedStatus == 200)
        let answer = try WireMessage.decode(PushResponse.self, from: mixedBody)
        #expect(answer.appliedThrough == 3 && answer.rejected.map(\.sequence) == [2], "\(answer)")
        #expect(answer.rejected.first?.reason.contains("max_document_bytes") == true)
        #expect(try await server.store.record(database: "mydb", key: key("c", "a")) != nil)
        #expect(try await server.store.record(database: "mydb", key: key("c", "b")) != nil)
        #expect(try await server.store.record(database: "mydb", key: key("c", "big")) == nil)

        // 5. The scheme in lower case (and upper case) is accepted; another scheme is not.
        for scheme in ["bearer", "BEARER", "Bearer"] {
            #expect(try await server.post("/v1/mydb/pull", WireMessage.encode(PullRequest(after: 0)), authorization: "\(scheme) \(RunningServer.readToken)").0 == 200)
        }
        #expect(try await server.post("/v1/mydb/pull", WireMessage.encode(PullRequest(after: 0)), authorization: "Basic \(RunningServer.readToken)").0 == 401)

        // A push that expects more of the replica's changes than the server holds (a store
        // restored during the session): 409 forked, and nothing applied. A malformed or
        // out-of-range expectation: 400, naming the header or field.
        let before = try await server.store.changes(database: "mydb", after: 0, limit: 100, maxBytes: 1 << 20).changes.count
        let expecting = PushRequest(replica: replica, changes: [change(4, "late")])
        let header = StandaloneServer.expectHeaderName
        let (refusedStatus, refusedBody) = try await server.post("/v1/mydb/push", WireMessage.encode(expecting), headers: [(header, "40")])
        #expect(refusedStatus == 409 && refusedBody.contains("through 3"), "\(refusedStatus) \(refusedBody)")
        #expect(try await server.post("/v1/mydb/push", WireMessage.encode(expecting), headers: [(header, "x1")]).0 == 400)
        let (rangeStatus, rangeBody) = try await server.post("/v1/mydb/push", WireMessage.encode(expecting), headers: [(header, "\(huge)")])
        #expect(rangeStatus == 400 && rangeBody.contains("expectedAppliedThrough"), "\(rangeStatus) \(rangeBody)")
        #expect(try await server.store.changes(database: "mydb", after: 0, limit: 100, maxBytes: 1 << 20).changes.count == before)
        // The HTTP transport carries it, and reads the refusal as forked.
        var viaTransport = expecting
        viaTransport.expectedAppliedThrough = 40
        let transport = HTTPTransport(baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken)
        var refusal: SyncError?
        do {
            _ = try await transport.push(viaTransport)
        } catch {
            refusal = error
        }
        #expect(refusal?.kind == .forked, "\(String(describing: refusal))")
        viaTransport.expectedAppliedThrough = 3
        viaTransport.receipt = 4_444
        let linked = try await transport.push(viaTransport)
        #expect(linked.appliedThrough == 4)
        let firstLink = try #require(linked.receipt, "the answer carries the receipts")
        #expect(firstLink.current == 4_444)
        // The same request again answers the same link; the next names it as its predecessor.
        #expect(try await transport.push(viaTransport).receipt == firstLink)
        let unchanged = try #require(try await transport.push(PushRequest(replica: replica, changes: [change(2, "b")])).receipt)
        #expect(unchanged == PushReceipt(previous: 4_444, current: 4_444), "a push that changes nothing leaves the receipts")
        let fresh = PushRequest(replica: replica, changes: [change(5, "fresh")])
        let drawn = try #require(try await transport.push(fresh).receipt, "the server draws a receipt when none is sent")
        #expect(drawn.previous == 4_444 && drawn.current != 0 && drawn.current != 4_444)
        // The hello answers the current receipt (it opens a session: epoch-0 pushes end here).
        #expect(try await transport.hello(HelloRequest(replica: replica, confirmedEpoch: 0, epoch: 9, acknowledgedThrough: 5)).receipt == drawn.current)
        // A receipt header that is not a number above 0: 400, and nothing applied or linked.
        let receiptHeader = StandaloneServer.receiptHeaderName
        let afterLinks = try await server.store.changes(database: "mydb", after: 0, limit: 100, maxBytes: 1 << 20).changes.count
        let late = PushRequest(replica: replica, changes: [change(6, "later")])
        for bad in ["x", "0", "-1", "\(UInt64.max)0"] {
            let (status, body) = try await server.post("/v1/mydb/push", WireMessage.encode(late), headers: [(receiptHeader, bad)])
            #expect(status == 400 && body.contains(receiptHeader), "\(bad): \(status) \(body)")
        }
        #expect(try await server.store.changes(database: "mydb", after: 0, limit: 100, maxBytes: 1 << 20).changes.count == afterLinks)
        #expect(try await transport.hello(HelloRequest(replica: replica, confirmedEpoch: 9, epoch: 9, acknowledgedThrough: 5)).receipt == drawn.current)
        await server.stop()
    }

    /// A replica whose push holds a document over `max_document_bytes` moves that one change to
    /// its dead letters with the server's reason, and the rest of its queue goes through.
    @Test func anOverSizeDocumentGoesToTheDeadLettersAlone() async throws {
        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: ServerLimits(maxDocumentBytes: 2_000))
        let replica = try await Replica.open(path: directory.path("r.sqlite"))
        let engine = SyncEngine(replica: replica, transport: HTTPTransport(baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken))
        try await replica.collection("c").create("a") { $0.set("v", to: 1) }
        try await replica.collection("c").create("big") { $0.set("v", to: .string(String(repeating: "z", count: 5_000))) }
        try await replica.collection("c").create("b") { $0.set("v", to: 2) }
        _ = try await engine.syncOnce()
        #expect(await engine.deadLettered == 1)
        #expect(try await replica.deadLetters().map(\.key) == [key("c", "big")])
        #expect(try await replica.queuedChanges().isEmpty)
        #expect(try await server.store.record(database: "mydb", key: key("c", "a")) != nil)
        #expect(try await server.store.record(database: "mydb", key: key("c", "b")) != nil)
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
        let health = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(server.baseURL)/health"), timeout: .seconds(60))
        #expect(health.status.code == 200)
        let metrics = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(server.baseURL)/metrics"), timeout: .seconds(60))
        let text = String(buffer: try await metrics.body.collect(upTo: 1 << 16))
        #expect(text.contains("weft_pushes_total 1") && text.contains("weft_requests_unauthorized_total 2"))
        #expect(text.contains("weft_push_duration_seconds_count 1"), "\(text)")
        #expect(text.contains("weft_log_entries_compacted 0"), "\(text)")
        // A second version of the document replaces its log entry: compaction, in the metrics.
        body.set("v", to: 2, at: HLCTimestamp(wallMilliseconds: 2, counter: 0, replica: replica))
        let second = DocumentRecord(
            body: body, deletion: LWWRegister(false, stamp: HLCTimestamp(wallMilliseconds: 2, counter: 0, replica: replica)),
            version: VersionVector([replica: 2]))
        let again = WireMessage.encode(
            PushRequest(replica: replica, changes: [WireChange(sequence: 2, key: WireKey(collection: "c", id: "d"), record: second)]))
        #expect(try await server.post("/v1/mydb/push", again).0 == 200)
        #expect(try await server.store.changes(database: "mydb", after: 0, limit: 10, maxBytes: 1 << 20).changes.map(\.record) == [second])
        let later = try await HTTPClient.shared.execute(HTTPClientRequest(url: "\(server.baseURL)/metrics"), timeout: .seconds(60))
        let laterText = String(buffer: try await later.body.collect(upTo: 1 << 16))
        #expect(laterText.contains("weft_log_entries_compacted 1"), "\(laterText)")
        await server.stop()
    }

    @Test func anUnreachableServerIsUnavailableAndTheQueueStays() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        try await replica.collection("c").create("d") { $0.set("v", to: 1) }
        let transport = HTTPTransport(baseURL: "http://127.0.0.1:1", database: "mydb", token: nil, timeout: .seconds(60))
        do {
            try await SyncEngine(replica: replica, transport: transport).syncOnce()
            Issue.record("the sync should fail")
        } catch {
            #expect(error.kind == .unavailable)
            // One readable sentence, not NIO's nested description.
            #expect(error.message.hasSuffix("failed: nothing accepted the connection (is the server running?)"), "\(error.message)")
            #expect(!error.message.contains("errno"), "\(error.message)")
        }
        #expect(try await replica.queuedChanges().count == 1)
    }
}
