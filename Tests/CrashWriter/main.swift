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

import Foundation
import Weft
import WeftCRDT
import WeftSQLite

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
        let made = try await Replica(storage: storage)
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

let arguments = CommandLine.arguments
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
    let replica = try await Replica.open(path: path, configuration: ReplicaConfiguration(durability: durability))
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
