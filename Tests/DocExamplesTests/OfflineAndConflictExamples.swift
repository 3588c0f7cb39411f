// The examples of "Offline and reconnect" and "Conflict resolution" (Weft), compiled and run
// against a real server on loopback.
import Foundation
import Testing
import Weft
import WeftCRDT
import WeftURLSession
import WeftServer
import WeftSQLite
import WeftTesting

/// The resolver of the "Conflict resolution" article.
struct InventoryLevels: ConflictResolver {
    func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document {
        let (x, y) = (a.body.int("stock") ?? 0, b.body.int("stock") ?? 0)
        if x != y { return x > y ? a.body : b.body }
        return a.body.encoded().lexicographicallyPrecedes(b.body.encoded()) ? b.body : a.body
    }
}

@Suite("Doc examples: offline and conflicts")
struct OfflineAndConflictExamples {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/config")

    @Test func offlineAndReconnect() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-doc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let token = "replica-token-0123456789"
        var serverConfiguration = ServerConfiguration()
        serverConfiguration.port = 0
        serverConfiguration.tokens = [ServerToken(token: token, databases: ["fieldapp"], access: .readWrite)]
        let server = try await RunningStandalone.start(
            service: SyncService(store: MemoryCentralStore()), configuration: serverConfiguration)
        let serverURL = try #require(URL(string: "http://127.0.0.1:\(server.port)"))

        // The article's configuration, with the database in the temporary folder.
        var persistence = try WeftConfiguration.load(path: Self.fixtures.appendingPathComponent("offline.toml").path).persistence
        persistence.databasePath = directory.appendingPathComponent("field-tablet.sqlite").path

        let replica = try await Replica.open(path: persistence.databasePath, configuration: persistence.replicaConfiguration)
        let engine = SyncEngine(replica: replica, transport: URLSessionTransport(baseURL: serverURL, database: "fieldapp", token: token))
        await engine.setBandwidthLimit(persistence.bandwidth)
        let states = await engine.connectionStates()
        let loop = Task { await engine.runWriteBehind(everyMilliseconds: persistence.syncIntervalMilliseconds) }
        var seen = [ConnectionState]()
        for await state in states {
            seen.append(state)  // statusBar.show(state)
            if state == .online { break }
        }
        loop.cancel()
        await loop.value
        #expect(seen.last == .online)

        // Rule 4: progress events during a replay.
        try await replica.batch { batch in
            for index in 0..<50 { try batch.create("readings", "r\(index)") { $0.set("v", to: .int(Int64(index))) } }
        }
        let events = await engine.progress()
        let watching = Task {
            var last: SyncProgress?
            for await progress in events {
                last = progress  // bar.update(progress.fractionDone, eta: progress.estimatedRemaining)
                if progress.entriesDone >= progress.entriesTotal { break }
            }
            return last
        }
        try await engine.syncOnce()
        #expect(await watching.value?.fractionDone == 1)

        // Rule 5: a write-through collection returns a confirmed receipt.
        let orders = try engine.collection("orders")
        let receipt = try await orders.create("o-981") { $0.set("part", to: "DN50 valve") }
        #expect(receipt.confirmed)
        await server.stop()
    }

    @Test func conflictResolution() async throws {
        await ResolverLawChecker.check(resolver: InventoryLevels(), name: "inventoryLevels")
        var resolvers = ResolverRegistry()
        resolvers.register("inventoryLevels", InventoryLevels())
        let configuration = try WeftConfiguration.load(path: Self.fixtures.appendingPathComponent("resolvers.toml").path)
            .persistence.replicaConfiguration
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-doc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("app.sqlite").path
        let replica = try await Replica.open(path: path, configuration: configuration, resolvers: resolvers)
        #expect(replica.resolvers.names == ["inventoryLevels"])
    }
}
