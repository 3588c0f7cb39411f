import ArgumentParser
import Foundation
import Logging
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftSQLite

/// The main job on embedded defaults: a Standalone server on a loopback port, three replicas in a
/// temporary folder, concurrent offline edits, the queues draining, a conflict detected and
/// resolved, and every replica converged with the server.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the end-to-end demo on embedded defaults.")
    /// The server's policies: stock by CRDT join (every withdrawal counts), the rest by last writer.
    static let policies = ServerPolicies(defaultPolicy: .lastWriterWins, collections: ["inventory": .crdt])

    @Option(help: "Keep the demo's files in this folder instead of a temporary one.")
    var directory: String?

    func run() async throws {
        let folder = directory.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("weft-demo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { if directory == nil { try? FileManager.default.removeItem(at: folder) } }

        // 1. The server, on its embedded SQLite store, on a free loopback port.
        var server = ServerConfiguration()
        server.port = 0
        server.storePath = folder.appendingPathComponent("standalone.sqlite").path
        let token = "demo-token-0123456789abcdef"
        server.tokens = [ServerToken(token: token, databases: ["demo"], access: .readWrite)]
        let store = try SQLiteCentralStore(path: server.storePath)
        let service = SyncService(store: store, policies: Self.policies)
        var quiet = Logger(label: "weft.demo.server")
        quiet.logLevel = .critical  // the demo prints its own story
        let running = try await RunningStandalone.start(service: service, configuration: server, logger: quiet)
        let port = running.port
        print("Standalone server on http://127.0.0.1:\(port) (store: \(server.storePath))")

        // 2. Three replicas, each with its own SQLite file.
        let names = ["tablet", "laptop", "phone"]
        var replicas = [Replica]()
        var engines = [SyncEngine]()
        for name in names {
            var configuration = ReplicaConfiguration()
            configuration.collectionPolicies = ["inventory": .crdt, "workOrders": .lastWriterWins]
            let replica = try await Replica.open(
                path: folder.appendingPathComponent("\(name).sqlite").path, configuration: configuration)
            replicas.append(replica)
            engines.append(
                SyncEngine(replica: replica, transport: HTTPTransport(baseURL: "http://127.0.0.1:\(port)", database: "demo", token: token)))
        }

        // 3. The tablet creates a work order and some stock; everyone syncs.
        try await replicas[0].collection("workOrders").create("wo-17") { editor in
            editor.set("title", to: "Replace valve on pump 7")
            editor.set("status", to: "open")
        }
        try await replicas[0].collection("inventory").create("valve-dn50") { $0.increment("count", by: 10) }
        for engine in engines { try await engine.syncOnce() }
        print("\nShared start: wo-17 is \"open\"; 10 DN50 valves in stock.")

        // 4. Offline, concurrently: two replicas change the status, all three take stock out.
        try await replicas[1].collection("workOrders").update("wo-17") { $0.set("status", to: "in progress") }
        try await replicas[2].collection("workOrders").update("wo-17") { $0.set("status", to: "waiting for parts") }
        for (index, replica) in replicas.enumerated() {
            try await replica.collection("inventory").update("valve-dn50") { $0.increment("count", by: -Int64(index + 1)) }
        }
        print("\nOffline edits, queued locally:")
        for (name, replica) in zip(names, replicas) {
            let entries = try await replica.queuedChanges()
            print("  \(name): \(entries.count) queue entries, \(try await replica.queuedBytes()) bytes")
        }

        // 5. Back online: push, pull, twice so everyone hears everyone.
        print("\nSyncing:")
        for round in 1...2 {
            for (name, engine) in zip(names, engines) {
                let report = try await engine.syncOnce()
                let left = try await engine.replica.queuedChanges().count
                print("  round \(round) \(name): pushed \(report.pushed), pulled \(report.pulled), conflicts \(report.conflicts), queue now \(left)")
            }
        }

        // 6. The conflicts the server resolved.
        let conflicts = try await store.conflicts(database: "demo", limit: 10)
        print("\nConflicts resolved by the server: \(conflicts.count)")
        for conflict in conflicts.reversed() {
            print("  \(conflict.key) by \(conflict.policy): winner \(Render.fields(conflict.winner.body))")
        }

        // 7. Converged state.
        print("\nConverged state:")
        var converged = true
        for (collection, id) in [("workOrders", "wo-17"), ("inventory", "valve-dn50")] {
            let key = DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id))
            let central = try await store.record(database: "demo", key: key)
            for (name, replica) in zip(names, replicas) {
                let local = try await replica.record(key)
                converged = converged && local == central
                print("  \(name) \(key): \(local.map { Render.fields($0.body) } ?? "-")")
            }
        }
        print("  server: identical on every replica: \(converged ? "yes" : "NO")")
        print("\nThe status conflict is resolved last-writer-wins (one whole version, by HLC stamp); the stock")
        print("counter is a CRDT, so all three withdrawals count: 10 - 1 - 2 - 3 = 4.")

        // 8. An offline period: the server stops; the phone keeps collecting readings.
        await running.stop()
        print("\nThe server stops. The phone keeps working offline:")
        let phone = engines[2]
        try await replicas[2].batch { batch in
            for index in 0..<2_000 {
                try batch.upsert("readings", "r-\(index)") { editor in
                    editor.set("sensor", to: .string("pump-\(index % 12)"))
                    editor.set("celsius", to: .double(20 + Double(index % 70) / 10))
                    editor.set("note", to: .string("reading \(index) taken on the phone while offline"))
                }
            }
        }
        do {
            try await phone.syncOnce()
        } catch {
            print("  sync attempt: \(error.kind.rawValue) (\(await phone.connectionState.rawValue)); nothing is lost")
        }
        let queuedBytes = try await replicas[2].queuedBytes()
        print("  phone queue: \(try await replicas[2].queuedChanges().count) entries, \(queuedBytes) bytes")

        // 9. The server comes back on the same port and store; the phone replays its queue under
        // a bandwidth limit, with a progress bar.
        server.port = port
        let restarted = try await RunningStandalone.start(
            service: SyncService(store: store, policies: Self.policies),
            configuration: server, logger: quiet)
        let limit = BandwidthLimit(bytesPerSecond: 24_000, burstBytes: 8_000)
        print("\nThe server is back. Replaying the phone's queue at \(limit.bytesPerSecond) bytes/s (framed, on the wire):")
        await phone.setBandwidthLimit(limit)
        await phone.setBatchLimits(entries: 500, bytes: 1 << 20)
        let events = await phone.progress()
        let drawing = Task {
            var bar = ProgressBar()
            for await event in events {
                bar.draw(event)
                if event.entriesDone >= event.entriesTotal { break }
            }
        }
        let started = ContinuousClock.now
        let replay = try await phone.syncOnce()
        await drawing.value
        let elapsed = ContinuousClock.now - started
        print("  replayed \(replay.pushed) entries in \(ProgressBar.seconds(elapsed)); state \(await phone.connectionState.rawValue)")
        for engine in engines { try await engine.syncOnce() }
        let readings = try await replicas[0].collection("readings").list().count
        print("  the tablet now has \(readings) readings")
        await restarted.stop()
        if !converged || readings != 2_000 { throw ExitCode.failure }
    }
}
