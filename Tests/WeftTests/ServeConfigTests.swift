import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftPostgres
import WeftServer
import WeftWire

/// Issue #14, point 6: every documented `[server]` key takes effect in `weft serve --config`,
/// one test per key, against the real command in a child process.
@Suite("weft serve applies every documented server key", .serialized)
struct ServeConfigTests {
    static let writeToken = "serve-write-token-0123456789"
    static let readToken = "serve-read-token-0123456789"
    static let replica = ReplicaID(high: 7, low: 7)

    /// `weft serve` on a free port with `limits` under `[server.limits]` (and `store`, the
    /// `store_path` or `store_url` line).
    final class Served: @unchecked Sendable {
        let directory = TemporaryDirectory()
        let port: Int
        let server: OfflineTests.ServerProcess
        let storePath: String

        init(
            limits: [String] = [], store: String? = nil, policy: String = "crdt", serverLines: [String] = [],
            prepare: ((String) async throws -> Void)? = nil
        ) async throws {
            port = try OfflineTests.freePort()
            storePath = directory.path("central.sqlite")
            try await prepare?(storePath)
            let config = directory.path("server.toml")
            try """
            [persistence]
            conflict_resolution = "\(policy)"

            [server]
            listen = "127.0.0.1:\(port)"
            \(store ?? "store_path = \"\(storePath)\"")
            \(serverLines.joined(separator: "\n"))

            [server.limits]
            \(limits.joined(separator: "\n"))

            [[server.tokens]]
            token = "\(ServeConfigTests.writeToken)"
            databases = ["mydb"]
            access = "read_write"

            [[server.tokens]]
            token = "\(ServeConfigTests.readToken)"
            databases = ["mydb", "other"]
            access = "read"
            """.write(toFile: config, atomically: true, encoding: .utf8)
            server = try OfflineTests.ServerProcess(config: config, port: port)
            try await server.waitUntilServing()
        }

        /// Posts `body` to `path` with `token`: the status and the body's bytes.
        func post(_ path: String, _ body: [UInt8], token: String = ServeConfigTests.writeToken) async throws
            -> (status: Int, body: [UInt8])
        {
            var request = HTTPClientRequest(url: "\(server.baseURL)\(path)")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
            return (Int(response.status.code), Array(buffer: try await response.body.collect(upTo: 1 << 20)))
        }

        func text(_ path: String) async throws -> String {
            let response = try await HTTPClient.shared.execute(
                HTTPClientRequest(url: "\(server.baseURL)\(path)"), timeout: .seconds(60))
            return String(buffer: try await response.body.collect(upTo: 1 << 20))
        }

        deinit { server.stop() }
    }

    static func change(_ sequence: UInt64, _ id: String, value: String = "x", wall: UInt64 = 1) -> WireChange
    {
        let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
        var body = Document()
        body.set("v", to: .string(value), at: stamp)
        let record = DocumentRecord(
            body: body, deletion: LWWRegister(false, stamp: stamp),
            version: VersionVector([replica: sequence]))
        return WireChange(sequence: sequence, key: WireKey(collection: "c", id: id), record: record)
    }

    static func push(_ changes: [WireChange]) -> [UInt8] {
        WireMessage.encode(PushRequest(replica: replica, changes: changes))
    }

    /// `listen` and `store_path`: the server answers on the port, and what it acknowledges is in
    /// the SQLite file named.
    @Test func listenAndStorePath() async throws {
        let served = try await Served()
        let (status, _) = try await served.post("/v1/mydb/push", Self.push([Self.change(1, "a")]))
        #expect(status == 200)
        served.server.stop()
        let store = try SQLiteCentralStore(path: served.storePath)
        let log = try await store.changes(database: "mydb", after: 0, limit: 10, maxBytes: 1 << 20).changes
        #expect(log.map(\.key.id.rawValue) == ["a"])
    }

    /// `tombstone_retention_ms`: the pass `weft serve` runs as it starts forgets a tombstone that
    /// a replica which last pulled 10 s ago would hold back under the default retention (the
    /// store contract tests that), but not under 1 s.
    @Test func tombstoneRetention() async throws {
        let tombstone = key("c", "gone")
        let served = try await Served(serverLines: ["tombstone_retention_ms = 1000"]) { path in
            let store = try SQLiteCentralStore(path: path)
            let merge = CentralStoreContractTests.merge
            let live = TombstoneHorizonTests.live(10, 1)
            _ = try await store.applyPush(
                database: "mydb", replica: TombstoneHorizonTests.writer, changes: [(1, tombstone, live)],
                merge: merge)
            _ = try await store.applyPush(
                database: "mydb", replica: TombstoneHorizonTests.writer,
                changes: [(2, tombstone, TombstoneHorizonTests.deleted(live, 11))],
                merge: merge)
            try await store.rememberPull(
                database: "mydb", replica: Self.replica, after: 0, afterTag: 0, served: 1, servedTag: 0,
                pulledAt: SystemTimeSource().currentMilliseconds() - 10_000)
        }
        // The pass runs as the server starts; the metric says when it has (a minute at most).
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .seconds(60))
        while clock.now < deadline,
            !(try await served.text("/metrics")).contains("weft_tombstones_collected 1")
        {
            try await Task.sleep(for: .milliseconds(50))
        }
        served.server.stop()
        let store = try SQLiteCentralStore(path: served.storePath)
        #expect(try await store.record(database: "mydb", key: tombstone) == nil)
        #expect(try await store.collectedThrough(database: "mydb") == 2)
    }

    /// `store_url`: the store is the PostgreSQL database named, not a SQLite file.
    @Test(.enabled(if: !TestPostgres.skipped)) func storeURL() async throws {
        let url = try await TestPostgres.freshDatabase()
        let served = try await Served(store: "store_url = \"\(url.absoluteString)\"")
        #expect(try await served.post("/v1/mydb/push", Self.push([Self.change(1, "a")])).status == 200)
        served.server.stop()
        #expect(!FileManager.default.fileExists(atPath: served.storePath))
        let store = try await PostgresCentralStore(url: url)
        let log = try await store.changes(database: "mydb", after: 0, limit: 10, maxBytes: 1 << 20).changes
        await store.shutdown()
        #expect(log.map(\.key.id.rawValue) == ["a"])
    }

    /// `[[server.tokens]]`: each token's databases and access, and nothing for anyone else.
    @Test func tokens() async throws {
        let served = try await Served()
        let pull = WireMessage.encode(PullRequest(after: 0))
        #expect(try await served.post("/v1/mydb/push", Self.push([Self.change(1, "a")])).status == 200)
        #expect(
            try await served.post("/v1/mydb/push", Self.push([Self.change(2, "b")]), token: Self.readToken)
                .status == 403)
        #expect(try await served.post("/v1/mydb/pull", pull, token: Self.readToken).status == 200)
        #expect(try await served.post("/v1/other/pull", pull, token: Self.readToken).status == 200)
        #expect(try await served.post("/v1/other/pull", pull).status == 403)
        #expect(try await served.post("/v1/mydb/pull", pull, token: "no-such-token-0123456789").status == 401)
    }

    /// `[server.channels]` and a token's `read_channels` / `write_channels`: the token's replica
    /// pulls only its channel's documents, and its write outside them is refused.
    @Test func channels() async throws {
        let aliceToken = "serve-alice-token-0123456789"
        let served = try await Served(serverLines: [
            "[server.channels]", #"orders = ["user:{assignee}"]"#, "[[server.tokens]]",
            #"token = "\#(aliceToken)""#,
            #"databases = ["mydb"]"#, #"read_channels = ["user:alice"]"#, #"write_channels = ["user:alice"]"#,
        ])
        let base = served.server.baseURL
        let dispatch = try await Replica(storage: MemoryReplicaStorage())
        try await dispatch.collection("orders").create("a") { $0.set("assignee", to: "alice") }
        try await dispatch.collection("orders").create("b") { $0.set("assignee", to: "bob") }
        try await SyncEngine(
            replica: dispatch,
            transport: HTTPTransport(baseURL: base, database: "mydb", token: Self.writeToken)
        ).syncOnce()
        let alice = try await Replica(storage: MemoryReplicaStorage())
        let engine = SyncEngine(
            replica: alice, transport: HTTPTransport(baseURL: base, database: "mydb", token: aliceToken))
        try await engine.syncOnce()
        #expect(try await alice.collection("orders").get("a") != nil)
        #expect(try await alice.collection("orders").get("b") == nil)
        try await alice.collection("orders").create("c") { $0.set("assignee", to: "bob") }
        try await engine.syncOnce()
        #expect(try await alice.deadLetters().map(\.key.id.rawValue) == ["c"])
        try await SyncEngine(
            replica: dispatch,
            transport: HTTPTransport(baseURL: base, database: "mydb", token: Self.writeToken)
        ).syncOnce()
        #expect(try await dispatch.collection("orders").get("c") == nil)
    }

    /// `max_request_bytes`: a larger body is 413 (the default, 16 MiB, would take it).
    @Test func maxRequestBytes() async throws {
        let served = try await Served(limits: ["max_request_bytes = 1000"])
        let big = Self.push([
            Self.change(
                1, "a", value: String((0..<3_000).map { _ in "abcdefghijklmnopqrstuvwxyz".randomElement()! }))
        ])
        #expect(try await served.post("/v1/mydb/push", big).status == 413)
        #expect(try await served.post("/v1/mydb/push", Self.push([Self.change(1, "a")])).status == 200)
    }

    /// `max_decompressed_bytes`: a small frame that decompresses past it is 413.
    @Test func maxDecompressedBytes() async throws {
        let served = try await Served(limits: ["max_decompressed_bytes = 10000"])
        let payload = WireMessage.encode(
            PushRequest(
                replica: Self.replica,
                changes: [Self.change(1, "a", value: String(repeating: "z", count: 50_000))]))
        // WireMessage.encode compresses when that helps: 50,000 repeated letters shrink.
        #expect(payload.count < 10_000)
        let (status, body) = try await served.post("/v1/mydb/push", payload)
        #expect(status == 413, "\(String(decoding: body, as: UTF8.self))")
    }

    /// `max_changes_per_batch`: a push of more changes is refused (413) and applies nothing.
    @Test func maxChangesPerBatch() async throws {
        let served = try await Served(limits: ["max_changes_per_batch = 2"])
        #expect(
            try await served.post("/v1/mydb/push", Self.push((1...3).map { Self.change($0, "d\($0)") }))
                .status == 413)
        #expect(
            try await served.post("/v1/mydb/push", Self.push((1...2).map { Self.change($0, "d\($0)") }))
                .status == 200)
    }

    /// `max_document_bytes`: a larger document is rejected on its own in the push's answer.
    @Test func maxDocumentBytes() async throws {
        let served = try await Served(limits: ["max_document_bytes = 500"])
        let (status, body) = try await served.post(
            "/v1/mydb/push",
            Self.push([
                Self.change(1, "a"), Self.change(2, "big", value: String(repeating: "q", count: 2_000)),
            ]))
        #expect(status == 200)
        let answer = try WireMessage.decode(PushResponse.self, from: body)
        #expect(answer.rejected.map(\.sequence) == [2])
        #expect(answer.rejected.first?.reason.contains("max_document_bytes = 500") == true)
    }

    /// `max_clock_skew_ms`: a write stamped ten seconds ahead is refused with 409 under a one
    /// second bound (the default, a minute, would take it).
    @Test func maxClockSkew() async throws {
        let served = try await Served(limits: ["max_clock_skew_ms = 1000"])
        let now = UInt64(Date().timeIntervalSince1970 * 1000)
        let (status, body) = try await served.post(
            "/v1/mydb/push", Self.push([Self.change(1, "a", wall: now + 10_000)]))
        #expect(status == 409, "\(String(decoding: body, as: UTF8.self))")
        #expect(
            try await served.post("/v1/mydb/push", Self.push([Self.change(1, "a", wall: now)])).status == 200)
    }

    /// `max_long_poll_ms`: a pull asking to wait an hour is answered, empty, long before the
    /// default cap (30 s) would answer it.
    @Test func maxLongPoll() async throws {
        let served = try await Served(limits: ["max_long_poll_ms = 200"])
        let started = ContinuousClock.now
        let (status, body) = try await served.post(
            "/v1/mydb/pull", WireMessage.encode(PullRequest(after: 0, waitMilliseconds: 3_600_000)))
        #expect(status == 200)
        #expect(try WireMessage.decode(PullResponse.self, from: body).changes.isEmpty)
        #expect(ContinuousClock.now - started < .seconds(25))
    }

    /// `header_timeout_ms`: a connection that sends half a request head is closed long before
    /// the default (10 s) would close it.
    @Test func headerTimeout() async throws {
        let served = try await Served(limits: ["header_timeout_ms = 200"])
        let client = try RawClient(port: served.port)
        #expect(client.send("POST /v1/mydb/pull HTTP/1.1\r\nHost: 127.0.0.1\r\n"))
        let started = ContinuousClock.now
        let (_, closed) = await client.readUntilClosed()
        #expect(closed)
        #expect(ContinuousClock.now - started < .seconds(9))
    }

    /// `idle_timeout_ms`: a request whose body never comes is closed long before the default
    /// (60 s) would close it.
    @Test func idleTimeout() async throws {
        let served = try await Served(limits: ["idle_timeout_ms = 300"])
        let client = try RawClient(port: served.port)
        #expect(client.send(HostileClientTests.head("/v1/mydb/pull", length: 100, token: Self.writeToken)))
        let started = ContinuousClock.now
        let (_, closed) = await client.readUntilClosed()
        #expect(closed)
        #expect(ContinuousClock.now - started < .seconds(45))
    }

    /// `[persistence] conflict_resolution`: the server merges with the file's policy. Two
    /// concurrent writes to different fields: under `lww` the later record wins whole, under
    /// `crdt` both fields survive.
    @Test(arguments: ["lww", "crdt"]) func conflictResolution(_ policy: String) async throws {
        let served = try await Served(policy: policy)
        let other = ReplicaID(high: 8, low: 8)
        func write(_ replica: ReplicaID, _ field: String, wall: UInt64) -> [UInt8] {
            let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
            var body = Document()
            body.set(field, to: .string("set"), at: stamp)
            let record = DocumentRecord(
                body: body, deletion: LWWRegister(false, stamp: stamp), version: VersionVector([replica: 1]))
            return WireMessage.encode(
                PushRequest(
                    replica: replica,
                    changes: [WireChange(sequence: 1, key: WireKey(collection: "c", id: "a"), record: record)]
                ))
        }
        #expect(
            try await served.post("/v1/mydb/push", write(Self.replica, "later", wall: 2_000)).status == 200)
        #expect(try await served.post("/v1/mydb/push", write(other, "earlier", wall: 1_000)).status == 200)
        served.server.stop()
        let store = try SQLiteCentralStore(path: served.storePath)
        let record = try #require(
            try await store.record(
                database: "mydb",
                key: DocumentKey(collection: try CollectionName("c"), id: try DocumentID("a"))))
        #expect(record.body.keys == (policy == "lww" ? ["later"] : ["earlier", "later"]))
    }

    /// SIGTERM while a client waits in a ten-minute long-poll: the poll is answered (an empty
    /// page) and the process exits at once rather than waiting the poll out.
    @Test func sigtermAnswersWaitingPullsAndExits() async throws {
        let served = try await Served(limits: ["max_long_poll_ms = 600000"])
        let poll = Task {
            try await served.post(
                "/v1/mydb/pull", WireMessage.encode(PullRequest(after: 0, waitMilliseconds: 600_000)))
        }
        var waiting = false
        for _ in 0..<3_000 where !waiting {
            waiting = try await served.text("/metrics").contains("weft_long_polls_waiting 1")
            if !waiting { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(waiting, "the long-poll never started waiting")
        let started = ContinuousClock.now
        served.server.process.terminate()
        let (status, body) = try await poll.value
        #expect(status == 200)
        #expect(try WireMessage.decode(PullResponse.self, from: body).changes.isEmpty)
        try await TestPostgres.exit(of: served.server.process)
        #expect(ContinuousClock.now - started < .seconds(60), "weft serve waited out the long-poll")
        #expect(served.server.process.terminationStatus == 0)
    }
}
