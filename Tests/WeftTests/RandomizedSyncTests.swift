import Foundation
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftSQLite
import WeftTesting
import WeftWire

/// Issue #13, end to end and at random: three replicas on SQLite files and a server on a SQLite
/// file, random edits (additions, removals, re-creations, kind changes, deletes, rollbacks,
/// counters, registers), four collections under four policies (CRDT join, last writer wins,
/// field rules, and a custom resolver the server lacks, so it keeps siblings), random syncs.
/// At the end every replica equals the server, and every edit a model says must survive is
/// there. `WEFT_E2E_OPS` sets the number of steps (default 3,000: about 2,400 edits), `WEFT_E2E_SEED` replays a run.
@Suite("Randomized sync against a model of what must survive")
struct RandomizedSyncTests {
    /// A transport that can be made to fail, for write-through rollbacks: with the network down,
    /// or losing the answers to pushes the server applied (the write escaped before its undo).
    final class Switchable: SyncTransport {
        enum Mode { case normal, down, losingAnswers }
        let inner: InProcessTransport
        let mode = Mutex(Mode.normal)
        init(_ inner: InProcessTransport) { self.inner = inner }
        private func check() throws(SyncError) {
            if mode.withLock({ $0 }) == .down { throw SyncError(.unavailable, "the network is down") }
        }
        func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse {
            try check()
            return try await inner.hello(request)
        }
        func push(_ request: PushRequest) async throws(SyncError) -> PushResponse {
            try check()
            let answer = try await inner.push(request)
            if mode.withLock({ $0 }) == .losingAnswers { throw SyncError(.unavailable, "the answer was lost") }
            return answer
        }
        func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse {
            try check()
            return try await inner.pull(request)
        }
    }

    /// The custom resolver: the larger quantity wins whole, ties by the bodies' bytes (a join).
    struct KeepMore: ConflictResolver {
        func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document {
            let (x, y) = (a.body.int("qty") ?? .min, b.body.int("qty") ?? .min)
            if x != y { return x > y ? a.body : b.body }
            return a.body.encoded().lexicographicallyPrecedes(b.body.encoded()) ? b.body : a.body
        }
    }

    /// One edit, as the model records it.
    struct Edit {
        enum Kind {
            case insert(token: String, path: String)
            case remove(token: String, path: String)
            case removeField(String)
            case kindChange(String)
            case increment(Int64)
            case resetCounter
            case register(String)
            case delete
            case recreate
            case rollback(of: Int)
            case lww(String)
            case peak(Int64)
            case stock
        }
        let id: Int
        let document: DocumentKey
        let kind: Kind
        /// The edits of this document its replica had seen before it.
        let past: Set<Int>
        let stamp: HLCTimestamp
    }

    static var steps: Int { ProcessInfo.processInfo.environment["WEFT_E2E_OPS"].flatMap(Int.init) ?? 3_000 }

    @Test func everyReplicaEqualsTheServerAndNoEditIsLost() async throws {
        let seed = ProcessInfo.processInfo.environment["WEFT_E2E_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 0...UInt64.max)
        print("RandomizedSyncTests: seed \(seed) (WEFT_E2E_SEED=\(seed) replays it), \(Self.steps) steps")
        var random = SplitMix64(seed: seed)
        let directory = TemporaryDirectory()
        let policies = ServerPolicies(
            defaultPolicy: .crdt,
            collections: ["status": .lastWriterWins, "readings": .fields(["peak": .max]), "stock": .custom(resolver: "keepMore")])
        let service = SyncService(store: try SQLiteCentralStore(path: directory.path("central.sqlite")), policies: policies)
        var resolvers = ResolverRegistry()
        resolvers.register("keepMore", KeepMore())
        var configuration = ReplicaConfiguration()
        configuration.syncMode = .writeThrough
        configuration.writeThroughFallback = .rollBack
        configuration.writeThroughTimeoutMilliseconds = 30_000
        // Tombstones are forgotten along the way (a replica's time moves 1 ms a step): the
        // model of what must survive holds all the same.
        configuration.tombstoneRetentionMilliseconds = 3
        // Indexes on every kind of field, kept through pulls, conflicts, rollbacks, resolutions,
        // forgotten tombstones and the server's field rule on `peak` (checked at the end).
        configuration.collectionIndexes = [
            "items": [.value("n"), .value("s"), .value("tags"), .members("tags"), .members("m.t")],
            "readings": [.value("peak"), .members("tags")], "status": [.value("state")], "stock": [.value("qty"), .members("bins")],
        ]
        let time = ManualTimeSource(milliseconds: SystemTimeSource().currentMilliseconds())
        var collected = 0
        var replicas = [Replica]()
        var engines = [SyncEngine]()
        var transports = [Switchable]()
        for index in 0..<3 {
            let replica = try await Replica.open(
                path: directory.path("r\(index).sqlite"), configuration: configuration, resolvers: resolvers, timeSource: time)
            let transport = Switchable(InProcessTransport(service: service, database: "db"))
            replicas.append(replica)
            transports.append(transport)
            engines.append(SyncEngine(replica: replica, transport: transport))
        }
        let items = (0..<4).map { key("items", "i\($0)") }
        let churn = (0..<4).map { key("items", "j\($0)") }
        let statuses = (0..<2).map { key("status", "s\($0)") }
        let readings = (0..<2).map { key("readings", "r\($0)") }
        let stock = (0..<2).map { key("stock", "k\($0)") }

        var edits = [Edit]()
        var seen = Array(repeating: [DocumentKey: Set<Int>](), count: 3)
        var serverSeen = [DocumentKey: Set<Int>]()
        var syncs = 0
        var rollbacks = 0

        func record(_ replica: Int, _ document: DocumentKey, _ kind: Edit.Kind) async throws -> Int {
            let stamp = try #require(try await replicas[replica].record(document)).lastStamp
            let edit = Edit(id: edits.count, document: document, kind: kind, past: seen[replica][document] ?? [], stamp: stamp)
            edits.append(edit)
            seen[replica][document, default: []].insert(edit.id)
            return edit.id
        }
        func sync(_ replica: Int) async throws {
            _ = try await engines[replica].syncOnce()
            syncs += 1
            for (document, known) in seen[replica] { serverSeen[document, default: []].formUnion(known) }
            for (document, known) in serverSeen { seen[replica][document, default: []].formUnion(known) }
            // The documents whose tombstones get forgotten are checked at every sync, against the
            // edits the server has: a later delete would hide a loss from the final check.
            for document in churn {
                guard let server = try await service.store.record(database: "db", key: document), !server.isDeleted else { continue }
                let known = serverSeen[document] ?? []
                Self.checkItem(document, body: server.body, history: edits.filter { $0.document == document && known.contains($0.id) }, seed: seed)
            }
        }
        func live(_ replica: Int, _ document: DocumentKey) async throws -> Document? {
            try await replicas[replica].collection(document.collection.rawValue).get(document.id.rawValue)
        }

        for _ in 0..<Self.steps {
            let who = Int.random(in: 0..<3, using: &random)
            let roll = Int.random(in: 0..<100, using: &random)
            time.advance(by: 1)
            if roll < 3 {
                collected += try await replicas[who].collectTombstones()
                continue
            }
            if roll < 15 {
                try await sync(who)
                continue
            }
            let replica = replicas[who]
            let token = "t\(edits.count)-\(who)"
            if roll < 21 {
                // Documents created, deleted and created again, whose tombstones get forgotten.
                let document = churn.randomElement(using: &random) ?? churn[0]
                let collection = try replica.collection("items")
                let current = try await live(who, document)
                let stored = try await replica.record(document)
                if current != nil && Bool.random(using: &random) {
                    try await collection.delete(document.id.rawValue)
                    _ = try await record(who, document, .delete)
                } else {
                    try await collection.upsert(document.id.rawValue) { $0.insert(.string(token), intoSet: "tags") }
                    if current == nil && stored != nil { _ = try await record(who, document, .recreate) }
                    _ = try await record(who, document, .insert(token: token, path: "tags"))
                }
                continue
            }
            if roll < 65 {
                let document = items.randomElement(using: &random) ?? items[0]
                let collection = try replica.collection("items")
                let id = document.id.rawValue
                let current = try await live(who, document)
                let stored = try await replica.record(document)
                // An upsert of a document deleted here re-creates it: it starts empty (every field
                // this replica sees is removed), then the edit applies.
                let deletedHere = current == nil && stored != nil
                func upsert(_ kind: Edit.Kind, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void) async throws {
                    try await collection.upsert(id, edit)
                    if deletedHere { _ = try await record(who, document, .recreate) }
                    _ = try await record(who, document, kind)
                }
                if deletedHere && Bool.random(using: &random) {
                    try await collection.upsert(id) { $0.increment("n", by: 0) }
                    _ = try await record(who, document, .recreate)
                    continue
                }
                switch Int.random(in: 0..<12, using: &random) {
                case 0, 1:
                    try await upsert(.insert(token: token, path: "tags")) { $0.insert(.string(token), intoSet: "tags") }
                case 2:
                    try await upsert(.insert(token: token, path: "m.t")) { editor in
                        editor.updateMap("m") { nested, stamp in nested.insert(.string(token), intoSet: "t", at: stamp) }
                    }
                case 3:
                    guard let element = current?.set("tags")?.sorted(by: { $0.description < $1.description }).first,
                        case .string(let existing) = element
                    else { continue }
                    try await collection.update(id) { $0.remove(element, fromSet: "tags") }
                    _ = try await record(who, document, .remove(token: existing, path: "tags"))
                case 4:
                    guard current != nil else { continue }
                    try await collection.update(id) { $0.removeField("tags") }
                    _ = try await record(who, document, .removeField("tags"))
                case 5:
                    guard current != nil else { continue }
                    try await collection.update(id) { $0.removeField("m") }
                    _ = try await record(who, document, .removeField("m"))
                case 6:
                    guard current != nil else { continue }
                    try await collection.update(id) { $0.set("tags", to: .string(token)) }
                    _ = try await record(who, document, .kindChange("tags"))
                case 7:
                    let amount = Int64.random(in: -3...5, using: &random)
                    try await upsert(.increment(amount)) { $0.increment("n", by: amount) }
                case 8:
                    guard current != nil, Int.random(in: 0..<3, using: &random) == 0 else { continue }
                    try await collection.update(id) { $0.removeField("n") }
                    _ = try await record(who, document, .resetCounter)
                case 9:
                    try await upsert(.register(token)) { $0.set("s", to: .string(token)) }
                case 10:
                    guard current != nil, Int.random(in: 0..<3, using: &random) == 0 else { continue }
                    try await collection.delete(id)
                    _ = try await record(who, document, .delete)
                default:
                    // A write-through write the server cannot confirm: rolled back.
                    guard current != nil else { continue }
                    let escapes = Bool.random(using: &random)
                    transports[who].mode.withLock { $0 = escapes ? .losingAnswers : .down }
                    do {
                        try await engines[who].collection("items").update(id) { $0.insert(.string(token), intoSet: "tags") }
                        Issue.record("a write-through write with the network down was confirmed")
                    } catch {
                        #expect(error.kind == .writeNotConfirmed, "\(error)")
                    }
                    transports[who].mode.withLock { $0 = .normal }
                    // The write and its undo, in that order, as the model sees them (if the write
                    // escaped to the server, the server has seen it; the undo removes it there too).
                    let write = Edit(id: edits.count, document: document, kind: .insert(token: token, path: "tags"), past: seen[who][document] ?? [], stamp: HLCTimestamp(wallMilliseconds: 0, counter: 0, replica: ReplicaID(high: 0, low: 0)))
                    edits.append(write)
                    seen[who][document, default: []].insert(write.id)
                    if escapes {
                        // A write-through write pushes the whole queue, so every edit this
                        // replica made (of any document) reached the server with it.
                        for (other, known) in seen[who] { serverSeen[other, default: []].formUnion(known) }
                    }
                    _ = try await record(who, document, .rollback(of: write.id))
                    rollbacks += 1
                }
            } else if roll < 75 {
                let document = statuses.randomElement(using: &random) ?? statuses[0]
                try await replica.collection("status").upsert(document.id.rawValue) { $0.set("state", to: .string(token)) }
                _ = try await record(who, document, .lww(token))
            } else if roll < 88 {
                let document = readings.randomElement(using: &random) ?? readings[0]
                if Bool.random(using: &random) {
                    let peak = Int64.random(in: -50...50, using: &random)
                    try await replica.collection("readings").upsert(document.id.rawValue) { $0.set("peak", to: .int(peak)) }
                    _ = try await record(who, document, .peak(peak))
                } else {
                    try await replica.collection("readings").upsert(document.id.rawValue) { $0.insert(.string(token), intoSet: "tags") }
                    _ = try await record(who, document, .insert(token: token, path: "tags"))
                }
            } else {
                let document = stock.randomElement(using: &random) ?? stock[0]
                let quantity = Int64.random(in: 0...5, using: &random)
                try await replica.collection("stock").upsert(document.id.rawValue) { editor in
                    editor.set("qty", to: .int(quantity))
                    editor.insert(.string(token), intoSet: "bins")
                }
                _ = try await record(who, document, .stock)
            }
        }
        // Everyone syncs until nothing moves.
        for _ in 0..<3 { for index in 0..<3 { try await sync(index) } }
        print("RandomizedSyncTests: \(edits.count) edits (\(rollbacks) rolled back), \(syncs) syncs, \(collected) tombstones forgotten")
        #expect(collected > 0 || Self.steps < 1_000, "the run forgot no tombstone")

        // 1. Every replica equals the server, and nothing waits.
        for document in items + churn + statuses + readings + stock {
            let server = try await service.store.record(database: "db", key: document)
            for (index, replica) in replicas.enumerated() {
                let held = try await replica.record(document)
                // A replica may have forgotten a tombstone the server still holds.
                if held == nil, let server, server.isDeleted, server.body.count == 0 { continue }
                #expect(held == server, "r\(index) differs from the server on \(document) (seed \(seed)): \(String(describing: held)) against \(String(describing: server))")
            }
            #expect(server?.holdsSiblings != true, "\(document) still holds siblings (seed \(seed))")
        }
        for (index, replica) in replicas.enumerated() {
            #expect(try await replica.queuedChanges().isEmpty, "r\(index) still has queued changes (seed \(seed))")
        }
        // The indexes agree with the documents as readers see them, and answer as a scan does.
        for (index, replica) in replicas.enumerated() {
            let storage = try #require(replica.storageForTests as? SQLiteReplicaStorage)
            #expect(try storage.indexDiscrepancies() == [], "r\(index) (seed \(seed))")
            for (collection, predicate) in [
                ("readings", Field("peak") >= 0), ("items", Field("n") > 0 || Field("tags").contains("x")),
                ("stock", !(Field("qty") == 3)), ("status", Field("state").exists),
            ] as [(String, DocumentPredicate)] {
                let documents = try replica.collection(collection)
                let answered = try await documents.query(predicate).documents.map(\.id)
                let scanned = try await documents.list().filter { predicate.matches($0.id, $0.document) }.map(\.id)
                #expect(answered == scanned, "r\(index) \(collection) \(predicate) (seed \(seed))")
                #expect(try documents.explain(DocumentQuery(predicate)).usesOnlyIndexes)
            }
        }
        // Honest replicas never claim writes the server has not seen.
        #expect(await service.limitedClaims == 0, "the server limited an honest replica's claims (seed \(seed))")

        // 2. What must survive.
        let byDocument = Dictionary(grouping: edits, by: \.document)
        for (document, history) in byDocument {
            guard let server = try await service.store.record(database: "db", key: document) else {
                Issue.record("\(document) was edited but the server has no record (seed \(seed))")
                continue
            }
            let shown = try await replicas[0].collection(document.collection.rawValue).get(document.id.rawValue)
            // A delete and a concurrent edit: the later wins.
            let stamped = history.filter { if case .rollback = $0.kind { return true }; return $0.stamp.wallMilliseconds > 0 }
            guard let latest = stamped.max(by: { $0.stamp < $1.stamp }) else { continue }
            if case .delete = latest.kind {
                #expect(server.isDeleted, "\(document): the latest edit deletes it (seed \(seed))")
                continue
            }
            #expect(!server.isDeleted, "\(document): the latest edit keeps it (seed \(seed))")
            guard let body = shown else { continue }
            switch document.collection.rawValue {
            case "status":
                if case .lww(let token) = latest.kind {
                    #expect(body.string("state") == token, "\(document): the latest write \(token) is not shown (seed \(seed))")
                }
            case "readings":
                // Every tag; the peak the rule shows among the writes no other write had seen.
                let peaks = history.filter { if case .peak = $0.kind { return true }; return false }
                let maximal = peaks.filter { edit in !peaks.contains { $0.past.contains(edit.id) } }
                let expected = maximal.compactMap { edit -> Int64? in if case .peak(let value) = edit.kind { return value }; return nil }.max()
                if let expected, body.int("peak") != expected {
                    Issue.record("\(document): peak \(body.int("peak").map(String.init) ?? "none"), expected \(expected) (seed \(seed))")
                    for edit in history { print("RandomizedSyncTests: \(document) edit \(edit.id) \(edit.kind) stamp \(edit.stamp) past \(edit.past.sorted())") }
                }
                for edit in history {
                    if case .insert(let token, _) = edit.kind {
                        #expect(body.set("tags")?.contains(.string(token)) == true, "\(document): tag \(token) lost (seed \(seed))")
                    }
                }
            case "items":
                Self.checkItem(document, body: body, history: history, seed: seed)
            default:
                break
            }
        }
    }

    /// The last edits of a document, for failure messages.
    static func describe(_ history: [Edit]) -> String {
        history.suffix(25).map { "#\($0.id) \($0.kind) at \($0.stamp) after \($0.past.count) edits (latest seen #\($0.past.max() ?? -1))" }
            .joined(separator: "\n")
    }

    /// The CRDT collection: every token not removed by an edit that had seen it is there; the
    /// counter adds up when nothing reset it; the register shows the latest write.
    static func checkItem(_ document: DocumentKey, body: Document, history: [Edit], seed: UInt64) {
        func removes(_ remover: Edit, _ insert: Edit, token: String, path: String) -> Bool {
            guard remover.past.contains(insert.id) else { return false }
            switch remover.kind {
            case .remove(let removed, let at): return removed == token && at == path
            case .removeField(let field), .kindChange(let field): return path == field || path.hasPrefix(field + ".")
            case .delete, .recreate: return true
            case .rollback(let of): return of == insert.id
            default: return false
            }
        }
        for edit in history {
            guard case .insert(let token, let path) = edit.kind else { continue }
            let removed = history.contains { removes($0, edit, token: token, path: path) }
            let present: Bool
            if path == "m.t" {
                present = body.map("m")?.set("t")?.contains(.string(token)) == true
            } else {
                present = body.set("tags")?.contains(.string(token)) == true
            }
            #expect(present == !removed, "\(document): token \(token) at \(path) is \(present ? "there" : "missing") but \(removed ? "was" : "was not") removed by an edit that had seen it (seed \(seed))")
        }
        let resets = history.contains { edit in
            switch edit.kind {
            case .resetCounter, .delete, .recreate: return true
            default: return false
            }
        }
        if !resets {
            let total = history.reduce(Int64(0)) { sum, edit in
                if case .increment(let amount) = edit.kind { return sum + amount }
                return sum
            }
            if history.contains(where: { if case .increment = $0.kind { return true }; return false }) {
                #expect(body.counter("n") == total, "\(document): the counter is \(String(describing: body.counter("n"))), the increments add up to \(total) (seed \(seed))")
            }
        }
        let writes = history.filter { if case .register = $0.kind { return true }; return false }
        if let latest = writes.max(by: { $0.stamp < $1.stamp }), case .register(let token) = latest.kind {
            let overwritten = history.contains { edit in
                guard edit.past.contains(latest.id) else { return false }
                switch edit.kind {
                case .delete, .recreate: return true
                default: return false
                }
            }
            if !overwritten {
                #expect(body.string("s") == token, "\(document): the latest write \(token) is not shown (seed \(seed))\n\(describe(history))\nbody: \(body)")
            }
        }
    }
}
