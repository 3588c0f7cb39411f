import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftSQLite
import WeftWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Crash safety of sync: a client (`WeftCrashWriter sync`, Tests/CrashWriter) writes and syncs
/// with a real Standalone server on loopback and is killed with SIGKILL at random moments, many
/// of them mid-sync: after the server committed a push but before the client acknowledged it,
/// and after a pull page arrived but before it was applied with its cursor (one transaction, so
/// a kill lands before or after both). A second replica in this process writes and syncs all the
/// while, so pulls carry data. After the last round the client's replica is reopened here (and
/// written to once more, as an app does after a restart), everything syncs to convergence, and:
///
/// - every acknowledged write is in the server's and every replica's documents exactly once (its
///   register is there and the PN-counter is the sum of the amounts of the writes present; of the
///   unacknowledged writes only the one in progress at each kill may be there);
/// - every replica's records equal the server's, the queues are empty, the pull cursors are at
///   the server's last change, and `integrity_check` is ok.
///
/// `WEFT_SYNC_CRASH_ROUNDS` sets the number of rounds (default 30), `WEFT_SYNC_CRASH_SEED` the
/// seed (printed on every run, so a failure can be replayed).
@Suite("Sync crash recovery (SIGKILL of a syncing client)", .serialized)
struct SyncCrashTests {
    static let documentCount = 4
    static let collectionName = "sync"
    static let database = "mydb"

    /// One write: the register it set, its document and the amount it added to counter "n".
    struct Write: Hashable, Sendable, CustomStringConvertible {
        let field: String
        let document: Int
        let amount: Int64
        var description: String { "\(field)→c\(document)+\(amount)" }
    }

    /// How a round ends.
    enum Trigger: CustomStringConvertible {
        /// SIGKILL after this many milliseconds.
        case timer(Int)
        /// SIGKILL on the k-th "pushed" line: the server committed, the client has not acknowledged.
        case afterPush(Int)
        /// SIGKILL on the k-th non-empty "pulled" line: the page is here, not yet applied.
        case afterPull(Int)

        var description: String {
            switch self {
            case .timer(let ms): "timer \(ms) ms"
            case .afterPush(let k): "push answer #\(k)"
            case .afterPull(let k): "pull page #\(k)"
            }
        }
    }

    /// What one child run printed.
    struct ChildRun {
        var lines = [String]()
        var start: (queued: Int, cursor: UInt64)?
        var acked = [Write]()
        /// The acknowledged writes a later `syncOnce()` returned after: the server has them.
        var synced = [Write]()
        /// The write begun but not acknowledged when the child was killed.
        var inProgress: Write?
        var malformed = [String]()
        var killed = false
        var stderr = ""
    }

    /// Sends SIGKILL to one process, once.
    final class Killer: Sendable {
        let pid: pid_t
        private let sent = Mutex(false)
        init(pid: pid_t) { self.pid = pid }

        @discardableResult
        func fire() -> Bool {
            sent.withLock { sent in
                guard !sent else { return false }
                sent = true
                return sendKill(pid)
            }
        }
    }

    final class StopFlag: Sendable {
        private let value = Mutex(false)
        func stop() { value.withLock { $0 = true } }
        var isStopped: Bool { value.withLock { $0 } }
    }

    static func environmentInt(_ name: String) -> Int? {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) }
    }

    static func key(_ k: Int) -> DocumentKey {
        DocumentKey(collection: try! CollectionName(collectionName), id: try! DocumentID("c\(k)"))
    }

    /// The lines written to `handle`, read on a thread of their own as they arrive.
    static func lines(of handle: FileHandle) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        let fd = dup(handle.fileDescriptor)
        let thread = Thread {
            var pending = [UInt8]()
            var buffer = [UInt8](repeating: 0, count: 4096)
            while fd >= 0 {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                pending.append(contentsOf: buffer[..<count])
                while let newline = pending.firstIndex(of: 10) {
                    continuation.yield(String(decoding: pending[..<newline], as: UTF8.self))
                    pending.removeSubrange(...newline)
                }
            }
            // Each line is one write(2) of a few bytes, atomic on a pipe: a partial line is a bug.
            if !pending.isEmpty { continuation.yield("UNTERMINATED " + String(decoding: pending, as: UTF8.self)) }
            if fd >= 0 { close(fd) }
            continuation.finish()
        }
        thread.start()
        return stream
    }

    /// Runs the child until `trigger` (or `fallbackMilliseconds`), kills it with SIGKILL, and
    /// returns what it printed.
    static func runChild(
        _ executable: URL, path: String, baseURL: String, seed: UInt64, run: Int, trigger: Trigger, fallbackMilliseconds: Int,
        stderrPath: String, powerLoss: Durability? = nil, boot: String? = nil
    ) async throws -> ChildRun {
        let process = Process()
        process.executableURL = executable
        process.arguments = ["sync", path, baseURL, RunningServer.writeToken, String(seed), String(run)]
        // A targeted kill needs the child to pause where it prints the trigger line; a timed kill
        // lands anywhere, so the child runs flat out (its writes and transactions are the targets).
        var environment = ProcessInfo.processInfo.environment
        if case .timer = trigger { environment["WEFT_SYNC_CRASH_PAUSE_MS"] = "0" } else { environment["WEFT_SYNC_CRASH_PAUSE_MS"] = "25" }
        if let powerLoss {
            // The kill is a power cut: what SQLite had not synced is gone (Tests/PowerLossVFS).
            environment["WEFT_POWER_LOSS_VFS"] = "1"
            environment["WEFT_CRASH_DURABILITY"] = powerLoss.rawValue
        }
        if let boot { environment["WEFT_BOOT_ID"] = boot }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        let errors = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardError = errors
        let lines = Self.lines(of: output.fileHandleForReading)
        try process.run()
        try? errors.close()
        let killer = Killer(pid: process.processIdentifier)
        let deadline: Int
        if case .timer(let ms) = trigger { deadline = ms } else { deadline = fallbackMilliseconds }
        let timer = Task {
            try? await Task.sleep(for: .milliseconds(deadline))
            if !Task.isCancelled { killer.fire() }
        }
        var result = ChildRun()
        var pushes = 0
        var pulls = 0
        for await line in lines {
            result.lines.append(line)
            let words = line.split(separator: " ")
            switch trigger {
            case .timer: break
            case .afterPush(let k):
                if words.first == "pushed" {
                    pushes += 1
                    if pushes == k { killer.fire() }
                }
            case .afterPull(let k):
                if words.first == "pulled", words.count == 4, let count = Int(words[2]), count > 0 {
                    pulls += 1
                    if pulls == k { killer.fire() }
                }
            }
        }
        timer.cancel()
        killer.fire()  // a child that closed its output without being killed
        process.waitUntilExit()
        result.killed = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
        result.stderr = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""

        func write(_ words: [Substring]) -> Write? {
            guard words.count == 4, let n = Int(words[1]), words[2].hasPrefix("c"), let k = Int(words[2].dropFirst()),
                (0..<documentCount).contains(k), let amount = Int64(words[3])
            else { return nil }
            return Write(field: "a\(run)_\(n)", document: k, amount: amount)
        }
        for line in result.lines {
            let words = line.split(separator: " ")
            switch words.first {
            case "start":
                if words.count == 3, let queued = Int(words[1]), let cursor = UInt64(words[2]), result.start == nil {
                    result.start = (queued, cursor)
                } else {
                    result.malformed.append(line)
                }
            case "begin":
                if let begun = write(words), result.inProgress == nil, begun.field == "a\(run)_\(result.acked.count)" {
                    result.inProgress = begun
                } else {
                    result.malformed.append(line)
                }
            case "ack":
                if let done = write(words), done == result.inProgress {
                    result.acked.append(done)
                    result.inProgress = nil
                } else {
                    result.malformed.append(line)
                }
            case "push":
                if words.count != 4 { result.malformed.append(line) }
            case "synced":
                if words.count != 4 { result.malformed.append(line) }
                result.synced = result.acked
            case "pushed", "pull", "sync-failed":
                if words.count != 2 { result.malformed.append(line) }
            case "pulled":
                if words.count != 4 { result.malformed.append(line) }
            default:
                result.malformed.append(line)
            }
        }
        return result
    }

    /// The second replica's loop: write, sync, pause, until stopped. Returns its writes (all
    /// acknowledged: they ran to completion here) and its failed sync rounds.
    static func secondWriter(engine: SyncEngine, seed: UInt64, firstIndex: Int, stop: StopFlag) async -> (
        writes: [Write], failedSyncs: Int, errors: [String]
    ) {
        var random = SplitMix64(seed: seed)
        var writes = [Write]()
        var failedSyncs = 0
        var errors = [String]()
        while !stop.isStopped {
            let write = Write(
                field: "b\(firstIndex + writes.count)", document: Int(random.next() % UInt64(documentCount)),
                amount: Int64(1 + random.next() % 1000))
            do {
                try await engine.replica.collection(collectionName).upsert("c\(write.document)") { editor in
                    editor.increment("n", by: write.amount)
                    editor.set(write.field, to: .int(write.amount))
                }
                writes.append(write)
            } catch {
                errors.append("write \(write): \(error)")
                break
            }
            do {
                try await engine.syncOnce()
            } catch {
                failedSyncs += 1
            }
            try? await Task.sleep(for: .milliseconds(5 + Int(random.next() % 20)))
        }
        return (writes, failedSyncs, errors)
    }

    /// Problems with `record` of document `k`: a missing acknowledged write, a write present
    /// that may not be, a wrong register, or a counter other than the sum of the writes present.
    static func account(_ record: DocumentRecord?, document k: Int, owner: String, acked: [Write], optional: [Write]) -> [String] {
        guard let record, !record.isDeleted else { return ["\(owner) c\(k): missing or deleted"] }
        let body = record.body
        var problems = [String]()
        var expected: Int64 = 0
        var known: Set<String> = ["n"]
        for write in acked where write.document == k {
            known.insert(write.field)
            if let value = body.int(write.field) {
                if value != write.amount { problems.append("\(owner) c\(k): \(write.field) = \(value), expected \(write.amount)") }
                expected += write.amount
            } else {
                problems.append("\(owner) c\(k): LOST ACKED WRITE \(write) (its register is missing)")
            }
        }
        for write in optional where write.document == k {
            known.insert(write.field)
            if let value = body.int(write.field) {
                if value != write.amount { problems.append("\(owner) c\(k): \(write.field) = \(value), expected \(write.amount)") }
                expected += write.amount
            }
        }
        let unexpected = body.keys.filter { !known.contains($0) }
        if !unexpected.isEmpty {
            problems.append("\(owner) c\(k): unexpected fields (unacknowledged writes other than the one in progress, or in the wrong document): \(unexpected.prefix(10))")
        }
        let counter = body.counter("n") ?? 0
        if counter > expected {
            problems.append("\(owner) c\(k): DOUBLED: counter n = \(counter), but the writes present add up to \(expected) (+\(counter - expected))")
        } else if counter < expected {
            problems.append("\(owner) c\(k): LOST: counter n = \(counter), but the writes present add up to \(expected) (−\(expected - counter))")
        }
        return problems
    }

    /// The sequence of the server's last change.
    static func lastServerSequence(_ store: any CentralStore) async throws -> UInt64 {
        var after: UInt64 = 0
        while true {
            let page = try await store.changes(database: database, after: after, limit: 10_000, maxBytes: 64 << 20)
            after = page.changes.last?.sequence ?? after
            if !page.hasMore { return after }
        }
    }

    @Test("SIGKILL of a syncing client, mid-push and mid-pull, loses nothing and doubles nothing")
    func killedSyncingClientConverges() async throws {
        let rounds = max(1, Self.environmentInt("WEFT_SYNC_CRASH_ROUNDS") ?? 30)
        let seed = Self.environmentInt("WEFT_SYNC_CRASH_SEED").map { UInt64(truncatingIfNeeded: $0) }
            ?? UInt64.random(in: 0...UInt64(Int64.max))
        print("SyncCrashTests: seed \(seed) (WEFT_SYNC_CRASH_SEED=\(seed) replays it), \(rounds) rounds")
        let executable = try builtExecutable("WeftCrashWriter")
        let clock = ContinuousClock()
        let started = clock.now

        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(store: try SQLiteCentralStore(path: directory.path("central.sqlite")), policy: .crdt)
        defer { Task { await server.stop() } }
        let clientPath = directory.path("client.sqlite")
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt

        // The second replica, in this process for the whole test.
        let secondStorage = try SQLiteReplicaStorage(path: directory.path("second.sqlite"))
        let second = try await Replica(storage: secondStorage, configuration: configuration)
        let secondEngine = SyncEngine(
            replica: second, transport: HTTPTransport(baseURL: server.baseURL, database: Self.database, token: RunningServer.writeToken))
        await secondEngine.setBatchLimits(entries: 3, bytes: 1 << 20)
        await secondEngine.setPageSize(5)

        var random = SplitMix64(seed: seed)
        var childAcked = [Write]()
        var childInProgress = [Write]()
        var secondWrites = [Write]()
        var secondFailedSyncs = 0
        var childFailedSyncs = 0
        var expectedStart: (queued: Int, cursor: UInt64)? = (0, 0)
        var kills = [String: Int]()  // where each kill landed, by the child's last line
        var pushWindowKills = 0  // the server had committed a push the client had not acknowledged
        var pullWindowKills = 0  // a pulled page had arrived and was not applied, nor its cursor saved
        var failed = false

        for round in 0..<rounds {
            let trigger: Trigger
            if round == rounds - 1 {
                // The last round always ends between the server's commit and the acknowledgement.
                trigger = .afterPush(1 + Int(random.next() % 3))
            } else {
                switch round % 3 {
                case 0: trigger = .timer(40 + Int(random.next() % 461))
                case 1: trigger = .afterPush(1 + Int(random.next() % 4))
                default: trigger = .afterPull(1 + Int(random.next() % 4))
                }
            }
            let childSeed = random.next()
            let stop = StopFlag()
            let firstIndex = secondWrites.count
            let secondSeed = random.next()
            let writer = Task { await Self.secondWriter(engine: secondEngine, seed: secondSeed, firstIndex: firstIndex, stop: stop) }
            let run = try await Self.runChild(
                executable, path: clientPath, baseURL: server.baseURL, seed: childSeed, run: round, trigger: trigger,
                fallbackMilliseconds: 4_000, stderrPath: directory.path("stderr-\(round).txt"))
            stop.stop()
            let secondRun = await writer.value
            secondWrites += secondRun.writes
            secondFailedSyncs += secondRun.failedSyncs
            for error in secondRun.errors { Issue.record("round \(round): the second replica failed: \(error)") }

            let context = "round \(round) (seed \(seed), \(trigger), \(run.acked.count) acks)"
            guard run.killed else {
                Issue.record("\(context): the client was not killed by SIGKILL (it exited on its own?); stderr:\n\(run.stderr)")
                failed = true
                break
            }
            if !run.malformed.isEmpty { Issue.record("\(context): malformed client output: \(run.malformed.prefix(5))") }
            childAcked += run.acked
            if let write = run.inProgress { childInProgress.append(write) }
            childFailedSyncs += run.lines.filter { $0.hasPrefix("sync-failed") }.count

            // The client resumed exactly where the previous kill left its file.
            if let start = run.start, let expected = expectedStart, start != expected {
                Issue.record("\(context): the client started with \(start.queued) queued entries and cursor \(start.cursor), but the file held \(expected.queued) and \(expected.cursor)")
            }

            // The file after the kill: sound, and where did the kill land?
            let storage = try SQLiteReplicaStorage(path: clientPath)
            let integrity = try await storage.integrityCheck()
            if integrity != ["ok"] { Issue.record("\(context): integrity_check: \(integrity)") }
            let entries = try await storage.entries()
            let cursor = try await storage.metadata().pullCursor
            expectedStart = (entries.count, cursor)
            if let start = run.start, cursor < start.cursor {
                Issue.record("\(context): the pull cursor went back from \(start.cursor) to \(cursor)")
            }
            let last = run.lines.last?.split(separator: " ") ?? []
            kills[last.first.map(String.init) ?? "(nothing)", default: 0] += 1
            if last.count == 2, last[0] == "pushed", let through = UInt64(last[1]),
                entries.contains(where: { $0.sequence <= through })
            {
                pushWindowKills += 1
            }
            if last.count == 4, last[0] == "pulled", let pageCursor = UInt64(last[1]), let count = Int(last[2]), count > 0,
                cursor < pageCursor
            {
                pullWindowKills += 1
            }
        }
        let roundsElapsed = clock.now - started

        // Restart the client's replica here, write once more as an app would, and converge.
        let clientStorage = try SQLiteReplicaStorage(path: clientPath)
        let client = try await Replica(storage: clientStorage, configuration: configuration)
        let clientEngine = SyncEngine(
            replica: client, transport: HTTPTransport(baseURL: server.baseURL, database: Self.database, token: RunningServer.writeToken))
        let pendingAtRestart = try await client.queuedChanges()
        var afterRestart = [Write]()
        for k in 0..<Self.documentCount {
            let write = Write(field: "z\(k)", document: k, amount: Int64(1 + random.next() % 1000))
            try await client.collection(Self.collectionName).upsert("c\(k)") { editor in
                editor.increment("n", by: write.amount)
                editor.set(write.field, to: .int(write.amount))
            }
            afterRestart.append(write)
        }
        var passes = 0
        for pass in 1...10 {
            passes = pass
            var moved = 0
            for engine in [clientEngine, secondEngine] {
                let report = try await engine.syncOnce()
                moved += report.pushed + report.pulled
            }
            if moved == 0 { break }
        }

        // Every acknowledged write exactly once, everywhere; the replicas equal the server.
        let acked = childAcked + secondWrites + afterRestart
        var problems = [String]()
        let lastSequence = try await Self.lastServerSequence(server.store)
        for k in 0..<Self.documentCount {
            let key = Self.key(k)
            let central = try await server.store.record(database: Self.database, key: key)
            problems += Self.account(central, document: k, owner: "server", acked: acked, optional: childInProgress)
            for (name, replica) in [("client", client), ("second", second)] {
                let record = try await replica.record(key)
                problems += Self.account(record, document: k, owner: name, acked: acked, optional: childInProgress)
                if record != central {
                    problems.append(
                        "\(name) c\(k) differs from the server's: counter \(String(describing: record?.body.counter("n"))) vs \(String(describing: central?.body.counter("n"))), fields only here \(Set(record?.body.keys ?? []).subtracting(central?.body.keys ?? []).sorted().prefix(10)), only on the server \(Set(central?.body.keys ?? []).subtracting(record?.body.keys ?? []).sorted().prefix(10))"
                    )
                }
            }
        }
        for (name, replica) in [("client", client), ("second", second)] {
            let queued = try await replica.queuedChanges()
            if !queued.isEmpty { problems.append("\(name): \(queued.count) queue entries left after convergence") }
            let cursor = try await replica.pullCursor()
            if cursor != lastSequence { problems.append("\(name): pull cursor \(cursor), the server's last change is \(lastSequence)") }
        }
        for (name, storage) in [("client", clientStorage), ("second", secondStorage)] {
            let integrity = try await storage.integrityCheck()
            if integrity != ["ok"] { problems.append("\(name): integrity_check: \(integrity)") }
        }
        if !problems.isEmpty {
            Issue.record(
                Comment(
                    rawValue: "after \(rounds) rounds (seed \(seed)) and \(passes) sync passes, \(pendingAtRestart.count) entries were queued at the restart (sequences \(pendingAtRestart.map(\.sequence))):\n"
                        + problems.prefix(40).joined(separator: "\n")))
        }

        let presentInProgress = try await {
            var count = 0
            for write in childInProgress
            where try await server.store.record(database: Self.database, key: Self.key(write.document))?.body.int(write.field) != nil {
                count += 1
            }
            return count
        }()
        print(
            "SyncCrashTests: \(rounds) rounds in \(roundsElapsed), total \(clock.now - started); client: \(childAcked.count) acked writes, "
                + "\(childInProgress.count) unacknowledged in progress (\(presentInProgress) committed), \(childFailedSyncs) failed syncs; "
                + "second replica: \(secondWrites.count) writes, \(secondFailedSyncs) failed syncs; kills by last line \(kills.sorted { $0.key < $1.key }); "
                + "\(pushWindowKills) after a server commit before the acknowledgement, \(pullWindowKills) with a pulled page not yet applied; "
                + "\(passes) passes to converge")
        guard !failed else { return }
        // The run exercised what it is about.
        #expect(childAcked.count >= rounds, "the client acknowledged only \(childAcked.count) writes in \(rounds) rounds")
        #expect(!secondWrites.isEmpty)
        if rounds >= 3 {
            #expect(pushWindowKills >= 1, "no kill landed between a server commit and the client's acknowledgement")
            #expect(pullWindowKills >= 1, "no kill landed between a pull answer and its application")
        }
    }
}

private func sendKill(_ pid: pid_t) -> Bool { kill(pid, SIGKILL) == 0 }

/// The same windows, deterministically and in one process: the push is answered (the server has
/// committed it) and then the client "dies" before acknowledging, or the answer is lost.
@Suite("Sync crash recovery, deterministic")
struct SyncCrashDeterministicTests {
    /// A transport that passes requests to the service and, while `loseAnswers` is set, throws
    /// after the service has applied a push, as if the answer had been lost.
    final class LosingTransport: SyncTransport {
        let inner: InProcessTransport
        private let losing = Mutex(false)
        init(_ inner: InProcessTransport) { self.inner = inner }
        func loseAnswers(_ value: Bool) { losing.withLock { $0 = value } }

        func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse { try await inner.hello(request) }
        func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
            let response = try await inner.push(request)
            if losing.withLock({ $0 }) { throw SyncError(.unavailable, "the answer was lost") }
            return response
        }

        func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse { try await inner.pull(request) }
    }

    static func configuration() -> ReplicaConfiguration {
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        return configuration
    }

    static let key = DocumentKey(collection: try! CollectionName("sync"), id: try! DocumentID("c0"))

    /// The client pushes a batch, the server commits it, the client is killed before its
    /// acknowledgement; after the restart the app writes the same document again and syncs.
    @Test("A write after a restart that follows a committed, unacknowledged push reaches the server")
    func writeAfterRestartFollowingCommittedUnacknowledgedPush() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("client.sqlite")
        let service = SyncService(store: MemoryCentralStore())
        let transport = InProcessTransport(service: service, database: "mydb")
        do {
            // The first life: one write, then the push step of `SyncEngine.pushAll()` up to the
            // server's answer, and the process dies before `acknowledge(through:)`.
            let storage = try SQLiteReplicaStorage(path: path)
            let replica = try await Replica(storage: storage, configuration: Self.configuration())
            try await replica.collection("sync").upsert("c0") { editor in
                editor.increment("n", by: 1)
                editor.set("first", to: .int(1))
            }
            let batch = try await storage.nextBatch(maxBytes: 1 << 20, maxEntries: 10)
            var changes = [WireChange]()
            for entry in batch {
                let record = try #require(try await storage.record(for: entry.key))
                changes.append(
                    WireChange(
                        sequence: entry.sequence, key: WireKey(collection: entry.key.collection.rawValue, id: entry.key.id.rawValue),
                        record: record))
            }
            let response = try await transport.push(PushRequest(replica: replica.replicaID, changes: changes))
            #expect(response.appliedThrough == batch.last?.sequence)
        }
        // The restart: the unacknowledged entry is still queued; the app writes again and syncs.
        let storage = try SQLiteReplicaStorage(path: path)
        let replica = try await Replica(storage: storage, configuration: Self.configuration())
        let pending = try await replica.queuedChanges()
        #expect(pending.count == 1)
        try await replica.collection("sync").upsert("c0") { editor in
            editor.increment("n", by: 10)
            editor.set("second", to: .int(10))
        }
        let engine = SyncEngine(replica: replica, transport: transport)
        for _ in 0..<3 { try await engine.syncOnce() }
        let local = try await replica.record(Self.key)
        let central = try await service.store.record(database: "mydb", key: Self.key)
        #expect(try await replica.queuedChanges().isEmpty)
        #expect(local?.body.counter("n") == 11)
        #expect(central?.body.int("second") == 10, "the write made after the restart never reached the server")
        #expect(central?.body.counter("n") == 11)
        let converged = central == local
        #expect(converged, "the server's record differs from the client's")
    }

    /// The same without a crash: the push is applied but its answer is lost, so the engine puts
    /// the batch back to pending; the app writes the same document again and syncs.
    @Test("A write after a push whose answer was lost reaches the server")
    func writeAfterLostPushAnswer() async throws {
        let service = SyncService(store: MemoryCentralStore())
        let transport = LosingTransport(InProcessTransport(service: service, database: "mydb"))
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.configuration())
        let engine = SyncEngine(replica: replica, transport: transport)
        try await replica.collection("sync").upsert("c0") { $0.increment("n", by: 1) }
        transport.loseAnswers(true)
        await #expect(throws: SyncError.self) { try await engine.syncOnce() }
        transport.loseAnswers(false)
        try await replica.collection("sync").upsert("c0") { editor in
            editor.increment("n", by: 10)
            editor.set("second", to: .int(10))
        }
        for _ in 0..<3 { try await engine.syncOnce() }
        let local = try await replica.record(Self.key)
        let central = try await service.store.record(database: "mydb", key: Self.key)
        #expect(try await replica.queuedChanges().isEmpty)
        #expect(local?.body.counter("n") == 11)
        #expect(central?.body.int("second") == 10, "the write made after the lost answer never reached the server")
        #expect(central?.body.counter("n") == 11)
        let converged = central == local
        #expect(converged, "the server's record differs from the client's")
    }
}
