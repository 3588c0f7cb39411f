// The examples of "Offline and reconnect" and "Conflict resolution" (Weft), compiled and run
// against a real server on loopback.
import Foundation
import Synchronization
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

/// The app's status bar of "Offline and reconnect": it remembers the states it showed.
final class StatusBar: Sendable {
    let shown = Mutex<[ConnectionState]>([])
    func show(_ state: ConnectionState) { shown.withLock { $0.append(state) } }
    var isOnline: Bool { shown.withLock { $0.last == .online } }
}

/// The app's progress view of "Offline and reconnect": it remembers the fractions it showed.
final class ProgressBar: Sendable {
    let fractions = Mutex<[Double]>([])
    func update(_ fraction: Double, eta: Duration?) { fractions.withLock { $0.append(fraction) } }
    var isDone: Bool { fractions.withLock { $0.last == 1 } }
}

@Suite("Doc examples: offline and conflicts")
struct OfflineAndConflictExamples {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/config")

    /// The overview's example; it follows the connection states until the task running it is
    /// cancelled, then hands what it opened to the test.
    static func overview(
        persistence: PersistenceConfiguration, serverURL: URL, token: String, statusBar: StatusBar
    ) async throws -> (replica: Replica, engine: SyncEngine, loop: Task<Void, Never>) {
        let replica = try await Replica.open(path: persistence.databasePath, configuration: persistence.replicaConfiguration)
        let engine = SyncEngine(replica: replica, transport: URLSessionTransport(baseURL: serverURL, database: "fieldapp", token: token))
        await engine.setBandwidthLimit(persistence.bandwidth)
        let loop = Task { await engine.runWriteBehind(everyMilliseconds: persistence.syncIntervalMilliseconds) }
        for await state in await engine.connectionStates() {
            statusBar.show(state)  // .offline, .syncing, .online
        }
        return (replica, engine, loop)
    }

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
        #expect(persistence.databasePath == "field-tablet.sqlite")
        persistence.databasePath = directory.appendingPathComponent("field-tablet.sqlite").path

        let statusBar = StatusBar()
        let running = Task { [persistence] in
            try await Self.overview(persistence: persistence, serverURL: serverURL, token: token, statusBar: statusBar)
        }
        for _ in 0..<2_000 where !statusBar.isOnline { try await Task.sleep(for: .milliseconds(5)) }
        running.cancel()
        let (replica, engine, loop) = try await running.value
        #expect(statusBar.isOnline)
        loop.cancel()
        await loop.value

        // Rule 4: progress events during a replay. The watching task may subscribe after a
        // replay ended: write and sync again until the bar has seen one through.
        let bar = ProgressBar()
        let watching = Task {
            for await progress in await engine.progress() {
                bar.update(progress.fractionDone, eta: progress.estimatedRemaining)
            }
        }
        for round in 0..<200 where !bar.isDone {
            try await replica.batch { batch in
                for index in 0..<50 { try batch.create("readings", "r\(round)-\(index)") { $0.set("v", to: .int(Int64(index))) } }
            }
            try await engine.syncOnce()
            try await Task.sleep(for: .milliseconds(5))
        }
        watching.cancel()
        await watching.value
        #expect(bar.isDone)

        // Rule 5: a write-through collection returns a confirmed receipt.
        var confirmed = false
        func showDone() { confirmed = true }
        func showPending(_ reason: String?) { Issue.record("not confirmed: \(reason ?? "no reason")") }
        let orders = try engine.collection("orders")
        let receipt = try await orders.create("o-981") { $0.set("part", to: "DN50 valve") }
        if receipt.confirmed { showDone() } else { showPending(receipt.pendingReason) }
        #expect(confirmed)
        await server.stop()
    }

    @Test func inventoryLevelsIsAJoin() async {
        await ResolverLawChecker.check(resolver: InventoryLevels(), name: "inventoryLevels")
    }

    @Test func conflictResolution() async throws {
        let configuration = try WeftConfiguration.load(path: Self.fixtures.appendingPathComponent("resolvers.toml").path)
            .persistence.replicaConfiguration
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-doc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("app.sqlite").path

        var resolvers = ResolverRegistry()
        resolvers.register("inventoryLevels", InventoryLevels())
        let replica = try await Replica.open(path: path, configuration: configuration, resolvers: resolvers)
        #expect(replica.resolvers.names == ["inventoryLevels"])
    }
}
