import Foundation
import Logging
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftPostgres
import WeftServer
import WeftSQLite
import WeftWire

/// The PostgreSQL central store: several server instances on one database, the `postgres://`
/// endpoint as written, a differential run against SQLite, and restarts.
@Suite("PostgreSQL", .enabled(if: !TestPostgres.skipped, "WEFT_SKIP_POSTGRES=1 leaves PostgreSQL out"))
struct PostgresTests {
    static func crdt() -> ReplicaConfiguration {
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        return configuration
    }

    /// A Standalone server over HTTP on its own PostgreSQL connection pool.
    static func instance(_ url: URL) async throws -> (RunningStandalone, PostgresCentralStore) {
        let store = try await PostgresCentralStore(url: url)
        var configuration = ServerConfiguration()
        configuration.port = 0
        configuration.tokens = [ServerToken(token: RunningServer.writeToken, databases: ["mydb"], access: .readWrite)]
        var quiet = Logger(label: "weft.test.postgres")
        quiet.logLevel = .critical
        let running = try await RunningStandalone.start(
            service: SyncService(store: store, policies: ServerPolicies(defaultPolicy: .crdt)), configuration: configuration, logger: quiet)
        return (running, store)
    }

    @Test("Two server instances on one database, 20 replicas on overlapping documents: a serial merge, and a puller sees every change once")
    func twoInstancesTwentyReplicas() async throws {
        let url = try await TestPostgres.freshDatabase()
        let instances = [try await Self.instance(url), try await Self.instance(url)]
        var replicas = [(Replica, SyncEngine)]()
        for index in 0..<20 {
            let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.crdt())
            let port = instances[index % 2].0.port
            let transport = HTTPTransport(
                baseURL: "http://127.0.0.1:\(port)", database: "mydb", token: RunningServer.writeToken, timeout: .seconds(30))
            let engine = SyncEngine(replica: replica, transport: transport)
            await engine.setBatchLimits(entries: 7, bytes: 1 << 20)
            replicas.append((replica, engine))
        }
        // A replica that pulls throughout, through the first instance, in small pages.
        let puller = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.crdt())
        let pullTransport = HTTPTransport(
            baseURL: "http://127.0.0.1:\(instances[0].0.port)", database: "mydb", token: RunningServer.writeToken, timeout: .seconds(30))
        let pullEngine = SyncEngine(replica: puller, transport: pullTransport)
        let seen = Shared([UInt64]())
        let pushingDone = Shared(false)
        let pulling = Task {
            var cursor: UInt64 = 0
            let deadline = ContinuousClock.now + .seconds(180)
            while true {
                guard ContinuousClock.now < deadline else { throw TestPostgres.TestFailure("the puller gave up after 180 s") }
                try Task.checkCancellation()
                let finished = pushingDone.withLock { $0 }
                let page = try await pullTransport.pull(PullRequest(after: cursor, maximumChanges: 5))
                seen.withLock { $0.append(contentsOf: page.changes.map(\.sequence)) }
                cursor = page.cursor
                if page.changes.isEmpty && finished { return cursor }
                if page.changes.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            }
        }
        // Stops pulling if a push fails and the test ends early.
        defer { pulling.cancel() }

        // Every replica increments counters on 12 shared documents and sets a field, in rounds,
        // pushing after each round; half go through each instance.
        let rounds = 5
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, (replica, engine)) in replicas.enumerated() {
                group.addTask {
                    for round in 0..<rounds {
                        try await replica.batch { batch in
                            for document in 0..<12 where (document + index + round) % 3 != 0 {
                                try batch.upsert("shared", "doc-\(document)") { editor in
                                    editor.increment("hits", by: 1)
                                    editor.insert(.int(Int64(index)), intoSet: "writers")
                                }
                            }
                        }
                        _ = try await engine.pushAll()
                    }
                }
            }
            try await group.waitForAll()
        }
        pushingDone.withLock { $0 = true }
        let lastCursor = try await pulling.value

        // The pulled sequence numbers increase, and the puller ends at the log's last entry: the
        // log is compacted (one entry per document), so numbers of superseded entries are gone,
        // but none the puller had not passed.
        let sequences = seen.withLock { $0 }
        #expect(sequences == sequences.sorted() && Set(sequences).count == sequences.count, "the puller repeated a change")
        let log = try await instances[0].0.service.store.changes(database: "mydb", after: 0, limit: 10_000, maxBytes: 1 << 30).changes
        #expect(log.count == 12 && lastCursor == log.last?.sequence, "one entry per document, and the puller reached the last")

        // The final state is the serial merge of all writes: every increment counted once, and
        // equal to joining every replica's own record.
        var expectedHits = [String: Int64]()
        for index in 0..<20 {
            for round in 0..<rounds {
                for document in 0..<12 where (document + index + round) % 3 != 0 { expectedHits["doc-\(document)", default: 0] += 1 }
            }
        }
        for document in 0..<12 {
            let key = DocumentKey(collection: try CollectionName("shared"), id: try DocumentID("doc-\(document)"))
            var joined: DocumentRecord?
            for (replica, _) in replicas {
                guard let record = try await replica.record(key) else { continue }
                joined = joined.map { $0.merged(with: record) } ?? record
            }
            let central = try #require(try await instances[1].1.record(database: "mydb", key: key))
            #expect(central.body.counter("hits") == expectedHits["doc-\(document)"])
            #expect(central == joined, "doc-\(document) differs from the join of every replica's writes")
        }
        // And the puller, applying what it saw, holds the same.
        try await pullEngine.syncOnce()
        for document in 0..<12 {
            let key = DocumentKey(collection: try CollectionName("shared"), id: try DocumentID("doc-\(document)"))
            #expect(try await puller.record(key) == (try await instances[0].1.record(database: "mydb", key: key)))
        }
        for (running, store) in instances {
            await running.stop()
            await store.shutdown()
        }
    }

    @Test("The same seeded workload through SQLite and PostgreSQL gives identical states and logs")
    func differentialAgainstSQLite() async throws {
        let directory = TemporaryDirectory()
        let sqlite = try SQLiteCentralStore(path: directory.path("central.sqlite"))
        let postgres = try await PostgresCentralStore(url: try await TestPostgres.freshDatabase())
        let stores: [any CentralStore] = [sqlite, postgres]
        var random = SplitMix64(seed: 20_261_126)
        let replicaIDs = (1...4).map { ReplicaID(high: 0, low: UInt64($0)) }
        var states = [[DocumentKey: DocumentRecord]](repeating: [:], count: replicaIDs.count)
        var pushes = [(ReplicaID, [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)])]()
        var wall: UInt64 = 1_000
        for batch in 0..<60 {
            let who = Int.random(in: 0..<replicaIDs.count, using: &random)
            var changes = [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)]()
            for item in 0..<Int.random(in: 1...6, using: &random) {
                let key = DocumentKey(
                    collection: try CollectionName(["a", "b"][Int.random(in: 0...1, using: &random)]),
                    id: try DocumentID("d\(Int.random(in: 0..<15, using: &random))"))
                wall += UInt64.random(in: 0...3, using: &random)
                let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replicaIDs[who])
                var record = states[who][key] ?? DocumentRecord(body: Document(), deletion: LWWRegister(false, stamp: stamp), version: VersionVector())
                var body = record.body
                body.set("v", to: .int(Int64.random(in: 0...9, using: &random)), at: stamp)
                body.increment("n", by: 1, at: stamp)
                var version = record.version
                version.increment(replicaIDs[who])
                record = DocumentRecord(body: body, deletion: record.deletion.merged(with: LWWRegister(false, stamp: stamp)), version: version)
                states[who][key] = record
                changes.append((UInt64(batch * 10 + item + 1), key, record))
            }
            pushes.append((replicaIDs[who], changes))
        }
        for policy in [ConflictPolicy.crdt, .lastWriterWins] {
            let tenant = policy == .crdt ? "crdt" : "lww"
            for (replica, changes) in pushes {
                for store in stores {
                    _ = try await store.applyPush(database: tenant, replica: replica, changes: changes) { local, key, remote throws(WeftError) in
                        try DocumentMerge.merge(local: local, remote: remote, key: key, policy: policy)
                    }
                }
            }
            let logs = try await stores.asyncMap { try await $0.changes(database: tenant, after: 0, limit: 10_000, maxBytes: 1 << 30).changes }
            #expect(logs[0].map(\.key) == logs[1].map(\.key) && logs[0].map(\.record) == logs[1].map(\.record), "\(tenant): the logs differ")
            // Both logs are compacted, one entry per document, in increasing order (PostgreSQL
            // numbers each tenant on its own, SQLite shares one sequence among its tenants).
            for log in logs {
                #expect(zip(log, log.dropFirst()).allSatisfy { $1.sequence > $0.sequence })
                #expect(Set(log.map(\.key)).count == log.count)
            }
            for collection in ["a", "b"] {
                for id in 0..<15 {
                    let key = DocumentKey(collection: try CollectionName(collection), id: try DocumentID("d\(id)"))
                    let records = try await stores.asyncMap { try await $0.record(database: tenant, key: key) }
                    #expect(records[0] == records[1], "\(tenant) \(key) differs")
                }
            }
            let conflicts = try await stores.asyncMap { try await $0.conflicts(database: tenant, limit: 10_000) }
            #expect(conflicts[0] == conflicts[1] && !conflicts[0].isEmpty)
        }
        await postgres.shutdown()
    }

    @Test("A replica syncs straight into PostgreSQL through a postgres:// endpoint, with an offline period")
    func directEndpointWithAnOfflinePeriod() async throws {
        let server = try PrivatePostgres()
        defer { server.remove() }
        let configuration = Self.crdt()
        let endpointURL = try #require(URL(string: server.url.absoluteString + "?tenant=fieldapp"))
        // As written in a configuration file.
        let text = "[persistence]\nremote_endpoint = \"\(endpointURL.absoluteString)\"\nconflict_resolution = \"crdt\"\n"
        guard case .postgres(let parsed)? = try WeftConfiguration.parse(text).persistence.remoteEndpoint else {
            Issue.record("the endpoint did not parse as postgres")
            return
        }
        let a = try await Replica(storage: MemoryReplicaStorage(), configuration: configuration)
        let b = try await Replica(storage: MemoryReplicaStorage(), configuration: configuration)
        let directA = try await PostgresEndpoint.connect(parsed, configuration: configuration, operationTimeout: .seconds(5))
        let directB = try await PostgresEndpoint.connect(parsed, configuration: configuration, operationTimeout: .seconds(5))
        #expect(directA.tenant == "fieldapp")
        let engineA = SyncEngine(replica: a, transport: directA.transport)
        let engineB = SyncEngine(replica: b, transport: directB.transport)
        try await a.collection("jobs").create("j1") { $0.increment("visits", by: 1) }
        try await engineA.syncOnce()
        try await engineB.syncOnce()
        #expect(try await b.collection("jobs").get("j1")?.counter("visits") == 1)

        // PostgreSQL goes away; both replicas keep writing.
        try server.stop()
        for _ in 0..<20 {
            try await a.collection("jobs").update("j1") { $0.increment("visits", by: 1) }
            try await b.collection("jobs").update("j1") { $0.increment("visits", by: 2) }
        }
        do {
            try await engineA.syncOnce()
            Issue.record("a sync with PostgreSQL down succeeded")
        } catch {
            #expect(error.kind == .unavailable, "\(error)")
        }
        #expect(try await a.queuedChanges().count == 1, "the queue is kept")

        // It comes back: the connection pools reconnect and everything converges.
        try server.start()
        var converged = false
        for _ in 0..<50 where !converged {
            do {
                try await engineA.syncOnce()
                try await engineB.syncOnce()
                try await engineA.syncOnce()
                converged = true
            } catch {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
        #expect(converged)
        #expect(try await a.collection("jobs").get("j1")?.counter("visits") == 61)
        #expect(try await b.collection("jobs").get("j1")?.counter("visits") == 61)
        await directA.store.shutdown()
        await directB.store.shutdown()
    }

    @Test("PostgreSQL restarted during pushes: clients retry and nothing acknowledged is lost")
    func restartDuringPushes() async throws {
        let server = try PrivatePostgres()
        defer { server.remove() }
        let store = try await PostgresCentralStore(url: server.url, operationTimeout: .seconds(5))
        let service = SyncService(store: store, policies: ServerPolicies(defaultPolicy: .crdt))
        let writers = 4
        let acknowledged = Shared([String: Int64]())
        let stop = Shared(false)
        let tasks = (0..<writers).map { index in
            Task {
                let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.crdt())
                let engine = SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db"))
                var written: Int64 = 0
                while !stop.withLock({ $0 }) {
                    try await replica.collection("c").upsert("w\(index)") { $0.increment("n", by: 1) }
                    written += 1
                    do {
                        _ = try await engine.pushAll()
                        // Everything written so far is acknowledged by the server.
                        acknowledged.withLock { $0["w\(index)"] = written }
                    } catch {
                        try await Task.sleep(for: .milliseconds(20))  // retry on the next turn
                    }
                }
                // Drain what is left once the server is back.
                for _ in 0..<100 {
                    if (try? await engine.pushAll()) != nil, try await replica.queuedChanges().isEmpty { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                acknowledged.withLock { $0["w\(index)"] = written }
                return written
            }
        }
        try await Task.sleep(for: .milliseconds(400))
        try server.stop()
        try await Task.sleep(for: .milliseconds(300))
        try server.start()
        try await Task.sleep(for: .milliseconds(400))
        stop.withLock { $0 = true }
        var totals = [Int64]()
        for task in tasks { totals.append(try await task.value) }
        for index in 0..<writers {
            let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID("w\(index)"))
            let count = try await store.record(database: "db", key: key)?.body.counter("n")
            #expect(count == totals[index], "writer \(index): the server counts \(String(describing: count)), the writer wrote \(totals[index])")
        }
        #expect(totals.allSatisfy { $0 > 0 })
        await store.shutdown()
    }

    @Test("A push never waits for a busy sequencer; the next pull numbers what it left, without gaps")
    func pushesDoNotQueueOnTheSequencer() async throws {
        let url = try await TestPostgres.freshDatabase()
        // A push that waited for the lock would wait until this deadline (the holder never lets
        // go on its own), so it could not return within the bound below.
        let store = try await PostgresCentralStore(url: url, operationTimeout: .seconds(60))
        func query(_ sql: String) throws -> String { try TestPostgres.query(url, sql) }
        let replica = ReplicaID(high: 7, low: 7)
        func push(_ first: Int) async throws {
            _ = try await store.applyPush(
                database: "t", replica: replica, changes: try TestPostgres.newDocuments(first..<(first + 5), replica: replica)
            ) { local, key, remote throws(WeftError) in
                try DocumentMerge.merge(local: local, remote: remote, key: key, policy: .crdt)
            }
        }
        try await push(0)
        #expect(try query("SELECT count(*) FROM weft_pending") == "0", "an idle sequencer numbers at once")
        // Another session holds the tenant's sequencer lock until the test ends that session.
        let holder = try await SequencerLockHolder(url: url, tenant: "t")
        // The push returns while the lock is still held (one that waited for it could not), and
        // leaves its rows to the busy sequencer.
        let clock = ContinuousClock()
        let started = clock.now
        try await push(5)
        #expect(clock.now - started < .seconds(50), "the push waited for the sequencer lock")
        #expect(try holder.isHolding, "the lock was let go before the push returned")
        #expect(try query("SELECT count(*) FROM weft_pending") == "5", "the busy sequencer was left alone")
        try await holder.release()
        let log = try await store.changes(database: "t", after: 0, limit: 100, maxBytes: 1 << 20).changes
        #expect(log.map(\.sequence) == Array(1...10), "the pull numbered the waiting rows after the others, with no gap")
        #expect(log.map(\.key.id.rawValue) == (0..<10).map { "d\($0)" })
        await store.shutdown()
    }

    @Test func badURLsAndASchemaFromTheFutureAreRefused() async throws {
        await #expect(throws: WeftError.self) { _ = try await PostgresCentralStore(url: URL(string: "postgres://127.0.0.1:5432/")!) }
        await #expect(throws: WeftError.self) {
            _ = try await PostgresCentralStore(url: URL(string: "postgres://x@127.0.0.1:5432/db?sslmode=sometimes")!)
        }
        #expect(throws: WeftError.self) { _ = try PostgresEndpoint.tenantName(URL(string: "postgres://x@h/db?tenant=no%20spaces")!) }
        let url = try await TestPostgres.freshDatabase()
        let store = try await PostgresCentralStore(url: url)
        await store.shutdown()
        let result = try runProcess(TestPostgres.psql, [url.absoluteString, "-qc", "INSERT INTO weft_migrations (version, name) VALUES (99, 'v99: from the future')"])
        #expect(result.status == 0, "\(result.error)")
        do {
            _ = try await PostgresCentralStore(url: url)
            Issue.record("a schema from the future was accepted")
        } catch {
            #expect(error.kind == .schemaTooNew, "\(error)")
        }
    }
}
