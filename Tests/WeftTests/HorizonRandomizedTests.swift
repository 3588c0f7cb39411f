import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite
import WeftServer
import WeftTesting

/// Issue #15, point 3, at random: three SQLite replicas and a SQLite server on one manual clock,
/// random set insertions, deletes and re-creations of a few documents, replicas that go away for
/// longer than `tombstone_retention_ms` with writes of their own, and tombstones forgotten by
/// the server and by replicas along the way. Against a model of what must survive: an insertion
/// no delete had seen is on the server, or set aside in its replica's dead letters (the rule
/// for writes to documents deleted and forgotten while their replica was away); one a delete had
/// seen is gone; dead letters come only from replicas that were away; everyone converges.
/// `WEFT_HORIZON_OPS` sets the number of steps (default 1,500), `WEFT_HORIZON_SEED` replays one.
@Suite("Randomized tombstone collection and replicas back after the horizon")
struct HorizonRandomizedTests {
    struct Edit {
        /// An insertion into a document this replica shows as deleted (or does not hold) creates it
        /// again: it removes every field the replica had seen, as a delete does.
        enum Kind {
            case insert(String, recreates: Bool)
            case delete
        }
        let id: Int
        let replica: Int
        let document: DocumentKey
        let kind: Kind
        /// The edits of this document its replica had seen before it.
        let past: Set<Int>
    }

    static let retention: UInt64 = 1_000

    @Test func nothingIsLostAndNothingComesBack() async throws {
        let seed =
            ProcessInfo.processInfo.environment["WEFT_HORIZON_SEED"].flatMap(UInt64.init)
            ?? UInt64.random(in: 0...UInt64.max)
        let steps = ProcessInfo.processInfo.environment["WEFT_HORIZON_OPS"].flatMap(Int.init) ?? 1_500
        print("HorizonRandomizedTests: seed \(seed) (WEFT_HORIZON_SEED=\(seed) replays it), \(steps) steps")
        var random = SplitMix64(seed: seed)
        let directory = TemporaryDirectory()
        let time = ManualTimeSource(milliseconds: SystemTimeSource().currentMilliseconds())
        let service = SyncService(
            store: try SQLiteCentralStore(path: directory.path("central.sqlite")), timeSource: time)
        var configuration = ReplicaConfiguration()
        configuration.tombstoneRetentionMilliseconds = Self.retention
        var replicas = [Replica]()
        var engines = [SyncEngine]()
        for index in 0..<3 {
            let replica = try await Replica.open(
                path: directory.path("r\(index).sqlite"), configuration: configuration, timeSource: time)
            let engine = SyncEngine(
                replica: replica, transport: InProcessTransport(service: service, database: "db"))
            await engine.setTombstoneCollectionInterval(.zero)
            replicas.append(replica)
            engines.append(engine)
        }
        let documents = (0..<5).map { key("items", "d\($0)") }
        var edits = [Edit]()
        var seen = Array(repeating: [DocumentKey: Set<Int>](), count: 3)
        var serverSeen = [DocumentKey: Set<Int>]()
        var away = [false, false, false]
        var wentAway = [false, false, false]
        var forgotten = (server: 0, replicas: 0)

        func sync(_ index: Int) async throws {
            _ = try await engines[index].syncOnce()
            for (document, known) in seen[index] { serverSeen[document, default: []].formUnion(known) }
            for (document, known) in serverSeen { seen[index][document, default: []].formUnion(known) }
        }

        for step in 0..<steps {
            let who = Int.random(in: 0..<3, using: &random)
            let roll = Int.random(in: 0..<100, using: &random)
            time.advance(by: UInt64.random(in: 1...20, using: &random))
            switch roll {
            case 0..<40:
                let document = documents.randomElement(using: &random) ?? documents[0]
                let collection = try replicas[who].collection("items")
                let live = try await collection.get(document.id.rawValue) != nil
                let kind: Edit.Kind
                if live && Int.random(in: 0..<4, using: &random) == 0 {
                    try await collection.delete(document.id.rawValue)
                    kind = .delete
                } else {
                    let token = "t\(step)-\(who)"
                    try await collection.upsert(document.id.rawValue) {
                        $0.insert(.string(token), intoSet: "tags")
                    }
                    kind = .insert(token, recreates: !live)
                }
                let edit = Edit(
                    id: edits.count, replica: who, document: document, kind: kind,
                    past: seen[who][document] ?? [])
                edits.append(edit)
                seen[who][document, default: []].insert(edit.id)
            case 40..<70:
                if !away[who] { try await sync(who) }
            case 70..<75:
                // Away (no syncs) or back; at most two away at once.
                if away[who] {
                    away[who] = false
                } else if away.filter({ $0 }).count < 2 {
                    away[who] = true
                    wentAway[who] = true
                }
            case 75..<80:
                // A long time passes: past the horizon.
                time.advance(by: Self.retention + UInt64.random(in: 1...500, using: &random))
            case 80..<88:
                forgotten.server += try await service.collectTombstones(retention: Self.retention)
            default:
                if !away[who] { forgotten.replicas += try await replicas[who].collectTombstones() }
            }
        }
        // Everyone comes back and syncs until nothing moves.
        for _ in 0..<3 { for index in 0..<3 { try await sync(index) } }
        let collectedThrough = try await service.store.collectedThrough(database: "db")
        var setAside = 0
        var letters = [[DeadLetter]]()
        for (index, replica) in replicas.enumerated() {
            let dead = try await replica.deadLetters(limit: 10_000)
            letters.append(dead)
            setAside += dead.count
            #expect(
                dead.isEmpty || wentAway[index],
                "r\(index) set writes aside without going away (seed \(seed))")
            #expect(
                dead.allSatisfy {
                    [Replica.forgottenWhileAway, Replica.createdAgainWhileAway].contains($0.reason)
                }, "(seed \(seed))")
            #expect(
                try await replica.queuedChanges().isEmpty, "r\(index) still has queued changes (seed \(seed))"
            )
        }
        print(
            "HorizonRandomizedTests: \(edits.count) edits, tombstones forgotten by the server \(forgotten.server) (through \(collectedThrough)) "
                + "and by replicas \(forgotten.replicas), \(setAside) writes set aside")

        for document in documents {
            let server = try await service.store.record(database: "db", key: document)
            // Every replica shows what the server shows (a tombstone the server forgot may stay).
            for (index, replica) in replicas.enumerated() {
                let shown = try await replica.collection("items").get(document.id.rawValue)
                let expected = server.flatMap { $0.isDeleted ? nil : $0.body }
                #expect(
                    shown?.set("tags") == expected?.set("tags"),
                    "r\(index) shows other tags than the server on \(document) (seed \(seed))")
            }
            let tags = server.flatMap { $0.isDeleted ? nil : $0.body.set("tags") } ?? []
            for edit in edits where edit.document == document {
                guard case .insert(let token, _) = edit.kind else { continue }
                let removed = edits.contains { other in
                    guard other.document == document, other.past.contains(edit.id) else { return false }
                    switch other.kind {
                    case .delete, .insert(_, recreates: true): return true
                    case .insert: return false
                    }
                }
                let present = tags.contains(.string(token))
                if removed {
                    #expect(
                        !present,
                        "\(document): token \(token) came back after a delete that had seen it (seed \(seed))"
                    )
                } else if !present {
                    // Not on the server: the document is deleted (a later delete won the flag), or
                    // the write was set aside.
                    let aside = letters[edit.replica].contains {
                        $0.key == document && $0.record.body.set("tags")?.contains(.string(token)) == true
                    }
                    let deleted = server?.isDeleted ?? true
                    #expect(aside || deleted, "\(document): token \(token) is lost (seed \(seed))")
                    if !(aside || deleted) {
                        for other in edits where other.document == document {
                            print(
                                "HorizonRandomizedTests: \(document) edit \(other.id) by r\(other.replica) \(other.kind) past \(other.past.sorted())"
                            )
                        }
                        print("HorizonRandomizedTests: server tags \(tags.map { "\($0)" }.sorted())")
                    }
                }
            }
        }
    }
}
