import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite
import WeftServer
import WeftTesting

/// Issue #15, point 3 on the replica: old tombstones are forgotten, and the counter floors keep a
/// replica that writes a forgotten document again from issuing its old counters.
@Suite("Tombstone collection on replicas")
struct TombstoneCollectionTests {
    static let merge = CentralStoreContractTests.merge

    static let writer = ReplicaID(high: 7, low: 7)

    /// A record of `writer` after `writes` edits, deleted at `wall` if `deleted`.
    static func record(writes: Int, wall: UInt64, deleted: Bool, hidden: Bool = false) -> DocumentRecord {
        var body = Document()
        var version = VersionVector()
        for index in 0..<writes {
            body.set(
                "f", to: .int(Int64(index)),
                at: HLCTimestamp(wallMilliseconds: wall, counter: UInt32(index), replica: writer))
            version.increment(writer)
        }
        let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 1_000, replica: writer)
        if deleted && !hidden { body.removeField("f") }
        return DocumentRecord(body: body, deletion: LWWRegister(deleted, stamp: stamp), version: version)
    }

    @Test(
        "replica storage 9. old idle tombstones go, floors rise and persist, everything else stays",
        arguments: StorageKind.allCases)
    func storageContract(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let old = key("c", "old")  // collected
        let young = key("c", "young")  // deleted after the cutoff
        let live = key("c", "live")  // not deleted
        let hidden = key("c", "hidden")  // deleted, but holds a field
        let acknowledged = key("c", "acked")  // deleted here, pushed and acknowledged: collected
        let inFlight = key("c", "inflight")  // deleted, an older entry in a batch on the wire
        let waiting = key("c", "waiting")  // deleted, waiting to be pushed
        let other = key("d", "old")  // collected, in another collection
        _ = try await storage.applyRemoteChanges(
            [
                (old, Self.record(writes: 5, wall: 100, deleted: true)),
                (young, Self.record(writes: 9, wall: 2_000, deleted: true)),
                (live, Self.record(writes: 12, wall: 100, deleted: false)),
                (hidden, Self.record(writes: 11, wall: 100, deleted: true, hidden: true)),
                (other, Self.record(writes: 3, wall: 100, deleted: true)),
            ], through: 1, tag: 1, Self.merge)
        _ = try await storage.commitLocalWrites(reading: [acknowledged], maxQueueBytes: .max) { _ in
            [LocalWrite(key: acknowledged, record: Self.record(writes: 13, wall: 100, deleted: true))]
        }
        _ = try await storage.commitLocalWrites(reading: [inFlight], maxQueueBytes: .max) { _ in
            [LocalWrite(key: inFlight, record: Self.record(writes: 14, wall: 100, deleted: true))]
        }
        let batch = try await storage.nextBatch(maxBytes: .max, maxEntries: 10)
        #expect(batch.map(\.key) == [acknowledged, inFlight])
        // A newer write of `inflight` while its batch is on the wire: the older entry stays in flight.
        _ = try await storage.commitLocalWrites(reading: [inFlight, waiting], maxQueueBytes: .max) { _ in
            [
                LocalWrite(key: inFlight, record: Self.record(writes: 15, wall: 100, deleted: true)),
                LocalWrite(key: waiting, record: Self.record(writes: 16, wall: 100, deleted: true)),
            ]
        }
        try await storage.acknowledge(through: batch[0].sequence)

        // Steps of one record: the pass goes on from the last key looked at.
        var collected = [DocumentKey]()
        var after: DocumentKey?
        var steps = 0
        repeat {
            let step = try await storage.collectTombstones(
                deletedBefore: 1_000, countingFor: Self.writer, after: after, limit: 1)
            #expect(step.collected.count <= 1)
            collected += step.collected
            after = step.lastLooked
            steps += 1
        } while after != nil && steps < 100
        #expect(steps == 9, "one step per record (eight), and one that finds none left")
        #expect(collected == [acknowledged, old, other], "in key order")
        #expect(try await storage.record(for: waiting) != nil, "a tombstone waiting to be pushed stays")
        #expect(try await storage.record(for: old) == nil)
        #expect(try await storage.record(for: young) != nil)
        #expect(try await storage.record(for: live) != nil)
        #expect(try await storage.record(for: hidden) != nil, "a tombstone holding a hidden field stays")
        #expect(try await storage.record(for: inFlight) != nil, "a tombstone with an entry in flight stays")
        var floors = try await storage.counterFloors()
        #expect(floors[try CollectionName("d")] == 3)
        #expect(floors[try CollectionName("c")] == 13, "the highest counter among c's collected tombstones")

        // A second pass finds nothing more; floors never go down.
        let again = try await storage.collectTombstones(
            deletedBefore: 1_000, countingFor: Self.writer, after: nil, limit: 100)
        #expect(again.collected.isEmpty)
        _ = try await storage.applyRemoteChanges(
            [(key("d", "small"), Self.record(writes: 1, wall: 100, deleted: true))], through: 2, tag: 2,
            Self.merge)
        _ = try await storage.collectTombstones(
            deletedBefore: 1_000, countingFor: Self.writer, after: nil, limit: 100)
        floors = try await storage.counterFloors()
        #expect(floors[try CollectionName("d")] == 3, "a lower counter leaves the floor where it was")

        // Nothing is collected during a resync.
        _ = try await storage.applyRemoteChanges(
            [(key("e", "x"), Self.record(writes: 2, wall: 100, deleted: true))], through: 3, tag: 3,
            Self.merge)
        try await storage.beginResync()
        let during = try await storage.collectTombstones(
            deletedBefore: 1_000, countingFor: Self.writer, after: nil, limit: 100)
        #expect(during.collected.isEmpty && during.lastLooked == nil)
        #expect(try await storage.record(for: key("e", "x")) != nil)

        if kind == .sqlite {
            let reopened = try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
            #expect(try await reopened.counterFloors() == floors)
        }
    }

    @Test("floors are the join with a floor record: idempotent, monotone, and the next counter passes them")
    func floorLaws() throws {
        let other = ReplicaID(high: 1, low: 2)
        var record = Self.record(writes: 3, wall: 10, deleted: false)
        #expect(record.highestCounter(of: Self.writer) == 3)
        let before = record
        record.reserveCounters(of: Self.writer, through: 2)
        #expect(record == before, "a floor below the record's counters changes nothing")
        record.reserveCounters(of: Self.writer, through: 40)
        #expect(record.highestCounter(of: Self.writer) == 40)
        #expect(record.body.int("f") == 2, "the record keeps what it holds")
        var twice = record
        twice.reserveCounters(of: Self.writer, through: 40)
        #expect(twice == record)
        // Commutes with merge.
        var x = before
        x.merge(Self.record(writes: 1, wall: 20, deleted: false))
        x.reserveCounters(of: Self.writer, through: 40)
        var y = record
        y.merge(Self.record(writes: 1, wall: 20, deleted: false))
        #expect(x == y)
        // The next dot and version entry pass the floor.
        var body = record.body
        body.set("g", to: .int(1), at: HLCTimestamp(wallMilliseconds: 30, counter: 0, replica: Self.writer))
        #expect(body.context.vector[Self.writer] == 41)
        #expect(record.highestCounter(of: other) == 0)
    }

    /// The silent loss floors prevent: replica A wrote a document, deleted it, forgot the
    /// tombstone and created the document again. Replica B and the server still hold the
    /// tombstone, which counts A's first writes; without floors A's new writes reuse those
    /// counters and everyone else drops them.
    @Test(
        "a document created again after its tombstone was forgotten keeps its new writes everywhere",
        arguments: StorageKind.allCases)
    func recreationAfterCollection(_ kind: StorageKind) async throws {
        let time = ManualTimeSource()
        let service = SyncService(store: MemoryCentralStore(), timeSource: time)
        let directoryA = TemporaryDirectory()
        let directoryB = TemporaryDirectory()
        var configuration = ReplicaConfiguration()
        configuration.tombstoneRetentionMilliseconds = 60_000
        let a = try await Replica(
            storage: try kind.make(directoryA), configuration: configuration, timeSource: time)
        let b = try await Replica(
            storage: try kind.make(directoryB), configuration: configuration, timeSource: time)
        let engineA = SyncEngine(replica: a, transport: InProcessTransport(service: service, database: "db"))
        let engineB = SyncEngine(replica: b, transport: InProcessTransport(service: service, database: "db"))
        await engineA.setTombstoneCollectionInterval(.zero)
        // Confirmed sessions first: the writes below are made as A's identity, whose counters
        // the floor keeps (before that, a session identity's).
        try await engineA.syncOnce()
        try await engineB.syncOnce()
        let pumps = try a.collection("pumps")
        try await pumps.create("p1") { $0.set("model", to: .string("old")) }
        for visit in 1...4 { try await pumps.update("p1") { $0.set("visits", to: .int(Int64(visit))) } }
        try await engineA.syncOnce()
        try await engineB.syncOnce()
        try await pumps.delete("p1")
        try await engineA.syncOnce()
        try await engineB.syncOnce()
        let tombstone = try #require(try await b.record(key("pumps", "p1")))
        #expect(tombstone.isDeleted)

        // Young: kept.
        try await engineA.syncOnce()
        #expect(try await a.record(key("pumps", "p1")) != nil)
        // Past the retention: forgotten by A (B keeps its own; it has not collected).
        time.advance(by: 120_000)
        try await engineA.syncOnce()
        #expect(try await a.record(key("pumps", "p1")) == nil, "A forgot the tombstone")
        #expect(try await b.record(key("pumps", "p1")) != nil)

        try await pumps.create("p1") { $0.set("model", to: .string("new")) }
        let recreated = try #require(try await a.record(key("pumps", "p1")))
        #expect(recreated.highestCounter(of: a.replicaID) > tombstone.highestCounter(of: a.replicaID))
        try await engineA.syncOnce()
        try await engineB.syncOnce()
        try await engineA.syncOnce()
        #expect(try await b.collection("pumps").get("p1")?.string("model") == "new", "B holds A's new write")
        #expect(try await a.collection("pumps").get("p1")?.string("model") == "new")
        let server = try await service.store.record(database: "db", key: key("pumps", "p1"))
        #expect(server?.body.string("model") == "new" && server?.isDeleted == false)

        // B writes too; both converge.
        try await b.collection("pumps").update("p1") { $0.set("visits", to: .int(9)) }
        try await engineB.syncOnce()
        try await engineA.syncOnce()
        #expect(try await a.record(key("pumps", "p1")) == (try await b.record(key("pumps", "p1"))))
    }
}
