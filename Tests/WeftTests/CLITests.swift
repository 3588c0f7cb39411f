import Foundation
import Testing
import Weft
import WeftPostgres
import WeftHTTP
import WeftCRDT
import WeftServer
import WeftSQLite

@Suite("The weft command", .serialized)
struct CLITests {
    @Test func theDemoConvergesAndExitsZero() async throws {
        let weft = try builtExecutable("weft")
        let result = try await runProcessDetached(weft, ["demo"])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("identical on every replica: yes"))
        #expect(result.output.contains("Conflicts resolved by the server:"))
        #expect(result.output.contains("count=4"))
        // The offline period and the throttled replay with its progress bar.
        #expect(result.output.contains("sync attempt: unavailable (offline); nothing is lost"))
        #expect(result.output.contains("100% 2000/2000 entries"))
        #expect(result.output.contains("the tablet now has 2000 readings"))
    }

    @Test func statusAndConflictsReadAReplicaFile() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("app.sqlite")
        do {
            let replica = try await Replica.open(path: path)
            try await replica.collection("c").create("d") { $0.set("v", to: 1) }
        }
        let weft = try builtExecutable("weft")
        let status = try await runProcessDetached(weft, ["status", path])
        #expect(status.status == 0, "\(status.error)")
        #expect(status.output.contains("queue        1 entries"))
        let conflicts = try await runProcessDetached(weft, ["conflicts", path])
        #expect(conflicts.status == 0 && conflicts.output.contains("no conflicts"))
        let missing = try await runProcessDetached(weft, ["status", directory.path("nope.sqlite")])
        #expect(missing.status != 0 && missing.error.contains("does not exist"))
    }

    @Test func queryPrintsMatchingDocumentsAsJSON() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("app.sqlite")
        do {
            var configuration = ReplicaConfiguration()
            configuration.collectionIndexes = ["orders": [.value("status"), .value("rank"), .members("tags")]]
            let replica = try await Replica.open(path: path, configuration: configuration)
            for index in 0..<6 {
                try await replica.collection("orders").create("o\(index)") { editor in
                    editor.set("status", to: index % 2 == 0 ? "open" : "closed")
                    editor.set("rank", to: .int(Int64(index)))
                    editor.updateMap("site") { site, stamp in _ = site.set("city", to: "Lyon", at: stamp) }
                    if index == 4 { editor.insert("urgent", intoSet: "tags") }
                }
            }
        }
        let weft = try builtExecutable("weft")
        let open = try await runProcessDetached(weft, ["query", path, "orders", "--where", "status = \"open\"", "--order-by", "rank:desc", "--limit", "2"])
        #expect(open.status == 0, "\(open.error)")
        let documents = try #require(try JSONSerialization.jsonObject(with: Data(open.output.utf8)) as? [[String: Any]])
        #expect(documents.map { $0["_id"] as? String } == ["o4", "o2"])
        #expect((documents.first?["site"] as? [String: Any])?["city"] as? String == "Lyon")
        #expect(documents.first?["tags"] as? [String] == ["urgent"])
        #expect(documents.first?["rank"] as? Int == 4)

        let count = try await runProcessDetached(weft, ["query", path, "orders", "--where", "rank >= 2", "--where", "status in [open, closed]", "--count"])
        #expect(count.status == 0 && count.output.trimmingCharacters(in: .whitespacesAndNewlines) == "4", "\(count.output) \(count.error)")
        let explain = try await runProcessDetached(weft, ["query", path, "orders", "--where", "tags contains urgent", "--explain"])
        #expect(explain.output.contains("index lookup for tags contains \"urgent\""), "\(explain.output)")
        let scan = try await runProcessDetached(weft, ["query", path, "orders", "--where", "site.city startswith Ly", "--count"])
        #expect(scan.output.trimmingCharacters(in: .whitespacesAndNewlines) == "6", "\(scan.output) \(scan.error)")
        // The command kept the app's indexes.
        let again = try await runProcessDetached(weft, ["query", path, "orders", "--where", "status = open", "--explain"])
        #expect(again.output.contains("index lookup"), "\(again.output)")

        // get and list print the same JSON.
        let one = try await runProcessDetached(weft, ["get", path, "orders", "o4"])
        #expect(one.status == 0, "\(one.error)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(one.output.utf8)) as? [String: Any])
        #expect(object["_id"] as? String == "o4" && object["status"] as? String == "open" && object["tags"] as? [String] == ["urgent"])
        let missing = try await runProcessDetached(weft, ["get", path, "orders", "nope"])
        #expect(missing.status != 0 && missing.error.contains("does not exist"), "\(missing.error)")
        let listed = try await runProcessDetached(weft, ["list", path, "orders", "--limit", "3"])
        let page = try #require(try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]])
        #expect(page.map { $0["_id"] as? String } == ["o0", "o1", "o2"])

        let bad = try await runProcessDetached(weft, ["query", path, "orders", "--where", "status ~ open"])
        #expect(bad.status != 0 && bad.error.contains("is not a condition"), "\(bad.error)")
        let badOrder = try await runProcessDetached(weft, ["query", path, "orders", "--order-by", "rank:sideways"])
        #expect(badOrder.status != 0 && badOrder.error.contains("asc or desc"), "\(badOrder.error)")
        let badCollection = try await runProcessDetached(weft, ["query", path, "no such"])
        #expect(badCollection.status != 0 && badCollection.error.contains("collection name"), "\(badCollection.error)")
    }

    @Test func serveRefusesABadConfigurationWithTheKeyAndLine() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("bad.toml")
        try "[server]\nlisten = \"nowhere\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try await runProcessDetached(try builtExecutable("weft"), ["serve", "--config", path])
        #expect(result.status != 0)
        #expect(result.error.contains("line 2") && result.error.contains("server.listen"), "\(result.error)")
    }
}

@Suite("weft sync", .serialized)
struct CLISyncTests {
    @Test func syncReplaysAReplicaFileWithAProgressBarUnderTheBandwidthLimit() async throws {
        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(store: MemoryCentralStore())
        let path = directory.path("field.sqlite")
        do {
            let replica = try await Replica.open(path: path)
            try await replica.batch { batch in
                for index in 0..<300 { try batch.create("readings", "r\(index)") { $0.set("v", to: .int(Int64(index))) } }
            }
        }
        let config = directory.path("replica.toml")
        try """
            [persistence]
            remote_endpoint = "\(server.baseURL)/mydb"
            auth_token = "\(RunningServer.writeToken)"
            database_path = "\(path)"
            bandwidth_bytes_per_second = 200000
            bandwidth_burst_bytes = 2000
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let weft = try builtExecutable("weft")
        let result = try await runProcessDetached(weft, ["sync", "--config", config])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("[############################] 100% 300/300 entries"), "\(result.output)")
        #expect(result.output.contains("on the wire"))
        #expect(result.output.contains("pushed 300"))
        #expect(try await server.store.changes(database: "mydb", after: 0, limit: 1_000, maxBytes: 1 << 24).changes.count == 300)
        // A server that is down: a clear failure, and the queue is kept.
        await server.stop()
        let replica = try await Replica.open(path: path)
        try await replica.collection("readings").update("r1") { $0.set("v", to: 100) }
        let offline = try await runProcessDetached(weft, ["sync", "--config", config])
        #expect(offline.status != 0 && offline.error.contains("unavailable") && offline.error.contains("the queue is kept"))
        #expect(try await replica.queuedChanges().count == 1)
    }

    /// `remote_endpoint = "postgres://…"` works as written: the command syncs straight into
    /// PostgreSQL.
    @Test(.enabled(if: !TestPostgres.skipped)) func syncWritesStraightIntoPostgreSQL() async throws {
        let directory = TemporaryDirectory()
        let url = try await TestPostgres.freshDatabase()
        let path = directory.path("direct.sqlite")
        do {
            let replica = try await Replica.open(path: path)
            try await replica.collection("readings").create("r1") { $0.set("v", to: 7) }
        }
        let config = directory.path("postgres.toml")
        try """
            [persistence]
            remote_endpoint = "\(url.absoluteString)?tenant=cli"
            database_path = "\(path)"
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let result = try await runProcessDetached(try builtExecutable("weft"), ["sync", "--config", config])
        #expect(result.status == 0, "\(result.error)")
        #expect(result.output.contains("pushed 1"), "\(result.output)")
        let direct = try await PostgresEndpoint.connect(try #require(URL(string: url.absoluteString + "?tenant=cli")))
        let key = DocumentKey(collection: try CollectionName("readings"), id: try DocumentID("r1"))
        #expect(try await direct.store.record(database: "cli", key: key)?.body.int("v") == 7)
    }

    /// `weft sync --follow` keeps the replica live: it pushes what the file holds, and changes
    /// another replica pushes arrive in the file while it runs.
    @Test func followKeepsTheReplicaLive() async throws {
        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(store: MemoryCentralStore())
        let path = directory.path("followed.sqlite")
        do {
            let replica = try await Replica.open(path: path)
            try await replica.collection("readings").create("mine") { $0.set("v", to: 1) }
        }
        let config = directory.path("follow.toml")
        try """
            [persistence]
            remote_endpoint = "\(server.baseURL)/mydb"
            auth_token = "\(RunningServer.writeToken)"
            database_path = "\(path)"
            sync_interval_ms = 3600000
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = try builtExecutable("weft")
        process.arguments = ["sync", "--config", config, "--follow"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = Pipe()
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // The first round pushes the file's write (read from the command's output: an event).
        let reader = output.fileHandleForReading
        let pushed = await Task.detached { () -> Bool in
            var text = ""
            while !text.contains("pushed 1") {
                let chunk = reader.availableData
                if chunk.isEmpty { return false }
                text += String(decoding: chunk, as: UTF8.self)
            }
            return true
        }.value
        #expect(pushed)
        // Another replica's change arrives in the followed file long before the hour's round.
        let other = SyncEngine(
            replica: try await Replica(storage: MemoryReplicaStorage()),
            transport: HTTPTransport(baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken))
        try await other.replica.collection("readings").create("theirs") { $0.set("v", to: 2) }
        _ = try await other.syncOnce()
        let storage = try SQLiteReplicaStorage(path: path)
        let key = DocumentKey(collection: try CollectionName("readings"), id: try DocumentID("theirs"))
        var checks = 0
        while try await storage.record(for: key) == nil, checks < 12_000 {
            try await Task.sleep(for: .milliseconds(5))
            checks += 1
        }
        #expect(try await storage.record(for: key)?.body.int("v") == 2)
        process.terminate()
        process.waitUntilExit()
        await server.stop()
    }

    @Test("weft remote get, put, list, delete and changes use a running server's document API")
    func remoteCommandsUseTheDocumentAPI() async throws {
        let directory = TemporaryDirectory()
        let server = try await APIServer.start(.sqlite, directory)
        setenv("WEFT_TEST_REMOTE_TOKEN", APIServer.backendToken, 1)
        let weft = try builtExecutable("weft")
        let common = ["--server", "http://127.0.0.1:\(server.running.port)", "--database", "db", "--token-variable", "WEFT_TEST_REMOTE_TOKEN"]
        func remote(_ arguments: [String]) async throws -> (status: Int32, output: String, error: String) {
            try await runProcessDetached(weft, ["remote", arguments[0]] + common + Array(arguments.dropFirst()))
        }
        let put = try await remote(["put", "orders", "wo 1", #"{"status":"open","tags":["a"]}"#, "--create"])
        #expect(put.status == 0, "\(put.error)")
        let created = try JSONDecoder().decode(JSONValue.self, from: Data(put.output.utf8))
        guard case .object(let fields) = created, case .string(let version)? = fields["_version"] else {
            Issue.record("\(put.output)")
            return
        }
        #expect(fields["_id"] == .string("wo 1") && fields["status"] == .string("open"))
        #expect(try await remote(["put", "orders", "wo 1", "{}", "--create"]).status != 0)
        let patched = try await remote(["put", "orders", "wo 1", #"{"status":"closed"}"#, "--patch", "--if-version", version])
        #expect(patched.status == 0 && patched.output.contains(#""status":"closed""#), "\(patched.error)")
        let stale = try await remote(["put", "orders", "wo 1", #"{"status":"open"}"#, "--patch", "--if-version", version])
        #expect(stale.status != 0 && stale.error.contains("412"), "\(stale.error)")
        #expect(try await remote(["put", "orders", "wo-2", #"{"status":"open"}"#]).status == 0)
        let get = try await remote(["get", "orders", "wo 1"])
        #expect(get.status == 0 && get.output.contains(#""status":"closed""#))
        let list = try await remote(["list", "orders", "--where", "status=open"])
        #expect(list.status == 0, "\(list.error)")
        let listed = try JSONDecoder().decode([JSONValue].self, from: Data(list.output.utf8))
        #expect(listed.count == 1 && list.output.contains(#""_id":"wo-2""#))
        #expect(try await remote(["delete", "orders", "wo-2"]).status == 0)
        #expect(try await remote(["get", "orders", "wo-2"]).error.contains("404"))
        let changes = try await remote(["changes"])
        #expect(changes.status == 0 && changes.output.split(separator: "\n").count == 2 && changes.error.contains("cursor "))
        let unauthorized = try await runProcessDetached(weft, ["remote", "get"] + common.dropLast(2) + ["--token-variable", "WEFT_TEST_NO_SUCH_TOKEN", "orders", "x"])
        #expect(unauthorized.status != 0 && unauthorized.error.contains("WEFT_TEST_NO_SUCH_TOKEN"))
        await server.stop()
    }
}
