import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Crash safety of the SQLite replica: a child process (`WeftCrashWriter`, Tests/CrashWriter)
/// writes in a loop and is killed with SIGKILL at a random moment; the test then opens the
/// database and checks that nothing acknowledged was lost, nothing was half-applied, and the
/// offline queue still matches the documents exactly.
///
/// Rounds reuse one database file, so each round also recovers the previous round's crash.
/// `WEFT_CRASH_ROUNDS` sets the number of rounds (default 50), `WEFT_CRASH_SEED` the seed (printed
/// on every run, so a failure can be replayed).
@Suite("Crash recovery (SIGKILL of a writing process)")
struct CrashTests {
    /// The operation rule, duplicated verbatim from Tests/CrashWriter/main.swift.
    enum CrashOps {
        static let documentCount = 17

        static func mix(_ seed: UInt64, _ i: Int) -> UInt64 {
            var z = seed &+ UInt64(truncatingIfNeeded: i) &* 0x9E37_79B9_7F4A_7C15 &+ 0x6A09_E667_F3BC_C909
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }

        static func isDelete(_ seed: UInt64, _ i: Int) -> Bool { mix(seed, i) % 11 == 0 }
    }

    /// The exact state the writer's first `count` writes produce: a replay of the operation rule.
    struct Model {
        let seed: UInt64
        private(set) var count = 0
        var touched = [Bool](repeating: false, count: CrashOps.documentCount)
        var live = [Bool](repeating: false, count: CrashOps.documentCount)
        /// The `i` of every "w<i>" field of each live document.
        var fields = [[Int]](repeating: [], count: CrashOps.documentCount)
        /// The expected value of counter "count" of each live document.
        var counter = [Int](repeating: 0, count: CrashOps.documentCount)
        /// Whether write `i` was a delete, for every write replayed.
        var deletes = [Bool]()

        init(seed: UInt64) { self.seed = seed }

        mutating func advance(to target: Int) {
            while count < target {
                let i = count
                let k = i % CrashOps.documentCount
                touched[k] = true
                if live[k] && CrashOps.isDelete(seed, i) {
                    live[k] = false
                    fields[k] = []
                    counter[k] = 0
                    deletes.append(true)
                } else {
                    if !live[k] {
                        // An upsert of a deleted document re-creates it empty.
                        fields[k] = []
                        counter[k] = 0
                    }
                    live[k] = true
                    fields[k].append(i)
                    counter[k] += 1
                    deletes.append(false)
                }
                count += 1
            }
        }
    }

    struct Ack: Equatable {
        let index: Int
        let isDelete: Bool
        let document: String
    }

    struct WriterRun {
        var start: Int?
        var acks: [Ack]
        var malformed: [String]
        var killed: Bool
        var stderr: String
    }

    static func environmentInt(_ name: String) -> Int? {
        ProcessInfo.processInfo.environment[name].flatMap { Int($0) }
    }

    /// The `WeftCrashWriter` executable, built next to the test bundle by `swift build --build-tests`.
    static func writerExecutable() throws -> URL { try builtExecutable("WeftCrashWriter") }

    /// Runs the writer for `milliseconds`, kills it with SIGKILL and returns what it printed.
    static func runWriter(
        _ executable: URL, path: String, seed: UInt64, durability: Durability, milliseconds: Int, powerLoss: Bool = false
    ) async throws -> WriterRun {
        let process = Process()
        process.executableURL = executable
        process.arguments = [path, String(seed), durability.rawValue]
        if powerLoss {
            // The power-loss VFS: the kill then loses whatever SQLite had not synced.
            process.environment = ProcessInfo.processInfo.environment.merging(["WEFT_POWER_LOSS_VFS": "1"]) { $1 }
        }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        try await Task.sleep(for: .milliseconds(milliseconds))
        var killed = false
        if process.isRunning {
            killed = kill(process.processIdentifier, SIGKILL) == 0
        }
        // The pipe may hold at most 64 KiB; a writer blocked on a full pipe is simply a writer
        // whose next ack is not yet printed, which the checks allow for.
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        killed = killed && process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL

        var run = WriterRun(start: nil, acks: [], malformed: [], killed: killed, stderr: stderr)
        var text = String(decoding: printed, as: UTF8.self)
        if !text.isEmpty && !text.hasSuffix("\n") {
            // Each line is one write(2) of a few bytes, atomic on a pipe: a partial line is a bug.
            run.malformed.append("unterminated last line: \(text.split(separator: "\n").last ?? "")")
            text = String(text[..<(text.lastIndex(of: "\n").map { text.index(after: $0) } ?? text.startIndex)])
        }
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.count == 2, words[0] == "start", let n = Int(words[1]) {
                run.start = n
            } else if words.count == 4, words[0] == "ack", let i = Int(words[1]), words[2] == "upsert" || words[2] == "delete" {
                run.acks.append(Ack(index: i, isDelete: words[2] == "delete", document: String(words[3])))
            } else {
                run.malformed.append(String(line))
            }
        }
        return run
    }

    /// Checks the database against `model` (advanced to the number of committed writes) and
    /// returns that number, or records issues and returns nil.
    ///
    /// With `lossAllowed` (a power cut under `durability = "normal"`), acknowledged writes may be
    /// missing, but only from the end: the writes committed are still a prefix of the writes
    /// made, at least every write committed before the round.
    static func check(
        path: String, model: inout Model, acked: Int, run: WriterRun, replicaID: inout ReplicaID?, lossAllowed: Bool = false
    ) async throws -> Int? {
        let before = model.count
        var problems = [String]()

        let storage = try SQLiteReplicaStorage(path: path)
        // (a) The file is sound.
        let integrity = try await storage.integrityCheck()
        if integrity != ["ok"] { problems.append("integrity_check: \(integrity)") }
        // The replica (clock and metadata) opens; it never syncs, so it keeps one identity.
        var localOnly = ReplicaConfiguration()
        localOnly.sessionIdentities = false
        let replica = try await Replica(storage: storage, configuration: localOnly)
        let metadata = try await storage.metadata()
        if let known = replicaID, known != metadata.replicaID {
            problems.append("the replica id changed from \(known) to \(metadata.replicaID)")
        }

        let collection = try CollectionName("crash")
        let stored = try await storage.records(in: collection, where: DocumentFilter(includeDeleted: true), limit: nil)
        var records = [String: DocumentRecord]()
        for (id, record) in stored { records[id.rawValue] = record }
        let committed = stored.reduce(0) { $0 + Int($1.record.version[metadata.replicaID]) }
        if committed > 0 { replicaID = metadata.replicaID }
        for (id, record) in stored where Set(record.version.counters.keys) != [metadata.replicaID] {
            problems.append("\(id): version vector \(record.version) has entries of other replicas")
        }

        // The writer's view: it resumed after exactly the writes committed before this round,
        // and its acks are consecutive from there.
        if let start = run.start, start != before {
            problems.append("the writer resumed at write \(start) but \(before) writes were committed before the round")
        }
        for (offset, ack) in run.acks.enumerated() where ack.index != before + offset {
            problems.append("ack #\(offset) is for write \(ack.index), expected \(before + offset)")
            break
        }
        // (b) Every acknowledged write is present, and at most one more (the write in progress
        // when the writer was killed may have committed without its ack).
        if committed < before + acked && !lossAllowed {
            problems.append("LOST ACKED WRITES: \(before + acked) writes acknowledged in total, only \(committed) committed")
        }
        if committed < before {
            problems.append("LOST DURABLE WRITES: \(before) writes were committed before the round, only \(committed) now")
        }
        if committed > before + acked + 1 {
            problems.append("\(committed) writes committed, but only \(before + acked) were acknowledged (at most one more may be unacknowledged)")
        }
        guard problems.isEmpty else {
            Issue.record(Comment(rawValue: "crash check failed:\n" + problems.joined(separator: "\n")))
            return nil
        }

        model.advance(to: committed)
        for ack in run.acks where ack.index < committed {
            let expected = "d\(ack.index % CrashOps.documentCount)"
            if ack.document != expected || ack.isDelete != model.deletes[ack.index] {
                problems.append("ack \(ack.index) \(ack.isDelete ? "delete" : "upsert") \(ack.document) does not match the replay")
            }
        }

        // The documents are exactly the replay of the committed writes: no acked write lost, no
        // write half-applied, deletes and re-creations in place.
        for k in 0..<CrashOps.documentCount {
            let id = "d\(k)"
            guard let record = records.removeValue(forKey: id) else {
                if model.touched[k] { problems.append("\(id) is missing") }
                continue
            }
            guard model.touched[k] else {
                problems.append("\(id) exists but was never written")
                continue
            }
            if record.isDeleted != !model.live[k] {
                problems.append("\(id): deleted = \(record.isDeleted), expected \(!model.live[k])")
                continue
            }
            let expectedKeys = model.live[k] ? (["count"] + model.fields[k].map { "w\($0)" }).sorted() : []
            if record.body.keys != expectedKeys {
                let have = Set(record.body.keys)
                let want = Set(expectedKeys)
                problems.append(
                    "\(id): fields differ; missing \(want.subtracting(have).sorted().prefix(10)), unexpected \(have.subtracting(want).sorted().prefix(10))")
                continue
            }
            for i in model.fields[k] where record.body.int("w\(i)") != Int64(i) {
                problems.append("\(id): w\(i) = \(String(describing: record.body["w\(i)"])), expected \(i)")
            }
            if model.live[k], record.body.counter("count") != Int64(model.counter[k]) {
                problems.append(
                    "\(id): count = \(String(describing: record.body.counter("count"))), expected \(model.counter[k])")
            }
        }
        if !records.isEmpty { problems.append("unexpected documents: \(records.keys.sorted())") }

        // (c) The queue matches the documents: nothing was pushed, so each document has exactly
        // one (coalesced) entry, which stands for the stored record and counts its size.
        let entries = try await replica.queuedChanges()
        let byKey = Dictionary(grouping: entries, by: \.key)
        for (id, record) in stored {
            let key = DocumentKey(collection: collection, id: id)
            guard let mine = byKey[key], let first = mine.first else {
                problems.append("\(key) has a record but no queue entry (a change lost)")
                continue
            }
            if mine.count != 1 { problems.append("\(key) has \(mine.count) queue entries; nothing was pushed, so writes must coalesce into one") }
            if first.record != record { problems.append("\(key): its queue entry does not stand for the stored record") }
        }
        let documentKeys = Set(stored.map { DocumentKey(collection: collection, id: $0.id) })
        for key in byKey.keys where !documentKeys.contains(key) {
            problems.append("\(key) has a queue entry but no record")
        }
        var sum = 0
        for entry in entries {
            sum += entry.byteCount
            let size = QueueEntry.byteCount(key: entry.key, recordBytes: entry.record.encoded().count)
            if entry.byteCount != size { problems.append("entry \(entry.sequence): byteCount \(entry.byteCount), encoded size \(size)") }
        }
        let total = try await replica.queuedBytes()
        if total != sum { problems.append("queue_bytes = \(total) but the entries sum to \(sum)") }

        if !problems.isEmpty {
            Issue.record(
                Comment(rawValue: "crash check failed after \(committed) committed writes:\n" + problems.prefix(40).joined(separator: "\n")))
            return nil
        }
        return committed
    }

    @Test("SIGKILL at random moments loses no acknowledged write and keeps the queue in step")
    func killedWriterLosesNothingAcknowledged() async throws {
        let rounds = Self.environmentInt("WEFT_CRASH_ROUNDS") ?? 50
        let seed = Self.environmentInt("WEFT_CRASH_SEED").map { UInt64(truncatingIfNeeded: $0) }
            ?? UInt64.random(in: 0...UInt64(Int64.max))
        print("CrashTests: seed \(seed) (WEFT_CRASH_SEED=\(seed) replays it), \(rounds) rounds")
        let executable = try Self.writerExecutable()

        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("weft-crash-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("replica.sqlite").path

        var random = SplitMix64(seed: seed)
        var model = Model(seed: seed)
        var replicaID: ReplicaID?
        var totalAcks = 0
        var killedRuns = 0
        var durations = [Int]()
        let clock = ContinuousClock()
        let started = clock.now

        for round in 0..<rounds {
            let milliseconds = 20 + Int(random.next() % 281)
            let durability: Durability = random.next() % 2 == 0 ? .normal : .full
            durations.append(milliseconds)
            let run = try await Self.runWriter(
                executable, path: path, seed: seed, durability: durability, milliseconds: milliseconds)
            if !run.killed {
                Issue.record("round \(round): the writer was not killed by SIGKILL (it exited on its own?); stderr:\n\(run.stderr)")
                break
            }
            if !run.malformed.isEmpty {
                Issue.record("round \(round): malformed writer output: \(run.malformed.prefix(5))")
            }
            if run.killed { killedRuns += 1 }
            totalAcks += run.acks.count
            guard
                let committed = try await Self.check(
                    path: path, model: &model, acked: run.acks.count, run: run, replicaID: &replicaID)
            else {
                Issue.record("round \(round) (seed \(seed), \(durability), killed after \(milliseconds) ms, \(run.acks.count) acks) failed")
                break
            }
            _ = committed
        }
        let elapsed = clock.now - started
        print(
            "CrashTests: \(rounds) rounds in \(elapsed), \(totalAcks) acked writes, \(model.count) committed, "
                + "\(killedRuns) kills, run lengths \(durations.min() ?? 0)–\(durations.max() ?? 0) ms")
        // The run must have exercised something: most rounds acknowledge writes.
        #expect(totalAcks > rounds)
    }
}
