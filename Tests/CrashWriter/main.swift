// WeftCrashWriter: the child process of the crash tests (Tests/WeftTests/CrashTests.swift).
//
//     WeftCrashWriter <db path> <seed> <normal|full>
//
// Opens the replica at <db path> and writes until it is killed. Write number `i` touches
// document "d<i % 17>" of collection "crash":
//
// - a *delete*, if the document is live and `CrashOps.isDelete(seed, i)` says so;
// - otherwise an *upsert* that sets register "w<i>" to `i` and adds 1 to counter "count"
//   (re-creating the document, empty, if it was deleted).
//
// Every write is exactly one `Replica.write`, which adds 1 to this replica's entry in the
// document's version vector, so the number of writes already committed is the sum of those
// entries over d0…d16: the writer resumes there, and the parent recomputes the same number. The
// operation sequence is a pure function of (seed, i), so the parent can replay it exactly.
//
// Output (stdout, unbuffered, one line each):
//   start <n>                        before the first write: n writes were already committed
//   ack <i> upsert d<k>              after write i returned
//   ack <i> delete d<k>
// The parent trusts only the lines it has read; a write may commit without its ack.
//
//     WeftCrashWriter read <db path> <collection> [<step>,<step>,...]
//
// The damaged-file tests' reader (Tests/WeftTests/DamagedFileTests.swift): opens the database and
// runs the steps (default: integrity, replica, metadata, list, entries, bytes, batch, write;
// also get:<id> and write:<id>), printing one line per step ("<step> ok <detail>" or
// "<step> error <kind>"), and exits 0. Run in a child process, a trap on damaged input is a test
// failure rather than the end of the test run.
//
//     WeftCrashWriter sync <db path> <server base URL> <token> <seed> <run>
//
// The sync crash tests' client (Tests/WeftTests/SyncCrashTests.swift): opens the replica at
// <db path> (CRDT policy), then loops until killed: 1–3 local writes, then one `syncOnce()`
// against the Standalone server at <server base URL> (database "mydb", bearer <token>). Write
// number `n` (counted from 0 in each run) upserts document "c<k>" (k < 4) of collection "sync":
// it adds <amount> to PN-counter "n" and sets register "a<run>_<n>" to <amount>; (k, amount) come
// from SplitMix64(<seed>). The transport is WeftHTTP's `HTTPTransport`; after a push answer, and
// after a non-empty pull page, it prints a line and pauses `WEFT_SYNC_CRASH_PAUSE_MS` (default 25) before handing the
// answer to the engine, which widens the windows "the server committed, the client has not
// acknowledged" and "the page is here, not yet applied" for the parent's SIGKILL.
//
// Output (stdout, unbuffered, one line each):
//   start <queued entries> <pull cursor>   after opening, before the first write
//   begin <n> c<k> <amount>                before write n (it may commit without its ack)
//   ack <n> c<k> <amount>                  after write n returned
//   push <count> <first seq> <last seq>    a push request is about to be sent
//   pushed <applied through>               the server answered the push (it has committed it)
//   pull <after>                           a pull request is about to be sent
//   pulled <cursor> <changes> <has more>   the server answered the pull
//   synced <pushed> <pulled> <cursor>      syncOnce() returned
//
// WEFT_CRASH_DURABILITY (normal|full) sets the sync client's durability (default normal), and
// WEFT_BOOT_ID the machine's boot the replica is opened under (default: the real one).
//
//     WeftCrashWriter large <db path> <fields>
//
// The crash test of large documents kept in parts (Tests/WeftTests/DocumentPartsTests.swift):
// one document of <fields> fields, edited until killed; write i sets "f<i % fields>" to i and
// adds 1 to counter "count". Output: `start <n>` (n writes already committed), `ack <i>`.
//
//     WeftCrashWriter indexed <db path> <seed> <round>
//
// The crash test of declared indexes (Tests/WeftTests/QueryTests.swift): prints `opening`, opens
// the replica with indexes on collection "idx" that differ by the parity of <round> (so every
// restart rebuilds them, and a kill may fall inside the rebuild), prints `start`, then writes
// until killed: batches of 1–20 upserts and deletes of documents "d<k>" (k < 400) setting
// "status", "rank" and set "tags" from SplitMix64(<seed>, <round>), printing `ack <n>` after each.
//
//     WeftCrashWriter fault <db path> <server base URL> <token> <database> <seed> <tag prefix>
//
// The fault-injection suite's replica in a child process, to be killed with SIGKILL: opens the
// replica at <db path> (CRDT, "notes" last writer wins; WEFT_CRASH_DURABILITY as in the sync
// mode), then loops until killed: a write to
// document "s<k>" (k < 6) of collection "sensors" as the suite makes it (counter "n" and nested
// counter "stats.m" += amount, register "last" and set "tags" get the tag <tag prefix><n>), and
// after about a third of them a `syncOnce()` against <server base URL>.
//
// Output (stdout, unbuffered, one line each):
//   start                                   after opening
//   begin s<k> <amount> <tag>               before a write (it may commit without its ack)
//   ack s<k> <amount> <tag> <sequence>      after it returned; <sequence> is its queue entry's
//   synced | sync-failed <kind>             after a sync round
//   sync-failed <kind>                     syncOnce() threw (the loop goes on)

import Foundation
import Weft
import WeftCRDT
import WeftHTTP
import WeftPowerLossVFS
import WeftSQLite
import WeftWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The operation rule, duplicated verbatim in CrashTests.swift (the two targets share no module).
enum CrashOps {
    static let documentCount = 17

    /// SplitMix64's finaliser over (seed, i): a stateless, deterministic hash.
    static func mix(_ seed: UInt64, _ i: Int) -> UInt64 {
        var z = seed &+ UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15 &+ 0x6A09_E667_F3BC_C909
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Whether write `i` deletes its document, when that document is live.
    static func isDelete(_ seed: UInt64, _ i: Int) -> Bool { mix(seed, i) % 11 == 0 }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("WeftCrashWriter: \(message)\n".utf8))
    exit(2)
}

func emit(_ line: String) {
    // One write(2) per line: nothing is buffered in this process when it is killed.
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// The `read` mode: runs `steps` in order after opening; each either succeeds or reports a
/// `WeftError`, and nothing may trap.
func readEverything(path: String, collection collectionName: String, steps: [String]) async -> Never {
    @discardableResult
    func step(_ name: String, _ body: () async throws(WeftError) -> String) async -> Bool {
        do {
            // One line per step: findings such as integrity_check's may hold newlines.
            let detail = try await body().split(whereSeparator: \.isNewline).joined(separator: " | ")
            emit("\(name) ok \(detail)")
            return true
        } catch {
            emit("\(name) error \(error.kind)")
            return false
        }
    }
    let collection: CollectionName
    do { collection = try CollectionName(collectionName) } catch { fail("\(error)") }
    var opened: SQLiteReplicaStorage?
    await step("open") { () throws(WeftError) in
        opened = try SQLiteReplicaStorage(path: path)
        return "1"
    }
    guard let storage = opened else { exit(0) }
    var replica: Replica?
    func theReplica() async throws(WeftError) -> Replica {
        if let replica { return replica }
        var localOnly = ReplicaConfiguration()
        localOnly.sessionIdentities = false
        let made = try await Replica(storage: storage, configuration: localOnly)
        replica = made
        return made
    }
    for name in steps {
        let parts = name.split(separator: ":", maxSplits: 1).map(String.init)
        let argument = parts.count > 1 ? parts[1] : "reader-probe"
        switch parts[0] {
        case "integrity":
            await step(name) { () async throws(WeftError) in try await storage.integrityCheck().joined(separator: ";") }
        case "replica":
            await step(name) { () async throws(WeftError) in "\(try await theReplica().replicaID)" }
        case "metadata":
            await step(name) { () async throws(WeftError) in "\(try await storage.metadata().replicaID)" }
        case "list":
            await step(name) { () async throws(WeftError) in
                "\(try await storage.records(in: collection, where: DocumentFilter(includeDeleted: true), limit: nil).count)"
            }
        case "get":
            await step(name) { () async throws(WeftError) in
                let key = DocumentKey(collection: collection, id: try DocumentID(argument))
                return "\(try await storage.record(for: key) != nil)"
            }
        case "entries":
            await step(name) { () async throws(WeftError) in "\(try await storage.entries().count)" }
        case "bytes":
            await step(name) { () async throws(WeftError) in "\(try await storage.totalBytes())" }
        case "batch":
            await step(name) { () async throws(WeftError) in
                "\(try await storage.nextBatch(maxBytes: 1 << 20, maxEntries: 100).count)"
            }
        case "write":
            await step(name) { () async throws(WeftError) in
                try await theReplica().collection(collectionName).upsert(argument) { $0.increment("probes") }
                return "1"
            }
        default:
            fail("unknown read step \(name)")
        }
    }
    exit(0)
}

// MARK: The `sync` mode

/// The real HTTP transport, with a line printed around each exchange and a pause after each
/// answer, to widen the windows the parent aims its SIGKILL at.
struct LoopbackTransport: SyncTransport {
    let inner: HTTPTransport
    let pause: Duration

    init(baseURL: String, database: String, token: String, pause: Duration) {
        inner = HTTPTransport(baseURL: baseURL, database: database, token: token, timeout: .seconds(60))
        self.pause = pause
    }

    func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await inner.hello(request) }

    func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
        emit("push \(request.changes.count) \(request.changes.first?.sequence ?? 0) \(request.changes.last?.sequence ?? 0)")
        let response = try await inner.push(request)
        // The server has committed the batch; the engine has not acknowledged it yet.
        emit("pushed \(response.appliedThrough)")
        if pause > .zero { try? await Task.sleep(for: pause) }
        return response
    }

    func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
        emit("pull \(request.after)")
        let response = try await inner.pull(request)
        emit("pulled \(response.cursor) \(response.changes.count) \(response.hasMore)")
        // The page is here; the engine has not applied it (nor saved its cursor) yet.
        if !response.changes.isEmpty && pause > .zero { try? await Task.sleep(for: pause) }
        return response
    }
}

/// The `sync` mode: local writes and sync rounds, until killed.
func syncLoop(path: String, baseURL: String, token: String, seed: UInt64, run: Int) async -> Never {
    signal(SIGPIPE, SIG_IGN)
    let pauseMilliseconds = ProcessInfo.processInfo.environment["WEFT_SYNC_CRASH_PAUSE_MS"].flatMap { Int($0) } ?? 25
    do {
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        if let level = ProcessInfo.processInfo.environment["WEFT_CRASH_DURABILITY"].flatMap(Durability.init(rawValue:)) {
            configuration.durability = level
        }
        let replica = try await Replica.open(path: path, configuration: configuration, boot: bootOfThisRun())
        let transport = LoopbackTransport(baseURL: baseURL, database: "mydb", token: token, pause: .milliseconds(pauseMilliseconds))
        let engine = SyncEngine(replica: replica, transport: transport)
        // Small batches and pages: more pushes and pulls, so more moments to be killed in.
        await engine.setBatchLimits(entries: 2, bytes: 1 << 20)
        await engine.setPageSize(4)
        let collection = try replica.collection("sync")
        emit("start \(try await replica.queuedChanges().count) \(try await replica.pullCursor())")
        var random = SplitMix64(seed: seed)
        var n = 0
        while true {
            for _ in 0..<(1 + random.next() % 3) {
                let k = random.next() % 4
                let amount = Int64(1 + random.next() % 1000)
                let field = "a\(run)_\(n)"
                emit("begin \(n) c\(k) \(amount)")
                try await collection.upsert("c\(k)") { editor in
                    editor.increment("n", by: amount)
                    editor.set(field, to: .int(amount))
                }
                emit("ack \(n) c\(k) \(amount)")
                n += 1
            }
            do {
                let report = try await engine.syncOnce()
                emit("synced \(report.pushed) \(report.pulled) \(report.cursor)")
            } catch {
                emit("sync-failed \(error.kind)")
                FileHandle.standardError.write(Data("WeftCrashWriter: sync failed: \(error)\n".utf8))
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    } catch {
        fail("\(error)")
    }
}

// WEFT_POWER_LOSS_VFS=1: every database goes through the power-loss VFS
// (Tests/PowerLossVFS), so a SIGKILL loses whatever SQLite had not synced, as a power cut does.
if ProcessInfo.processInfo.environment["WEFT_POWER_LOSS_VFS"] == "1" {
    let code = weft_power_loss_vfs_register()
    if code != 0 { fail("the power-loss VFS did not register: SQLite code \(code)") }
}

/// The machine's boot as the parent test sees it (`WEFT_BOOT_ID`), or the real one.
func bootOfThisRun() -> String? { ProcessInfo.processInfo.environment["WEFT_BOOT_ID"] ?? BootIdentifier.current() }

/// The `fault` mode: the fault-injection suite's replica, run in a child process so the suite
/// can SIGKILL it (Tests/WeftTests/FaultInjection).
func faultLoop(path: String, baseURL: String, token: String, database: String, seed: UInt64, prefix: String) async -> Never {
    signal(SIGPIPE, SIG_IGN)
    do {
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        configuration.collectionPolicies = ["notes": .lastWriterWins]
        if let level = ProcessInfo.processInfo.environment["WEFT_CRASH_DURABILITY"].flatMap(Durability.init(rawValue:)) {
            configuration.durability = level
        }
        let replica = try await Replica.open(path: path, configuration: configuration, boot: bootOfThisRun())
        let engine = SyncEngine(
            replica: replica, transport: HTTPTransport(baseURL: baseURL, database: database, token: token, timeout: .seconds(60)))
        let sensors = try replica.collection("sensors")
        emit("start")
        var random = SplitMix64(seed: seed)
        var n = 0
        while true {
            let id = "s\(random.next() % 6)"
            let amount = Int64(1 + random.next() % 9)
            let tag = "\(prefix)\(n)"
            emit("begin \(id) \(amount) \(tag)")
            try await sensors.upsert(id) { editor in
                editor.increment("n", by: amount)
                editor.set("last", to: .string(tag))
                editor.insert(.string(tag), intoSet: "tags")
                editor.updateMap("stats") { document, stamp in _ = document.increment("m", by: amount, at: stamp) }
            }
            let key = DocumentKey(collection: sensors.name, id: try DocumentID(id))
            let sequence = try await replica.queuedChanges().first(where: { $0.key == key })?.sequence ?? 0
            emit("ack \(id) \(amount) \(tag) \(sequence)")
            n += 1
            if random.next() % 3 == 0 {
                do {
                    _ = try await engine.syncOnce()
                    emit("synced")
                } catch {
                    emit("sync-failed \(error.kind.rawValue)")
                }
            }
        }
    } catch {
        fail("\(error)")
    }
}

/// The `large` mode: one document of `fields` register fields ("f0"…), kept in parts once it is
/// edited; write `i` sets "f<i % fields>" to `i` and adds 1 to counter "count", so the counter
/// is the number of writes committed. Prints `start <n>`, then `ack <i>` after each write.
func largeLoop(path: String, fields: Int) async -> Never {
    do {
        var localOnly = ReplicaConfiguration()
        localOnly.sessionIdentities = false
        let replica = try await Replica(storage: try SQLiteReplicaStorage(path: path), configuration: localOnly)
        let documents = try replica.collection("large")
        var next = 0
        if let document = try await documents.get("big") {
            next = Int(document.counter("count") ?? 0)
        } else {
            try await documents.upsert("big") { editor in
                for index in 0..<fields { editor.set("f\(index)", to: .int(-1)) }
            }
        }
        emit("start \(next)")
        while true {
            let write = next
            try await documents.update("big") { editor in
                editor.set("f\(write % fields)", to: .int(Int64(write)))
                editor.increment("count")
            }
            emit("ack \(write)")
            next += 1
        }
    } catch {
        fail("\(error)")
    }
}

/// The `indexed` mode (see the header).
func indexedLoop(path: String, seed: UInt64, round: Int) async -> Never {
    do {
        emit("opening")
        var configuration = ReplicaConfiguration()
        configuration.sessionIdentities = false
        configuration.collectionIndexes = [
            "idx": round % 2 == 0
                ? [.value("status"), .value("rank"), .members("tags")] : [.value("rank"), .value("status"), .value("missing")]
        ]
        let replica = try await Replica(storage: try SQLiteReplicaStorage(path: path), configuration: configuration)
        emit("start")
        var state = seed &+ UInt64(round) &* 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var written = 0
        while true {
            let count = Int(next() % 20) + 1
            let draws = (0..<count).map { _ in (next(), next(), next()) }
            let live = try await replica.collection("idx").list().map(\.id.rawValue)
            try await replica.batch { batch in
                for (which, value, kind) in draws {
                    let id = "d\(which % 400)"
                    if kind % 9 == 0, live.contains(id) {
                        try batch.delete("idx", id)
                        continue
                    }
                    try batch.upsert("idx", id) { editor in
                        editor.set("status", to: .string(["open", "closed", "pending"][Int(value % 3)]))
                        editor.set("rank", to: .int(Int64(value % 1_000)))
                        if kind % 2 == 0 { editor.insert(.string("t\(value % 5)"), intoSet: "tags") } else { editor.remove(.string("t\(value % 5)"), fromSet: "tags") }
                    }
                }
            }
            emit("ack \(written)")
            written += 1
        }
    } catch {
        fail("\(error)")
    }
}

let arguments = CommandLine.arguments
if arguments.count == 5, arguments[1] == "indexed" {
    guard let seed = UInt64(arguments[3]), let round = Int(arguments[4]) else { fail("usage: WeftCrashWriter indexed <db path> <seed> <round>") }
    await indexedLoop(path: arguments[2], seed: seed, round: round)
}
if arguments.count == 4, arguments[1] == "large" {
    guard let fields = Int(arguments[3]) else { fail("usage: WeftCrashWriter large <db path> <fields>") }
    await largeLoop(path: arguments[2], fields: fields)
}
if arguments.count == 8, arguments[1] == "fault" {
    guard let seed = UInt64(arguments[6]) else {
        fail("usage: WeftCrashWriter fault <db path> <server base URL> <token> <database> <seed> <tag prefix>")
    }
    await faultLoop(path: arguments[2], baseURL: arguments[3], token: arguments[4], database: arguments[5], seed: seed, prefix: arguments[7])
}
if arguments.count == 7, arguments[1] == "sync" {
    guard let seed = UInt64(arguments[5]), let run = Int(arguments[6]) else {
        fail("usage: WeftCrashWriter sync <db path> <server base URL> <token> <seed> <run>")
    }
    await syncLoop(path: arguments[2], baseURL: arguments[3], token: arguments[4], seed: seed, run: run)
}
if (4...5).contains(arguments.count), arguments[1] == "read" {
    let steps = arguments.count == 5
        ? arguments[4].split(separator: ",").map(String.init)
        : ["integrity", "replica", "metadata", "list", "entries", "bytes", "batch", "write"]
    await readEverything(path: arguments[2], collection: arguments[3], steps: steps)
}
guard arguments.count == 4, let seed = UInt64(arguments[2]), let durability = Durability(rawValue: arguments[3]) else {
    fail("usage: WeftCrashWriter <db path> <seed> <normal|full>")
}
let path = arguments[1]

do {
    // A replica that never syncs: one identity across the writer's restarts, so its version
    // vector counts every committed write.
    var localOnly = ReplicaConfiguration(durability: durability)
    localOnly.sessionIdentities = false
    let replica = try await Replica.open(path: path, configuration: localOnly)
    let collection = try replica.collection("crash")
    var live = [Bool](repeating: false, count: CrashOps.documentCount)
    var next = 0
    for k in 0..<CrashOps.documentCount {
        let key = DocumentKey(collection: collection.name, id: try DocumentID("d\(k)"))
        if let record = try await replica.record(key) {
            live[k] = !record.isDeleted
            next += Int(record.version[replica.replicaID])
        }
    }
    emit("start \(next)")
    var i = next
    while true {
        let k = i % CrashOps.documentCount
        let id = "d\(k)"
        if live[k] && CrashOps.isDelete(seed, i) {
            try await collection.delete(id)
            live[k] = false
            emit("ack \(i) delete \(id)")
        } else {
            let value = Int64(i)
            try await collection.upsert(id) { editor in
                editor.set("w\(value)", to: .int(value))
                editor.increment("count", by: 1)
            }
            live[k] = true
            emit("ack \(i) upsert \(id)")
        }
        i += 1
    }
} catch {
    fail("\(error)")
}
