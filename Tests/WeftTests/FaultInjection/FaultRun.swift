import AsyncHTTPClient
import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftPostgres
import WeftServer
import WeftSQLite
import WeftWire

#if canImport(Glibc)
import Glibc
#endif

/// One seeded run.
final class FaultRun: @unchecked Sendable {
    static let token = "fault-token-0123456789abcdef"
    static let database = "fault"
    let kind: FaultInjectionTests.StoreKind
    let seed: UInt64
    let steps: Int
    let directory = TemporaryDirectory()
    var random: SeededRandom

    // The servers, their ports and configuration.
    var storeURL: URL?
    var ports: [Int] = []
    var servers: [OfflineTests.ServerProcess?] = []
    var proxy: FaultProxy!
    /// One request per connection, so the proxy's faults fall on requests, not on whole
    /// keep-alive connections.
    let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.maximumUsesPerConnection = 1
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    // The replicas.
    struct Node {
        var replica: Replica
        var engine: SyncEngine
        var transport: ReplayingTransport
    }
    /// The open replicas (a slot is empty while its files are copied).
    var slots: [Node?] = []
    var nodes: [Node] { slots.compactMap { $0 } }

    // The model: what must be on the server at the end.
    var counters: [String: Int64] = [:]  // "collection/id" → sum of definite increments
    var maybe: [String: Int64] = [:]  // rolled-back write-through increments: may or may not count
    var nested: [String: Int64] = [:]
    var nestedMaybe: [String: Int64] = [:]
    /// Writes not yet known to be acknowledged, per replica: if the replica's file is restored
    /// from an older copy, those the server had not acknowledged by then are gone with it (or
    /// reached the server with a lost answer): they move from the definite sums to the maybes.
    var unconfirmed: [Int: [(key: String, amount: Int64, nested: Bool, tag: String?, sequence: UInt64)]] = [:]
    var elements: [String: Set<String>] = [:]
    var registers: [String: Set<String>] = [:]
    /// Every quantity written to each "stock" document (custom resolver): its final one is one of them.
    var quantities: [String: Set<Int64>] = [:]
    var unique = 0
    var history: [String: [String]] = [:]
    /// Documents where a write-through write that created the document was rolled back: the
    /// undo is a delete, stamped when it ran, and like any later delete it wins over writes it
    /// had not seen (the documented rule between a delete and a concurrent edit), so their
    /// increments may be gone; only an upper bound holds for the counter.
    var resettable: Set<String> = []  // "collection/id" → what each write did, for a failure's message

    // What happened.
    var writes = 0
    var serverKills = 0
    var replicaRestarts = 0
    /// Replica processes killed with SIGKILL (``killReplicaProcess(_:)``), and how many of those
    /// kills were power cuts.
    var replicaKills = 0
    var powerCuts = 0
    /// The boot of each replica's machine: a power cut restarts it.
    var boots: [Int: Int] = [:]
    func boot(_ index: Int) -> String { "boot-\(index)-\(boots[index] ?? 0)" }
    var partitions = 0
    var storeBackups = 0
    var storeRestores = 0
    /// Replicas whose record equals the server's but for claims ahead after a relay (see `check()`).
    var limitedRelays = 0
    /// Documents the server forgot (their tombstones), which replicas still hold as tombstones.
    var forgottenTombstones = 0
    /// Replicas whose record is the server's joined with a tombstone the server forgot (see `check()`).
    var keptHistories = 0
    /// Writes set aside by a replica behind what the server forgot (see `check()`).
    var setAside = 0
    var replicaSnapshots = 0
    var replicaRestores = 0
    /// The store's backup: a copy of the SQLite files, or a PostgreSQL database made from it.
    var storeBackup: URL?
    /// The value of ``storeBackups`` once ``storeBackup`` was taken: it holds the writes synced
    /// while ``storeBackups`` was lower.
    var storeBackupGeneration = 0
    /// Writes whose only sure copy is the server's: a replica process's acknowledged writes that
    /// a completed sync round followed, before a power cut under `normal` may have taken them
    /// from the replica's file. Each with the value of ``storeBackups`` when it was synced: a
    /// store restored from a backup taken before that loses it, and so may the world.
    var serverOnly: [(key: String, amount: Int64, tag: String, generation: Int)] = []
    var replicaBackups: Set<Int> = []
    /// What a run restores from older copies: nothing, the central store, or replica files (one
    /// kind a run: with both, a write acknowledged after the store's backup and held only by a
    /// replica whose file is then restored too is gone everywhere, which no system can help).
    enum Restores: String { case none, store, replicaFiles = "replica files", both }
    var restores = Restores.none
    var syncFailures: [String: Int] = [:]

    init(kind: FaultInjectionTests.StoreKind, seed: UInt64, steps: Int) {
        self.kind = kind
        self.seed = seed
        self.steps = steps
        random = SeededRandom(seed: seed)
    }

    var replay: String {
        "WEFT_FAULT_SEED=\(seed) WEFT_FAULT_STEPS=\(steps) bash scripts/with-postgres.sh swift test --filter "
            + (kind == .sqlite ? "FaultInjectionTests/onTheSQLiteStore" : "FaultInjectionTests/onPostgreSQLWithTwoServers")
    }

    func roll(_ range: Int) -> Int { Int(random.next() % UInt64(range)) }

    // MARK: Servers

    func config(port: Int) -> String {
        let store = storeURL.map { "store_url = \"\($0.absoluteString)\"" } ?? "store_path = \"\(directory.path("central.sqlite"))\""
        return """
            [persistence]
            conflict_resolution = "crdt"

            [persistence.collections.notes]
            conflict_resolution = "lww"

            [persistence.collections.stock]
            conflict_resolution = "custom"
            resolver = "keepMore"

            [server]
            listen = "127.0.0.1:\(port)"
            \(store)

            [[server.tokens]]
            token = "\(Self.token)"
            databases = ["\(Self.database)"]
            access = "read_write"
            """
    }

    func startServer(_ index: Int) async throws {
        let path = directory.path("server\(index).toml")
        try config(port: ports[index]).write(toFile: path, atomically: true, encoding: .utf8)
        let server = try OfflineTests.ServerProcess(config: path, port: ports[index])
        try await server.waitUntilServing()
        servers[index] = server
    }

    func killServer(_ index: Int) async throws {
        guard let server = servers[index] else { return }
        kill(server.process.processIdentifier, SIGKILL)
        try await TestPostgres.exit(of: server.process)
        servers[index] = nil
        serverKills += 1
    }

    // MARK: Replicas

    /// Replica 0 writes behind everywhere; replicas 1 and 2 write "orders" through, falling back
    /// to the queue and to a rollback.
    func configuration(_ index: Int) -> ReplicaConfiguration {
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        configuration.collectionPolicies = ["notes": .lastWriterWins, "stock": .custom(resolver: "keepMore")]
        if index > 0 {
            configuration.collectionModes = ["orders": .writeThrough]
            configuration.writeThroughFallback = index == 1 ? .keepQueued : .rollBack
            configuration.writeThroughTimeoutMilliseconds = 2_000
        }
        return configuration
    }

    func openNode(_ index: Int) async throws -> Node {
        // The servers lack the custom resolver (`weft serve` cannot link it): they keep
        // siblings, and these replicas resolve them.
        var resolvers = ResolverRegistry()
        resolvers.register("keepMore", RandomizedSyncTests.KeepMore())
        let replica = try await Replica.open(
            path: directory.path("replica\(index).sqlite"), configuration: configuration(index), resolvers: resolvers, boot: boot(index))
        let http = HTTPTransport(baseURL: proxy.baseURL, database: Self.database, token: Self.token, timeout: .seconds(60), client: client)
        let transport = ReplayingTransport(http, seed: seed &+ UInt64(index) &* 7_919 &+ UInt64(replicaRestarts) &* 104_729)
        let engine = SyncEngine(replica: replica, transport: transport)
        await engine.setBatchLimits(entries: 1 + roll(20), bytes: 1 << 20)
        return Node(replica: replica, engine: engine, transport: transport)
    }

    // MARK: The run

    /// Runs the seed; the HTTP client is shut down however it ends (AsyncHTTPClient requires it).
    func run() async throws {
        do {
            try await runSteps()
        } catch {
            try? await client.shutdown()
            Issue.record("the run stopped: \(error) (replay: \(replay))")
            throw error
        }
        try await client.shutdown()
    }

    func runSteps() async throws {
        if kind == .postgres {
            storeURL = try await TestPostgres.freshDatabase()
            ports = [try OfflineTests.freePort(), try OfflineTests.freePort()]
        } else {
            ports = [try OfflineTests.freePort()]
        }
        restores = [Restores.none, .store, .replicaFiles][roll(3)]
        // WEFT_FAULT_RESTORES=both mixes the two (the model then cannot tell lost from kept).
        if ProcessInfo.processInfo.environment["WEFT_FAULT_RESTORES"] == "both" { restores = .both }
        servers = Array(repeating: nil, count: ports.count)
        for index in ports.indices { try await startServer(index) }
        proxy = try FaultProxy(upstreams: ports, seed: seed ^ 0x5EED, faultRate: 0.1)
        defer {
            proxy.stop()
            for server in servers { server?.stop() }
        }
        for index in 0..<3 { slots.append(try await openNode(index)) }

        for _ in 0..<steps {
            let dice = roll(100)
            switch dice {
            case 0..<50: try await write(node: roll(3))
            case 50..<78: await sync(node: roll(3))
            case 78..<84:
                proxy.setPartitioned(roll(3) == 0)
                partitions += 1
            case 84..<88:
                let index = roll(ports.count)
                try await killServer(index)
                if roll(3) > 0 || servers.allSatisfy({ $0 == nil }) { try await startServer(index) }
            case 88..<91:
                let index = roll(3)
                if roll(3) == 0 {
                    try await killReplicaProcess(index)
                } else {
                    slots[index] = try await openNode(index)
                    replicaRestarts += 1
                }
            case 91..<93:
                if restores == .replicaFiles || (restores == .both && roll(2) == 0) { try await replicaSnapshot(roll(3)) } else if restores != .none { try await backUpStore() }
            case 93..<95:
                if restores == .replicaFiles || (restores == .both && roll(2) == 0) { try await replicaRestore(roll(3)) } else if restores != .none { try await restoreStore() }
            default:
                proxy.setFaultRate(Double(roll(30)) / 100)
            }
            // A server left down comes back within a few steps.
            if roll(4) == 0 { for index in servers.indices where servers[index] == nil { try await startServer(index) } }
        }

        // Heal, then sync until nothing moves.
        proxy.setPartitioned(false)
        proxy.setFaultRate(0)
        for index in servers.indices where servers[index] == nil { try await startServer(index) }
        try await converge()
        try await check()
    }

    func write(node index: Int) async throws {
        let node = nodes[index]
        unique += 1
        let tag = "v\(unique)"
        let amount = Int64(1 + roll(9))
        do {
            switch roll(6) {
            case 0, 1:
                let id = "s\(roll(6))"
                let key = "sensors/\(id)"
                try await node.replica.collection("sensors").upsert(id) { editor in
                    editor.increment("n", by: amount)
                    editor.set("last", to: .string(tag))
                    editor.insert(.string(tag), intoSet: "tags")
                    editor.updateMap("stats") { document, stamp in _ = document.increment("m", by: amount, at: stamp) }
                }
                counters[key, default: 0] += amount
                nested[key, default: 0] += amount
                elements[key, default: []].insert(tag)
                registers[key, default: []].insert(tag)
                let entryKey = DocumentKey(collection: try CollectionName("sensors"), id: try DocumentID(id))
                if let sequence = try await node.replica.queuedChanges().first(where: { $0.key == entryKey })?.sequence {
                    unconfirmed[index, default: []].append((key, amount, true, tag, sequence))
                }
            case 2:
                let id = "o\(roll(4))"
                let key = "orders/\(id)"
                let existed = try await node.replica.collection("orders").get(id) != nil
                do {
                    let receipt = try await node.engine.collection("orders").upsert(id) { $0.increment("n", by: amount) }
                    counters[key, default: 0] += amount
                    history[key, default: []].append("r\(index) +\(amount) seq \(receipt.sequence) \(receipt.confirmed ? "confirmed" : "queued")")
                    if !receipt.confirmed { unconfirmed[index, default: []].append((key, amount, false, nil, receipt.sequence)) }
                } catch where error.kind == .writeNotConfirmed {
                    maybe[key, default: 0] += amount
                    counters[key, default: 0] += 0
                    if !existed { resettable.insert(key) }
                    history[key, default: []].append("r\(index) +\(amount) not confirmed: \(error)")
                }
            case 3:
                let id = "n\(roll(4))"
                try await node.replica.collection("notes").upsert(id) { $0.set("v", to: .string(tag)) }
                registers["notes/\(id)", default: []].insert(tag)
            case 4:
                let id = "k\(roll(2))"
                let quantity = Int64(roll(100))
                try await node.replica.collection("stock").upsert(id) { $0.set("qty", to: .int(quantity)) }
                quantities["stock/\(id)", default: []].insert(quantity)
            default:
                let id = "c\(roll(4))"
                let churn = try node.replica.collection("churn")
                if try await churn.get(id) != nil {
                    try await churn.delete(id)
                } else {
                    try await churn.upsert(id) { $0.set("generation", to: .string(tag)) }
                }
            }
            writes += 1
        } catch {
            Issue.record("a local write failed: \(error) (replay: \(replay))")
            throw error
        }
    }

    func sync(node index: Int) async {
        do {
            _ = try await slots[index]?.engine.syncOnce()
        } catch {
            syncFailures[error.kind.rawValue, default: 0] += 1
        }
    }

    /// Syncs every replica until every queue is empty and a whole round pulls nothing.
    func converge() async throws {
        var quietRounds = 0
        for _ in 0..<60 {
            var moved = false
            var failed = false
            for node in nodes {
                do {
                    let report = try await node.engine.syncOnce()
                    if report.pushed > 0 || report.pulled > 0 { moved = true }
                } catch {
                    failed = true
                }
            }
            var queued = 0
            for node in nodes { queued += try await node.replica.queuedChanges().count }
            if !moved && !failed && queued == 0 {
                quietRounds += 1
                if quietRounds == 2 { return }
            } else {
                quietRounds = 0
            }
        }
        Issue.record("the replicas did not converge after healing (replay: \(replay))")
    }
}
