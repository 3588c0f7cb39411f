import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Testing
import Weft
import WeftCRDT
import WeftPostgres
import WeftHTTP
import WeftServer
import WeftWire

/// A Standalone server on loopback with the document API open, over a real store.
struct APIServer {
    static let backendToken = "backend-token-0123456789abcdef"
    static let readerToken = "reader-token-0123456789abcdef"
    static let syncToken = "sync-token-0123456789abcdef"

    let projecting: ProjectingStore?
    let store: any CentralStore
    let service: SyncService
    let running: RunningStandalone
    var base: String { "http://127.0.0.1:\(running.port)/v1/db" }

    static func start(_ kind: CentralKind, _ directory: TemporaryDirectory, maxDocumentBytes: Int = .max) async throws -> APIServer {
        var projecting: ProjectingStore?
        let store: any CentralStore
        switch kind {
        case .memory: store = MemoryCentralStore()
        case .sqlite: projecting = try await ProjectingStore.make(.sqlite, directory)
        case .postgres: projecting = try await ProjectingStore.make(.postgres, directory)
        }
        var resolvers = ResolverRegistry()
        resolvers.register("keepMore", StoredProjectionTests.KeepMoreStock())
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.limits.maxRequestBytes = 64 << 10
        configuration.limits.maxDocumentBytes = maxDocumentBytes
        configuration.tokens = [
            ServerToken(token: backendToken, databases: ["db"], access: .readWrite, scopes: [.documents]),
            ServerToken(token: readerToken, databases: ["db"], access: .read, scopes: [.documents]),
            ServerToken(token: syncToken, databases: ["db"], access: .readWrite),
        ]
        let chosen = projecting?.store ?? MemoryCentralStore()
        let service = SyncService(store: chosen, configuration: configuration, policies: StoredProjectionTests.policies, resolvers: resolvers)
        let running = try await RunningStandalone.start(service: service, configuration: configuration)
        return APIServer(projecting: projecting, store: chosen, service: service, running: running)
    }

    func stop() async {
        await running.stop()
        await projecting?.close()
    }

    struct Answer {
        let status: Int
        let headers: HTTPHeaders
        let json: JSONValue?
        var object: [String: JSONValue] {
            if case .object(let members)? = json { return members }
            return [:]
        }
        var doc: JSONValue? { object["doc"] }
        var etag: String? { headers.first(name: "ETag") }
        var message: String {
            if case .object(let error)? = object["error"], case .string(let message)? = error["message"] { return message }
            return ""
        }
    }

    /// Calls the API: `path` after `/v1/db`.
    func call(
        _ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)] = [], token: String? = APIServer.backendToken
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        let json = try? JSONDecoder().decode(JSONValue.self, from: Data(buffer: bytes))
        return Answer(status: Int(response.status.code), headers: response.headers, json: json)
    }

    /// A replica syncing with this server in process.
    func replica() async throws -> SyncEngine {
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: ReplicaConfiguration())
        let engine = SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db"))
        _ = try await engine.syncOnce()
        return engine
    }
}

@Suite("Document API for backends", .serialized)
struct DocumentAPITests {
    static func object(_ text: String) throws -> JSONValue { try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)) }

    @Test("Create, read, patch, list by the projection, delete and follow the feed; replicas see every backend write", arguments: CentralKind.testable)
    func aBackendReadsAndWrites(kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let server = try await APIServer.start(kind, directory)
        let engine = try await server.replica()

        let created = try await server.call(
            .PUT, "/documents/orders/wo-1", body: #"{"status":"open","lines":[{"part":"valve","quantity":2}],"priority":3}"#,
            headers: [("If-None-Match", "*")])
        #expect(created.status == 201, "\(created.message)")
        let firstVersion = try #require(created.etag)
        #expect(created.doc == (try Self.object(#"{"status":"open","lines":[{"part":"valve","quantity":2}],"priority":3}"#)))
        // Created once only.
        let again = try await server.call(.PUT, "/documents/orders/wo-1", body: #"{"status":"x"}"#, headers: [("If-None-Match", "*")])
        #expect(again.status == 412)

        let read = try await server.call(.GET, "/documents/orders/wo-1")
        #expect(read.status == 200 && read.etag == firstVersion && read.doc == created.doc)
        #expect(read.object["version"].map { "\"\($0.text.dropFirst().dropLast())\"" } == firstVersion)

        // A conditional patch: the version read, then a stale one.
        let patched = try await server.call(
            .PATCH, "/documents/orders/wo-1", body: #"{"status":"assigned","priority":null,"crew":{"lead":"Ana"}}"#,
            headers: [("If-Match", firstVersion)])
        #expect(patched.status == 200, "\(patched.message)")
        #expect(patched.doc == (try Self.object(#"{"status":"assigned","lines":[{"part":"valve","quantity":2}],"crew":{"lead":"Ana"}}"#)))
        let stale = try await server.call(.PATCH, "/documents/orders/wo-1", body: #"{"status":"closed"}"#, headers: [("If-Match", firstVersion)])
        #expect(stale.status == 412, "\(stale.message)")
        #expect(try await server.call(.GET, "/documents/orders/wo-1").doc == patched.doc)

        // The replica pulls the backend's writes like any other change.
        _ = try await engine.syncOnce()
        let seen = try #require(try await engine.replica.collection("orders").get("wo-1"))
        #expect(seen.jsonValue == patched.doc)
        #expect(seen.string("status") == "assigned")

        // Listing: by the projection, in pages.
        for (id, status) in [("wo-2", "open"), ("wo-3", "assigned"), ("wo 4/é", "assigned")] {
            let path = "/documents/orders/" + id.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            #expect(try await server.call(.PUT, path, body: #"{"status":"\#(status)"}"#).status == 201)
        }
        let assigned = try await server.call(.GET, "/documents/orders?where%5Bstatus%5D=assigned")
        guard case .array(let items)? = assigned.object["documents"] else { Issue.record("no documents: \(assigned)"); return }
        #expect(items.compactMap { if case .object(let item) = $0, case .string(let id)? = item["id"] { id } else { nil } } == ["wo 4/é", "wo-1", "wo-3"])
        let nested = try await server.call(.GET, "/documents/orders?where%5Bcrew.lead%5D=Ana")
        if case .array(let found)? = nested.object["documents"] { #expect(found.count == 1) } else { Issue.record("\(nested)") }
        var ids = [String]()
        var after: String?
        for _ in 0..<10 {
            let page = try await server.call(.GET, "/documents/orders?limit=2" + (after.map { "&after=" + $0.addingPercentEncoding(withAllowedCharacters: .alphanumerics)! } ?? ""))
            guard case .array(let documents)? = page.object["documents"] else { break }
            for case .object(let item) in documents { if case .string(let id)? = item["id"] { ids.append(id) } }
            guard case .string(let next)? = page.object["next"] else { break }
            after = next
        }
        #expect(ids == ["wo 4/é", "wo-1", "wo-2", "wo-3"])

        // Deleting.
        let deleted = try await server.call(.DELETE, "/documents/orders/wo-2")
        #expect(deleted.status == 200 && deleted.object["deleted"] == .bool(true))
        #expect(try await server.call(.GET, "/documents/orders/wo-2").status == 404)
        #expect(try await server.call(.DELETE, "/documents/orders/wo-2").status == 404)
        #expect(try await server.call(.PATCH, "/documents/orders/nope", body: "{}").status == 404)

        // The feed: every document once, at its latest, then nothing new after the cursor.
        let feed = try await server.call(.GET, "/changes?after=0")
        guard case .array(let changes)? = feed.object["changes"], case .string(let cursor)? = feed.object["cursor"] else {
            Issue.record("\(feed)")
            return
        }
        let byID = Dictionary(
            changes.compactMap { change -> (String, [String: JSONValue])? in
                guard case .object(let members) = change, case .string(let id)? = members["id"] else { return nil }
                return (id, members)
            }, uniquingKeysWith: { $1 })
        #expect(Set(byID.keys) == ["wo-1", "wo-2", "wo-3", "wo 4/é"])
        #expect(byID["wo-2"]?["deleted"] == .bool(true) && byID["wo-2"]?["doc"] == .null)
        #expect(byID["wo-1"]?["doc"] == patched.doc)
        let quiet = try await server.call(.GET, "/changes?after=\(cursor)")
        #expect(quiet.object["changes"] == .array([]))
        // A replica's write shows in the feed after the cursor.
        _ = try await engine.syncOnce()
        try await engine.replica.collection("orders").update("wo-3") { $0.set("status", to: .string("closed")) }
        _ = try await engine.syncOnce()
        let next = try await server.call(.GET, "/changes?after=\(cursor)&wait=5000")
        guard case .array(let later)? = next.object["changes"], case .object(let change)? = later.first else { Issue.record("\(next)"); return }
        #expect(later.count == 1 && change["id"] == .string("wo-3"))
        #expect(try await server.call(.GET, "/changes?after=999999.5").status == 410)
        // The stores' doc column after server-side writes: the projection of the stored record.
        if let projecting = server.projecting {
            let rows = try await projecting.rows("db")
            #expect(rows.count == 4)
            for id in ["wo-1", "wo-2", "wo-3", "wo 4/é"] {
                let key = DocumentKey(collection: try CollectionName("orders"), id: try DocumentID(id))
                let record = try #require(try await server.store.record(database: "db", key: key))
                let expected = server.service.projector.value(database: "db", key: key, record: record)
                #expect(rows["orders/\(id)"]?.deleted == record.isDeleted)
                #expect(rows["orders/\(id)"]?.doc.map { ProjectionTests.sameJSON($0, expected ?? .null) } ?? (expected == nil), "\(id)")
            }
        }
        await server.stop()
    }

    @Test("A backend write merges with a replica's concurrent offline write under each policy", arguments: CentralKind.testable)
    func backendAndReplicaWritesMerge(kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let server = try await APIServer.start(kind, directory)
        let engine = try await server.replica()
        let replica = engine.replica
        try await replica.collection("notes").create("n") { $0.increment("views", by: 1) }
        try await replica.collection("orders").create("o") { $0.set("status", to: .string("open")) }
        try await replica.collection("readings").create("r") { $0.set("max_temp", to: .int(20)) }
        try await replica.collection("inventory").create("i") { $0.set("stock", to: .int(5)) }
        _ = try await engine.syncOnce()

        // The replica, offline: edits of every document.
        try await replica.collection("notes").update("n") { editor in
            editor.increment("views", by: 2)
            editor.set("by_replica", to: .bool(true))
        }
        try await replica.collection("readings").update("r") { $0.set("max_temp", to: .int(25)) }
        try await replica.collection("inventory").update("i") { $0.set("stock", to: .int(12)) }
        // The backend, meanwhile (its stamps come earlier than the replica's next write).
        #expect(try await server.call(.PATCH, "/documents/notes/n", body: #"{"views":2,"by_backend":true}"#).status == 200)
        #expect(try await server.call(.PATCH, "/documents/orders/o", body: #"{"status":"assigned"}"#).status == 200)
        #expect(try await server.call(.PATCH, "/documents/readings/r", body: #"{"max_temp":31}"#).status == 200)
        #expect(try await server.call(.PATCH, "/documents/inventory/i", body: #"{"stock":8}"#).status == 200)
        try await Task.sleep(for: .milliseconds(5))
        try await replica.collection("orders").update("o") { $0.set("status", to: .string("closed")) }
        _ = try await engine.syncOnce()
        _ = try await engine.syncOnce()

        // CRDT: every edit kept, the counter's increments added (1 + 2 by the replica, +1 by the backend).
        let notes = try await server.call(.GET, "/documents/notes/n")
        #expect(notes.doc == (try Self.object(#"{"views":4,"by_replica":true,"by_backend":true}"#)))
        // Last writer wins: the replica wrote last.
        #expect(try await server.call(.GET, "/documents/orders/o").doc == (try Self.object(#"{"status":"closed"}"#)))
        // Field rules: the greatest temperature.
        #expect(try await server.call(.GET, "/documents/readings/r").doc == (try Self.object(#"{"max_temp":31}"#)))
        // The custom resolver: the most stock.
        #expect(try await server.call(.GET, "/documents/inventory/i").doc == (try Self.object(#"{"stock":12}"#)))
        // The replica converged on the same.
        for (collection, id) in [("notes", "n"), ("orders", "o"), ("readings", "r"), ("inventory", "i")] {
            let local = try await replica.collection(collection).get(id)
            #expect(local?.jsonValue == (try await server.call(.GET, "/documents/\(collection)/\(id)").doc), "\(collection)")
        }
        await server.stop()
    }

    @Test("Bad JSON, wrong types, oversize bodies and malformed parameters are refused with 400 or 413, and change nothing", arguments: CentralKind.testable)
    func badInputChangesNothing(kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let server = try await APIServer.start(kind, directory, maxDocumentBytes: 4_096)
        #expect(try await server.call(.PUT, "/documents/tags/t", body: #"{"name":"x"}"#).status == 201)
        let engine = try await server.replica()
        try await engine.replica.collection("tags").update("t") { $0.insert(.string("a"), intoSet: "labels") }
        _ = try await engine.syncOnce()
        let before = try await server.call(.GET, "/documents/tags/t")
        let log = try await server.store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes.map(\.sequence)
        let deep = String(repeating: "[", count: 70) + String(repeating: "]", count: 70)
        let cases: [(HTTPMethod, String, String?, [(String, String)], Int)] = [
            (.PUT, "/documents/tags/t", "{not json", [], 400),
            (.PUT, "/documents/tags/t", "[1,2]", [], 400),
            (.PUT, "/documents/tags/t", #"{"a":\#(deep)}"#, [], 400),
            (.PUT, "/documents/tags/t", #"{"a":\#(String(repeating: "[", count: 20_000) + String(repeating: "]", count: 20_000))}"#, [], 400),
            (.PUT, "/documents/tags/t", #"{"a":\#(String(repeating: "{\"b\":", count: 5_000))1\#(String(repeating: "}", count: 5_000))}"#, [], 400),
            (.PATCH, "/documents/tags/t", #"{"labels":[{"x":1}]}"#, [], 400),
            (.PATCH, "/documents/tags/t", #"{"list":[1,null]}"#, [], 400),
            (.PATCH, "/documents/tags/t", #"{"map":{"~removed":1}}"#, [], 400),
            (.PUT, "/documents/tags/t", #"{"\u0000weft.siblings":1}"#, [], 400),
            (.PUT, "/documents/tags/t", #"{"blob":"\#(String(repeating: "x", count: 70_000))"}"#, [], 413),
            (.PUT, "/documents/tags/t", #"{"blob":"\#(String(repeating: "x", count: 5_000))"}"#, [], 413),
            (.PUT, "/documents/tags/t", #"{"a":1}"#, [("If-Match", "nonsense")], 400),
            (.PUT, "/documents/tags/t", #"{"a":1}"#, [("If-None-Match", "\"abc\"")], 400),
            (.PUT, "/documents/bad%20collection/t", #"{"a":1}"#, [], 400),
            (.PUT, "/documents/tags/%01", #"{"a":1}"#, [], 400),
            (.GET, "/documents/tags?limit=0", nil, [], 400),
            (.GET, "/documents/tags?limit=abc", nil, [], 400),
            (.GET, "/documents/tags?color=red", nil, [], 400),
            (.GET, "/documents/tags?where%5B%5D=1", nil, [], 400),
            (.GET, "/changes?after=-1", nil, [], 400),
            (.GET, "/changes?after=1.2.3", nil, [], 400),
            (.GET, "/changes?wait=99999999", nil, [], 400),
        ]
        for (method, path, body, headers, status) in cases {
            let answer = try await server.call(method, path, body: body, headers: headers)
            #expect(answer.status == status, "\(method) \(path.prefix(60)) \(body?.prefix(60) ?? ""): \(answer.status) \(answer.message)")
            #expect(!answer.message.isEmpty, "\(method) \(path.prefix(60)): a sentence says why")
        }
        let after = try await server.call(.GET, "/documents/tags/t")
        #expect(after.doc == before.doc && after.etag == before.etag)
        #expect(try await server.store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes.map(\.sequence) == log)
        await server.stop()
    }

    @Test("Tokens: the documents scope opens the API, read access only reads, the sync scope alone does not open it; nor the reverse")
    func scopes() async throws {
        let directory = TemporaryDirectory()
        let server = try await APIServer.start(.sqlite, directory)
        #expect(try await server.call(.PUT, "/documents/orders/a", body: #"{"s":1}"#, token: nil).status == 401)
        #expect(try await server.call(.PUT, "/documents/orders/a", body: #"{"s":1}"#, token: "wrong-token-0123456789abcdef").status == 401)
        #expect(try await server.call(.PUT, "/documents/orders/a", body: #"{"s":1}"#, token: APIServer.syncToken).status == 403)
        #expect(try await server.call(.GET, "/documents/orders/a", token: APIServer.syncToken).status == 403)
        #expect(try await server.call(.PUT, "/documents/orders/a", body: #"{"s":1}"#, token: APIServer.readerToken).status == 403)
        #expect(try await server.call(.DELETE, "/documents/orders/a", token: APIServer.readerToken).status == 403)
        #expect(try await server.call(.GET, "/documents/orders/a", token: APIServer.readerToken).status == 404)
        #expect(try await server.call(.PUT, "/documents/orders/a", body: #"{"s":1}"#).status == 201)
        #expect(try await server.call(.GET, "/documents/orders/a", token: APIServer.readerToken).status == 200)
        #expect(try await server.call(.GET, "/changes", token: APIServer.readerToken).status == 200)
        // The documents scope does not open replication.
        let transport = HTTPTransport(baseURL: "http://127.0.0.1:\(server.running.port)", database: "db", token: APIServer.backendToken)
        await #expect(throws: SyncError.self) { _ = try await transport.pull(PullRequest(after: 0)) }
        let syncing = HTTPTransport(baseURL: "http://127.0.0.1:\(server.running.port)", database: "db", token: APIServer.syncToken)
        #expect(try await syncing.pull(PullRequest(after: 0)).changes.count == 1)
        // No replica may take the server's writer identity.
        await #expect(throws: SyncError.self) {
            _ = try await server.service.hello(database: "db", HelloRequest(replica: SyncService.serverWriter, confirmedEpoch: 0, epoch: 1))
        }
        await server.stop()
    }

    struct Job: Codable, Equatable {
        var status: String
        var notes: [String: String]
    }

    @Test("A patch into a dictionary records removals and brings removed keys back; an array replaces an object; a stale DELETE and a no-op write change nothing", arguments: CentralKind.testable)
    func patchesFollowTheShapeOfWhatIsStored(kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let server = try await APIServer.start(kind, directory)
        let engine = try await server.replica()
        let jobs = try engine.replica.collection("jobs")
        try await jobs.put("j", Job(status: "open", notes: ["a": "first", "b": "second"]))
        try await jobs.update("j", as: Job.self) { $0.notes["a"] = nil }
        _ = try await engine.syncOnce()
        #expect(try await server.call(.GET, "/documents/jobs/j").doc == (try Self.object(#"{"status":"open","notes":{"b":"second"}}"#)))

        // A removed key written again shows, to the API and to the app's type.
        let again = try await server.call(.PATCH, "/documents/jobs/j", body: #"{"notes":{"a":"again"}}"#)
        #expect(again.doc == (try Self.object(#"{"status":"open","notes":{"a":"again","b":"second"}}"#)), "\(again.message)")
        _ = try await engine.syncOnce()
        #expect(try await jobs.get("j", as: Job.self)?.notes == ["a": "again", "b": "second"])
        // A removal by patch wins over a concurrent edit of the entry, as a typed removal does.
        try await jobs.update("j", as: Job.self) { $0.notes["b"] = "edited offline" }
        #expect(try await server.call(.PATCH, "/documents/jobs/j", body: #"{"notes":{"b":null}}"#).status == 200)
        _ = try await engine.syncOnce()
        _ = try await engine.syncOnce()
        #expect(try await jobs.get("j", as: Job.self)?.notes == ["a": "again"])
        #expect(try await server.call(.GET, "/documents/jobs/j").doc == (try Self.object(#"{"status":"open","notes":{"a":"again"}}"#)))
        #expect(try await server.call(.PATCH, "/documents/jobs/j", body: #"{"notes":{"~removed":null}}"#).status == 400)

        // An array written over an object becomes the array.
        #expect(try await server.call(.PUT, "/documents/crews/c", body: #"{"crew":{"lead":{"n":0}}}"#).status == 201)
        let replaced = try await server.call(.PUT, "/documents/crews/c", body: #"{"crew":[{"n":1}]}"#)
        #expect(replaced.doc == (try Self.object(#"{"crew":[{"n":1}]}"#)), "\(replaced.message)")

        // A stale DELETE deletes nothing; writing what is there already writes nothing.
        let current = try await server.call(.GET, "/documents/crews/c")
        let stale = try await server.call(.PUT, "/documents/crews/c", body: #"{"crew":[{"n":2}]}"#)
        #expect(try await server.call(.DELETE, "/documents/crews/c", headers: [("If-Match", try #require(current.etag))]).status == 412)
        let log = try await server.store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes.map(\.sequence)
        let same = try await server.call(.PUT, "/documents/crews/c", body: #"{"crew":[{"n":2}]}"#)
        #expect(same.status == 200 && same.etag == stale.etag)
        #expect(try await server.store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20).changes.map(\.sequence) == log)
        await server.stop()
    }

    @Test("Under field rules, a backend write of the value a rule hides is written, and then shows")
    func aWriteUnderFieldRulesComparesWithWhatShows() async throws {
        let directory = TemporaryDirectory()
        let server = try await APIServer.start(.sqlite, directory)
        let first = try await server.replica()
        let second = try await server.replica()
        try await first.replica.collection("readings").create("r") { $0.set("max_temp", to: .int(1)) }
        _ = try await first.syncOnce()
        _ = try await second.syncOnce()
        // Concurrent writes: 5, then 3 with the later stamp. The rule `max` shows 5.
        try await first.replica.collection("readings").update("r") { $0.set("max_temp", to: .int(5)) }
        try await Task.sleep(for: .milliseconds(5))
        try await second.replica.collection("readings").update("r") { $0.set("max_temp", to: .int(3)) }
        _ = try await first.syncOnce()
        _ = try await second.syncOnce()
        #expect(try await server.call(.GET, "/documents/readings/r").doc == (try Self.object(#"{"max_temp":5}"#)))
        // The backend sets 3, having seen both: its write replaces them, and 3 shows.
        let written = try await server.call(.PATCH, "/documents/readings/r", body: #"{"max_temp":3}"#)
        #expect(written.doc == (try Self.object(#"{"max_temp":3}"#)), "\(written.message)")
        await server.stop()
    }

    @Test("After the server forgets deletions: the feed starts from 0, an old cursor is 410, and a document re-created by a backend reaches a replica that still holds its tombstone", arguments: CentralKind.testable)
    func theFeedAndWritesAfterTombstonesAreForgotten(kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let server = try await APIServer.start(kind, directory)
        let engine = try await server.replica()
        #expect(try await server.call(.PUT, "/documents/orders/gone", body: #"{"status":"open","n":1}"#).status == 201)
        #expect(try await server.call(.PATCH, "/documents/orders/gone", body: #"{"n":2}"#).status == 200)
        #expect(try await server.call(.PUT, "/documents/orders/kept", body: #"{"status":"open"}"#).status == 201)
        _ = try await engine.syncOnce()
        let early = try await server.call(.GET, "/changes?after=0&limit=1")
        guard case .string(let earlyCursor)? = early.object["cursor"] else { Issue.record("\(early)"); return }
        #expect(try await server.call(.DELETE, "/documents/orders/gone").status == 200)
        _ = try await engine.syncOnce()
        // A later change, so the replica's latest pull starts past the tombstone.
        #expect(try await server.call(.PUT, "/documents/orders/later", body: #"{"status":"open"}"#).status == 201)
        _ = try await engine.syncOnce()
        #expect(try await engine.replica.collection("orders").tombstones().map(\.id.rawValue) == ["gone"])
        #expect(try await server.service.collectTombstones(retention: 0) == 1)

        let fresh = try await server.call(.GET, "/changes?after=0")
        #expect(fresh.status == 200, "\(fresh.message)")
        if case .array(let changes)? = fresh.object["changes"] { #expect(changes.count == 2) } else { Issue.record("\(fresh)") }
        #expect(try await server.call(.GET, "/changes?after=\(earlyCursor)").status == 410)

        // Re-created by the backend: the replica, which still holds the tombstone, takes it.
        let recreated = try await server.call(.PUT, "/documents/orders/gone", body: #"{"status":"back"}"#)
        #expect(recreated.status == 201, "\(recreated.message)")
        _ = try await engine.syncOnce()
        #expect(try await engine.replica.collection("orders").get("gone")?.string("status") == "back")
        await server.stop()
    }

    @Test(
        "Two servers on one PostgreSQL database write one document through the API at once: every write is kept, on the server and on a replica",
        .enabled(if: !TestPostgres.skipped, "WEFT_SKIP_POSTGRES=1 leaves PostgreSQL out"))
    func twoServersWriteOneDocumentAtOnce() async throws {
        let directory = TemporaryDirectory()
        let first = try await APIServer.start(.postgres, directory)
        guard let url = first.projecting?.url else { Issue.record("no PostgreSQL"); return }
        // A second server on the same database.
        let store = try await PostgresCentralStore(url: url)
        let second = SyncService(store: store, policies: StoredProjectionTests.policies)
        #expect(try await first.call(.PUT, "/documents/notes/shared", body: #"{"start":true}"#).status == 201)
        let key = DocumentKey(collection: try CollectionName("notes"), id: try DocumentID("shared"))
        let perServer = 15
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for index in 0..<perServer {
                    let answer = try await first.call(.PATCH, "/documents/notes/shared", body: #"{"a\#(index)":\#(index)}"#)
                    #expect(answer.status == 200, "\(answer.message)")
                }
            }
            group.addTask {
                for index in 0..<perServer {
                    _ = try await second.write(database: "db", key: key, .mergePatch(["b\(index)": .int(Int64(index))]), condition: .none)
                }
            }
            try await group.waitForAll()
        }
        var expected: [String: JSONValue] = ["start": .bool(true)]
        for index in 0..<perServer {
            expected["a\(index)"] = .int(Int64(index))
            expected["b\(index)"] = .int(Int64(index))
        }
        #expect(try await first.call(.GET, "/documents/notes/shared").doc == .object(expected))
        // A replica pulling from either server takes every write (no dot was issued twice).
        let engine = SyncEngine(
            replica: try await Replica(storage: MemoryReplicaStorage(), configuration: ReplicaConfiguration()),
            transport: InProcessTransport(service: second, database: "db"))
        _ = try await engine.syncOnce()
        #expect(try await engine.replica.collection("notes").get("shared")?.jsonValue == .object(expected))
        #expect(try await first.projecting?.rows("db")["notes/shared"]?.doc == .object(expected))
        await store.shutdown()
        await first.stop()
    }
}
