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

/// Issue #14: a seeded fault-injection suite. Three replicas on SQLite files sync through a
/// fault-injecting proxy (``FaultProxy``) with real `weft serve` processes: one on a SQLite
/// store, or two sharing a PostgreSQL database. Along a seeded run of writes and syncs:
///
/// - network faults: requests cut part-way (the server never sees them whole), answers cut
///   part-way (the server committed, the client does not know), partitions (connections
///   refused), pushes sent twice and old pushes replayed late (``ReplayingTransport``);
/// - process faults: a server killed with SIGKILL and restarted, a replica closed and reopened
///   from its file (a replica's own SIGKILL is ``SyncCrashTests``' subject);
/// - a mixed workload: counters, last-writer-wins registers, sets, nested documents, deletes and
///   re-creations, a last-writer-wins collection, and write-through writes with both fallbacks.
///
/// Then the network heals, everything syncs, and the invariants are checked: every queue and
/// dead-letter table is empty; every replica's records equal the server's; every counter is the
/// sum of its increments (write-through rollbacks may or may not count: their push can escape
/// before the undo); every inserted set element is there; every register holds a value
/// written to it. A failing run prints the command that replays it.
///
/// Each run also restores from older copies, by its seed: nothing, the central store (a backup
/// taken with the servers stopped: the replicas must notice and push back what it lost), or
/// replica files (a phone restored from a backup: its writes the server had not acknowledged
/// are gone with the newer file, and may or may not count).
///
/// `WEFT_FAULT_SEED` replays one seed; `WEFT_FAULT_SEEDS=N` runs N random seeds per store
/// instead of the fixed ones; `WEFT_FAULT_STEPS` sets the steps a run (default 250);
/// `WEFT_FAULT_RESTORES=both` restores the store and replica files in the same run.
@Suite("Fault injection (seeded)", .serialized)
struct FaultInjectionTests {
    enum StoreKind: String, CaseIterable, Sendable, CustomStringConvertible {
        case sqlite, postgres
        var description: String { rawValue }
    }

    /// The seeds CI runs: on each store, runs that restore nothing, the store, and replica files.
    static let fixedSeeds: [StoreKind: [UInt64]] = [.sqlite: [1, 3, 4], .postgres: [11, 10, 14]]

    static func seeds(for kind: StoreKind) -> [UInt64] {
        let environment = ProcessInfo.processInfo.environment
        if let text = environment["WEFT_FAULT_SEED"], let seed = UInt64(text) { return [seed] }
        if let text = environment["WEFT_FAULT_SEEDS"], let count = Int(text) {
            var system = SystemRandomNumberGenerator()
            return (0..<count).map { _ in system.next() }
        }
        return fixedSeeds[kind] ?? []
    }

    static var steps: Int { ProcessInfo.processInfo.environment["WEFT_FAULT_STEPS"].flatMap(Int.init) ?? 250 }

    @Test func onTheSQLiteStore() async throws {
        for seed in Self.seeds(for: .sqlite) { try await FaultRun(kind: .sqlite, seed: seed, steps: Self.steps).run() }
    }

    @Test(.enabled(if: !TestPostgres.skipped)) func onPostgreSQLWithTwoServers() async throws {
        for seed in Self.seeds(for: .postgres) { try await FaultRun(kind: .postgres, seed: seed, steps: Self.steps).run() }
    }
}

/// A transport that sometimes sends a push twice, and sometimes sends an old push again (late):
/// real frames through the same proxy, to a server that must apply each change once.
final class ReplayingTransport: SyncTransport {
    let inner: HTTPTransport
    let state: Mutex<(random: SeededRandom, old: [PushRequest], duplicates: Int, replays: Int)>

    init(_ inner: HTTPTransport, seed: UInt64) {
        self.inner = inner
        state = Mutex((SeededRandom(seed: seed), [], 0, 0))
    }

    func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await inner.hello(request) }

    func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
        let (duplicate, late) = state.withLock { state -> (Bool, PushRequest?) in
            let roll = state.random.next() % 100
            if state.old.count >= 8 { state.old.removeFirst() }
            let late = roll >= 80 && !state.old.isEmpty ? state.old[Int(state.random.next() % UInt64(state.old.count))] : nil
            state.old.append(request)
            if roll < 20 { state.duplicates += 1 }
            if late != nil { state.replays += 1 }
            return (roll < 20, late)
        }
        if let late { _ = try? await inner.push(late) }
        let answer = try await inner.push(request)
        return duplicate ? try await inner.push(request) : answer
    }

    func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse { try await inner.pull(request) }

    var counts: (duplicates: Int, replays: Int) { state.withLock { ($0.duplicates, $0.replays) } }
}

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
    var partitions = 0
    var storeBackups = 0
    var storeRestores = 0
    var replicaSnapshots = 0
    var replicaRestores = 0
    /// The store's backup: a copy of the SQLite files, or a PostgreSQL database made from it.
    var storeBackup: URL?
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
        configuration.collectionPolicies = ["notes": .lastWriterWins]
        if index > 0 {
            configuration.collectionModes = ["orders": .writeThrough]
            configuration.writeThroughFallback = index == 1 ? .keepQueued : .rollBack
            configuration.writeThroughTimeoutMilliseconds = 2_000
        }
        return configuration
    }

    func openNode(_ index: Int) async throws -> Node {
        let replica = try await Replica.open(path: directory.path("replica\(index).sqlite"), configuration: configuration(index))
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
                slots[index] = try await openNode(index)
                replicaRestarts += 1
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

    // MARK: Backups and restores

    /// The files of a SQLite database.
    static let suffixes = ["", "-wal", "-shm"]

    static func copyFiles(_ from: String, _ to: String) throws {
        for suffix in suffixes {
            try? FileManager.default.removeItem(atPath: to + suffix)
            if FileManager.default.fileExists(atPath: from + suffix) { try FileManager.default.copyItem(atPath: from + suffix, toPath: to + suffix) }
        }
    }

    func stopServers() {
        for server in servers { server?.stop() }
        servers = servers.map { _ in nil }
    }

    /// An operator's backup of the central store, taken with the servers stopped.
    func backUpStore() async throws {
        stopServers()
        if let storeURL {
            storeBackup = try await TestPostgres.freshDatabase(options: "TEMPLATE \(storeURL.lastPathComponent)")
        } else {
            try Self.copyFiles(directory.path("central.sqlite"), directory.path("central-backup.sqlite"))
            storeBackup = URL(fileURLWithPath: directory.path("central-backup.sqlite"))
        }
        storeBackups += 1
        for index in servers.indices { try await startServer(index) }
    }

    /// The central store restored from the backup: what was written since is gone from it, and
    /// the replicas must notice and push it back.
    func restoreStore() async throws {
        guard let backup = storeBackup else { return }
        stopServers()
        if storeURL != nil {
            storeURL = try await TestPostgres.freshDatabase(options: "TEMPLATE \(backup.lastPathComponent)")
        } else {
            try Self.copyFiles(backup.path, directory.path("central.sqlite"))
        }
        storeRestores += 1
        for index in servers.indices { try await startServer(index) }
    }

    /// Closes replica `index` (waiting until nothing holds it, so its connection is closed), runs
    /// `body` on its files, and opens it again.
    func withReplicaClosed(_ index: Int, _ body: () throws -> Void) async throws {
        weak var probe = slots[index]?.replica
        slots[index] = nil
        for _ in 0..<3_000 where probe != nil { try await Task.sleep(for: .milliseconds(20)) }
        if probe != nil { throw OfflineTests.TestFailure("replica \(index) is still held (replay: \(replay))") }
        try body()
        slots[index] = try await openNode(index)
    }

    /// A copy of replica `index`'s file, taken while it is closed.
    func replicaSnapshot(_ index: Int) async throws {
        let path = directory.path("replica\(index).sqlite")
        try await withReplicaClosed(index) { try Self.copyFiles(path, directory.path("replica\(index)-copy.sqlite")) }
        replicaBackups.insert(index)
        replicaSnapshots += 1
    }

    /// Replica `index`'s file replaced by its older copy (a phone restored from a backup): its
    /// writes the server had not acknowledged are gone with the newer file.
    func replicaRestore(_ index: Int) async throws {
        guard replicaBackups.contains(index), slots[index] != nil else { return }
        for write in unconfirmed[index] ?? [] where try await slots[index]?.replica.isAcknowledged(sequence: write.sequence) == false {
            counters[write.key, default: 0] -= write.amount
            maybe[write.key, default: 0] += write.amount
            if write.nested {
                nested[write.key, default: 0] -= write.amount
                nestedMaybe[write.key, default: 0] += write.amount
            }
            if let tag = write.tag { elements[write.key]?.remove(tag) }
            history[write.key, default: []].append("r\(index) +\(write.amount) seq \(write.sequence) lost with the file's restore")
        }
        unconfirmed[index] = []
        let path = directory.path("replica\(index).sqlite")
        try await withReplicaClosed(index) { try Self.copyFiles(directory.path("replica\(index)-copy.sqlite"), path) }
        replicaRestores += 1
    }

    func write(node index: Int) async throws {
        let node = nodes[index]
        unique += 1
        let tag = "v\(unique)"
        let amount = Int64(1 + roll(9))
        do {
            switch roll(5) {
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

    /// The server's store, opened directly (the servers are stopped first).
    func openStore() async throws -> any CentralStore {
        for server in servers { server?.stop() }
        servers = servers.map { _ in nil }
        if let storeURL { return try await PostgresCentralStore(url: storeURL) }
        return try SQLiteCentralStore(path: directory.path("central.sqlite"))
    }

    func check() async throws {
        let store = try await openStore()
        defer { if let postgres = store as? PostgresCentralStore { Task { await postgres.shutdown() } } }
        let context = "seed \(seed) on \(kind) (replay: \(replay))"
        var keys = Set<DocumentKey>()
        for node in nodes {
            #expect(try await node.replica.queuedChanges().isEmpty, "a queue is not empty, \(context)")
            #expect(try await node.replica.deadLetters().isEmpty, "a dead letter, \(context)")
            for collection in ["sensors", "orders", "notes", "churn"] {
                for (id, _) in try await node.replica.collection(collection).list(where: DocumentFilter(includeDeleted: true)) {
                    keys.insert(DocumentKey(collection: try CollectionName(collection), id: id))
                }
            }
        }
        for key in keys.sorted(by: { "\($0)" < "\($1)" }) {
            let server = try await store.record(database: Self.database, key: key)
            #expect(server != nil, "\(key) is missing on the server, \(context)")
            for (index, node) in nodes.enumerated() {
                // (Compared here, not in #expect, so a failure prints a line, not two records.)
                let local = try await node.replica.record(key)
                if local != server {
                    let cursor = try await node.replica.pullCursor()
                    let last = try await store.changes(database: Self.database, after: 0, limit: 100_000, maxBytes: 1 << 30).changes.last?.sequence ?? 0
                    Issue.record(
                        "replica \(index) differs from the server on \(key) (its cursor \(cursor), the log's last change \(last); local n \(local?.body.counter("n") ?? -1) deleted \(local?.isDeleted ?? false) version \(local.map { "\($0.version)" } ?? "-"), server n \(server?.body.counter("n") ?? -1) deleted \(server?.isDeleted ?? false) version \(server.map { "\($0.version)" } ?? "-")), \(context)")
                }
            }
            guard let body = server?.body else { continue }
            let name = "\(key.collection.rawValue)/\(key.id.rawValue)"
            if let expected = counters[name] {
                let total = body.counter("n") ?? 0
                let slack = maybe[name] ?? 0
                #expect(
                    (total >= expected || resettable.contains(name)) && total <= expected + slack,
                    "\(name): counter \(total), expected \(expected) (+ up to \(slack) rolled back), \(context); writes: \((history[name] ?? []).joined(separator: "; "))")
            }
            if let expected = nested[name] {
                guard case .map(let stats)? = body["stats"] else {
                    Issue.record("\(name) lost its nested document, \(context)")
                    continue
                }
                let value = stats.counter("m") ?? 0
                let slack = nestedMaybe[name] ?? 0
                #expect(value >= expected && value <= expected + slack, "\(name): nested counter \(value), expected \(expected) (+ up to \(slack)), \(context)")
            }
            if let expected = elements[name] {
                let present = Set((body.set("tags") ?? []).compactMap { if case .string(let text) = $0 { text } else { nil } })
                #expect(expected.isSubset(of: present), "\(name): set elements lost: \(expected.subtracting(present).sorted()), \(context)")
            }
            if let written = registers[name] {
                let field = key.collection.rawValue == "notes" ? "v" : "last"
                #expect(body.string(field).map(written.contains) == true, "\(name): register holds \(body.string(field) ?? "nothing"), \(context)")
            }
        }
        for name in counters.keys {
            let parts = name.split(separator: "/").map(String.init)
            #expect(keys.contains(DocumentKey(collection: try CollectionName(parts[0]), id: try DocumentID(parts[1]))), "\(name) is on no replica, \(context)")
        }
        let duplicates = nodes.map { $0.transport.counts.duplicates }.reduce(0, +)
        let replays = nodes.map { $0.transport.counts.replays }.reduce(0, +)
        print(
            "FaultInjection: seed \(seed) on \(kind), restoring \(restores.rawValue): \(steps) steps, \(writes) writes, \(serverKills) server kills, \(replicaRestarts) replica restarts, "
                + "\(partitions) partition toggles, \(storeBackups) store backups and \(storeRestores) restores, \(replicaSnapshots) replica copies and \(replicaRestores) restores, network \(proxy.counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")), "
                + "\(duplicates) duplicated and \(replays) late pushes, sync failures \(syncFailures.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")); replay: \(replay)")
    }
}
