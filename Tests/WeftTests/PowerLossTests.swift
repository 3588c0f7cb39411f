import Foundation
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftSQLite
import WeftServer

/// Issue #14: a simulated power loss, and what each `durability` level promises.
///
/// The crash writer (`WeftCrashWriter`, as in ``CrashTests``) runs with the power-loss VFS
/// (Tests/PowerLossVFS, `WEFT_POWER_LOSS_VFS=1`): its writes reach the database files only when
/// SQLite syncs them, and wait in the process's memory until then. A SIGKILL therefore loses
/// everything unsynced, as a power cut loses the operating system's page cache. The test then
/// opens the files as a power cut leaves them and checks:
///
/// - `durability = "full"`: every write that returned is there (SQLite syncs the WAL at every
///   commit);
/// - `durability = "normal"`: the last writes before the cut may be gone (the WAL is synced at
///   checkpoints), but only from the end: the database passes `integrity_check`, the committed
///   writes are exactly the first *n* writes made (nothing half-applied, deletes and
///   re-creations in place), the queue stands for the documents, and nothing committed before
///   the round is lost. The rounds must actually lose writes, or the VFS would not be cutting
///   power at all.
///
/// Rounds reuse one file, so each also recovers the previous round's cut. `WEFT_POWER_ROUNDS`
/// sets the rounds per level (default 8), `WEFT_POWER_SEED` the seed.
@Suite("Power loss (unsynced writes dropped)", .serialized)
struct PowerLossTests {
    @Test(arguments: Durability.allCases)
    func aPowerCutKeepsWhatTheDurabilityLevelPromises(_ durability: Durability) async throws {
        let (rounds, seed) = powerLossRun("PowerLossTests", durability)
        let executable = try CrashTests.writerExecutable()
        let directory = TemporaryDirectory()
        let path = directory.path("replica.sqlite")

        var random = SplitMix64(seed: seed)
        var model = CrashTests.Model(seed: seed)
        var replicaID: ReplicaID?
        var acked = 0
        var lost = 0
        var roundsWithLoss = 0
        for round in 0..<rounds {
            // Long enough for several automatic checkpoints (every 1,000 WAL pages) and writes after.
            let milliseconds = 150 + Int(random.next() % 400)
            let before = model.count
            let run = try await CrashTests.runWriter(
                executable, path: path, seed: seed, durability: durability, milliseconds: milliseconds,
                powerLoss: true)
            guard run.killed else {
                Issue.record(
                    "round \(round): the writer was not killed by SIGKILL (it exited on its own?); stderr:\n\(run.stderr)"
                )
                return
            }
            #expect(
                run.malformed.isEmpty, "round \(round): malformed writer output: \(run.malformed.prefix(5))")
            acked += run.acks.count
            guard
                let committed = try await CrashTests.check(
                    path: path, model: &model, acked: run.acks.count, run: run, replicaID: &replicaID,
                    lossAllowed: durability == .normal)
            else {
                Issue.record(
                    "round \(round) (seed \(seed), \(durability), cut after \(milliseconds) ms, \(run.acks.count) acks) failed"
                )
                return
            }
            let missing = max(0, before + run.acks.count - committed)
            lost += missing
            if missing > 0 { roundsWithLoss += 1 }
        }
        print(
            "PowerLossTests: \(durability): \(rounds) power cuts, \(acked) writes returned, \(lost) of them lost (in \(roundsWithLoss) rounds)"
        )
        #expect(acked > rounds, "the writer hardly wrote")
        switch durability {
        case .full:
            #expect(lost == 0)
        case .normal:
            // Otherwise the VFS kept unsynced writes, and this test shows nothing.
            #expect(roundsWithLoss > 0, "no power cut lost a write under durability normal")
        }
    }
}

/// A power cut on a syncing client: the crash test's sync client (`WeftCrashWriter sync`) runs
/// with the power-loss VFS and is cut at random moments, after a push answer or on a timer, for
/// several rounds; then its file is reopened here and synced to convergence.
///
/// What it checks, for each level:
/// - every write that a completed `syncOnce()` followed is on the server (it acknowledged it);
/// - under `full`, every write that returned is on the server in the end;
/// - under `normal`, writes not yet pushed may be gone with the cut; a file that lost commits
///   the server saw (its session, its acknowledgements) is found forked and takes a new
///   identity, and the writes the server holds come back to it;
/// - either way no increment is counted twice (each document's counter is the sum of the writes
///   present), the client ends equal to the server, and its queue is empty.
@Suite("Power loss on a syncing client", .serialized)
struct PowerLossSyncTests {
    @Test(arguments: Durability.allCases)
    func aSyncingClientCutOffKeepsWhatTheServerAcknowledged(_ durability: Durability) async throws {
        let (rounds, seed) = powerLossRun("PowerLossSyncTests", durability)
        let executable = try builtExecutable("WeftCrashWriter")
        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(
            store: try SQLiteCentralStore(path: directory.path("central.sqlite")), policy: .crdt)
        defer { Task { await server.stop() } }
        let clientPath = directory.path("client.sqlite")

        var random = SplitMix64(seed: seed)
        var acked = [SyncCrashTests.Write]()
        var synced = [SyncCrashTests.Write]()
        var inProgress = [SyncCrashTests.Write]()
        for round in 0..<rounds {
            let trigger: SyncCrashTests.Trigger =
                round % 2 == 0
                ? .afterPush(1 + Int(random.next() % 4)) : .timer(60 + Int(random.next() % 400))
            let run = try await SyncCrashTests.runChild(
                executable, path: clientPath, baseURL: server.baseURL, seed: random.next(), run: round,
                trigger: trigger,
                fallbackMilliseconds: 4_000, stderrPath: directory.path("stderr-\(round).txt"),
                powerLoss: durability)
            guard run.killed else {
                Issue.record(
                    "round \(round): the client was not killed (it exited on its own?); stderr:\n\(run.stderr)"
                )
                return
            }
            #expect(run.malformed.isEmpty, "round \(round): malformed output \(run.malformed.prefix(5))")
            acked += run.acked
            synced += run.synced
            if let write = run.inProgress { inProgress.append(write) }
            let integrity = try await SQLiteReplicaStorage(path: clientPath).integrityCheck()
            #expect(integrity == ["ok"], "round \(round): integrity_check \(integrity)")
        }

        // The client restarts after the last cut and syncs until nothing moves.
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        let client = try await Replica(
            storage: try SQLiteReplicaStorage(path: clientPath), configuration: configuration)
        let engine = SyncEngine(
            replica: client,
            transport: HTTPTransport(
                baseURL: server.baseURL, database: SyncCrashTests.database, token: RunningServer.writeToken))
        for _ in 0..<10 {
            let report = try await engine.syncOnce()
            if report.pushed + report.pulled == 0 { break }
        }

        var present = Set<String>()
        for k in 0..<SyncCrashTests.documentCount {
            let key = SyncCrashTests.key(k)
            let central = try await server.store.record(database: SyncCrashTests.database, key: key)
            let local = try await client.record(key)
            #expect(local == central, "c\(k): the client differs from the server")
            guard let body = central?.body else { continue }
            // Each write set its own register and added its amount, in one commit: the counter
            // is the sum of the registers present, or something was counted twice (or half).
            var sum: Int64 = 0
            for field in body.keys where field != "n" {
                present.insert("\(k)/\(field)")
                sum += body.int(field) ?? 0
            }
            #expect(
                body.counter("n") == sum,
                "c\(k): counter \(String(describing: body.counter("n"))), registers sum to \(sum)")
        }
        #expect(try await client.queuedChanges().isEmpty)
        let missingSynced = synced.filter { !present.contains("\($0.document)/\($0.field)") }
        #expect(missingSynced.isEmpty, "writes the server acknowledged are gone: \(missingSynced.prefix(10))")
        let missing = acked.filter { !present.contains("\($0.document)/\($0.field)") }
        if durability == .full {
            #expect(
                missing.isEmpty, "writes that returned under durability full are gone: \(missing.prefix(10))")
        }
        print(
            "PowerLossSyncTests: \(durability): \(rounds) power cuts, \(acked.count) writes returned, \(synced.count) of them acknowledged by the server, "
                + "\(missing.count) lost with a cut before they were pushed, \(inProgress.count) in progress at a cut, identities: former \(client.formerIdentities.count)"
        )
    }
}

/// The rounds (`WEFT_POWER_ROUNDS`, default 8) and seed (`WEFT_POWER_SEED`, or random) of a
/// power-loss test, printed so a failure can be replayed.
func powerLossRun(_ suite: String, _ durability: Durability) -> (rounds: Int, seed: UInt64) {
    let rounds = CrashTests.environmentInt("WEFT_POWER_ROUNDS") ?? 8
    let seed =
        CrashTests.environmentInt("WEFT_POWER_SEED").map { UInt64(truncatingIfNeeded: $0) }
        ?? UInt64.random(in: 0...UInt64(Int64.max))
    print("\(suite): seed \(seed) (WEFT_POWER_SEED=\(seed) replays it), \(rounds) rounds, durability \(durability)")
    return (rounds, seed)
}

/// A power cut under `durability = "normal"` and a restore of the central store that both
/// forget the same writes (found by the fault suite). The replica's writes reached the server and
/// another replica; then the replica's machine lost power (its file lost those commits) and the
/// store was restored to a backup from before them (the server forgot them and the replica's
/// session). Nothing in the handshake shows it; had the replica gone on under its identity, it
/// would have issued the same dots and version counters again for new writes, and one write of
/// each pair would have been lost. Opened under a new boot of its machine, it takes a new
/// identity first; the other replica pushes the lost writes back.
@Suite("Power cut and store restore together", .serialized)
struct PowerCutAndRestoreTests {
    @Test func writesForgottenByTheReplicaAndTheStoreComeBackAndNewWritesKeepTheirOwn() async throws {
        let directory = TemporaryDirectory()
        let executable = try builtExecutable("WeftCrashWriter")
        let live = directory.path("central.sqlite")
        let first = try await RunningServer.start(store: try SQLiteCentralStore(path: live), policy: .crdt)
        let clientPath = directory.path("client.sqlite")
        var configuration = ReplicaConfiguration()
        configuration.conflictResolution = .crdt
        configuration.durability = .normal
        func engine(_ replica: Replica, _ server: RunningServer) -> SyncEngine {
            SyncEngine(replica: replica, transport: HTTPTransport(baseURL: server.baseURL, database: SyncCrashTests.database, token: RunningServer.writeToken))
        }
        do {
            let client = try await Replica.open(path: clientPath, configuration: configuration, boot: "boot-1")
            _ = try await engine(client, first).syncOnce()
        }
        let other = try await Replica(storage: try SQLiteReplicaStorage(path: directory.path("other.sqlite")), configuration: configuration)
        _ = try await engine(other, first).syncOnce()
        try IdentityTests.copy(live, to: directory.path("backup.sqlite"))

        // The client writes and syncs, and its power is cut after its third push is answered.
        let run = try await SyncCrashTests.runChild(
            executable, path: clientPath, baseURL: first.baseURL, seed: 7, run: 0, trigger: .afterPush(3), fallbackMilliseconds: 8_000,
            stderrPath: directory.path("stderr.txt"), powerLoss: .normal, boot: "boot-1")
        #expect(run.killed)
        #expect(!run.synced.isEmpty, "no write reached the server before the cut: \(run.lines.suffix(5))")
        _ = try await engine(other, first).syncOnce()  // the other replica has them
        await first.stop()

        // The store comes back from the backup; the client's machine restarts.
        try IdentityTests.copy(directory.path("backup.sqlite"), to: directory.path("restored.sqlite"))
        let restored = try await RunningServer.start(store: try SQLiteCentralStore(path: directory.path("restored.sqlite")), policy: .crdt)
        defer { Task { await restored.stop() } }
        let client = try await Replica.open(path: clientPath, configuration: configuration, boot: "boot-2")
        // The client's session is accepted (the restored store remembers the session the file
        // does), so its next writes are made under its replica identity.
        _ = try await engine(client, restored).syncOnce()
        var after = [SyncCrashTests.Write]()
        for k in 0..<SyncCrashTests.documentCount {
            let write = SyncCrashTests.Write(field: "after\(k)", document: k, amount: Int64(10 + k))
            try await client.collection(SyncCrashTests.collectionName).upsert("c\(k)") { editor in
                editor.increment("n", by: write.amount)
                editor.set(write.field, to: .int(write.amount))
            }
            after.append(write)
        }
        let engines = [engine(client, restored), engine(other, restored)]
        for _ in 0..<10 {
            var moved = 0
            for engine in engines {
                let report = try await engine.syncOnce()
                moved += report.pushed + report.pulled
            }
            if moved == 0 { break }
        }

        for k in 0..<SyncCrashTests.documentCount {
            let key = SyncCrashTests.key(k)
            let server = try await restored.store.record(database: SyncCrashTests.database, key: key)
            guard let body = server?.body else {
                #expect(run.synced.allSatisfy { $0.document != k } && after.allSatisfy { $0.document != k }, "c\(k) is missing")
                continue
            }
            var sum: Int64 = 0
            for field in body.keys where field != "n" { sum += body.int(field) ?? 0 }
            #expect(body.counter("n") == sum, "c\(k): counter \(String(describing: body.counter("n"))), registers sum to \(sum)")
            for write in run.synced + after where write.document == k {
                #expect(body.int(write.field) == write.amount, "c\(k): \(write.field) is lost")
            }
            for replica in [client, other] {
                let local = try await replica.record(key)
                #expect(local.map { FaultRun.sameVisible($0.body, body) } == true, "c\(k) differs on a replica")
            }
        }
    }
}
