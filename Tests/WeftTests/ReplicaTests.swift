import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite
import WeftTesting

struct Pump: Codable, Equatable, Sendable {
    struct Site: Codable, Equatable, Sendable {
        var plant: String
        var floor: Int
    }
    var name: String
    var running: Bool
    var pressure: Double
    @Counter var starts: Int64
    var tags: Set<String>
    var site: Site
}

@Suite("Replica")
struct ReplicaTests {
    let pump = Pump(
        name: "P-7", running: true, pressure: 2.5, starts: 3, tags: ["north"], site: .init(plant: "A", floor: 2))

    func openSQLite(_ directory: TemporaryDirectory, _ configuration: ReplicaConfiguration = .init()) async throws -> Replica {
        try await Replica.open(path: directory.path("app.sqlite"), configuration: configuration)
    }

    @Test func createUpdateGetListDelete() async throws {
        let directory = TemporaryDirectory()
        let replica = try await openSQLite(directory)
        let orders = try replica.collection("orders")
        try await orders.create("o1") { $0.set("title", to: "Valve") }
        try await orders.create("o2") { $0.set("title", to: "Pump") }
        await #expect(throws: WeftError.self) { try await orders.create("o1") { $0.set("title", to: "again") } }
        try await orders.update("o1") { editor in
            editor.increment("visits", by: 2)
            editor.insert("urgent", intoSet: "tags")
        }
        let o1 = try #require(try await orders.get("o1"))
        #expect(o1.string("title") == "Valve" && o1.counter("visits") == 2 && o1.set("tags") == ["urgent"])
        #expect(try await orders.list().map(\.id.rawValue) == ["o1", "o2"])
        #expect(try await orders.list(where: DocumentFilter(fieldEquals: ("title", "Pump"))).map(\.id.rawValue) == ["o2"])
        try await orders.delete("o2")
        #expect(try await orders.get("o2") == nil)
        #expect(try await orders.list().map(\.id.rawValue) == ["o1"])
        do {
            try await orders.update("o2") { $0.set("title", to: "x") }
            Issue.record("updating a deleted document must fail")
        } catch {
            #expect(error.kind == .documentNotFound)
        }
        // The delete is a tombstone in the queue, and re-creating starts empty.
        let tombstone = try #require(try await replica.queuedChanges().last { $0.key.id.rawValue == "o2" })
        #expect(tombstone.record.isDeleted)
        try await orders.create("o2") { $0.set("status", to: "new") }
        let recreated = try #require(try await orders.get("o2"))
        #expect(recreated.keys == ["status"])
    }

    @Test func invalidArgumentsAreTypedErrors() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        #expect(throws: WeftError.self) { try replica.collection("") }
        #expect(throws: WeftError.self) { try replica.collection("has space") }
        let c = try replica.collection("c")
        await #expect(throws: WeftError.self) { try await c.upsert(String(repeating: "x", count: 300)) { _ in } }
        await #expect(throws: WeftError.self) { try await c.upsert("tab\there") { _ in } }
        await #expect(throws: WeftError.self) { try await Replica(storage: MemoryReplicaStorage(), configuration: .init(maxQueueBytes: 0)) }
    }

    @Test func typedDocumentsRoundTripAndMerge() async throws {
        let directory = TemporaryDirectory()
        let replica = try await openSQLite(directory)
        let pumps = try replica.collection("pumps")
        try await pumps.put("p7", pump)
        #expect(try await pumps.get("p7", as: Pump.self) == pump)
        try await pumps.update("p7", as: Pump.self) { value in
            value.starts += 1
            value.tags.insert("serviced")
            value.site.floor = 3
        }
        let updated = try #require(try await pumps.get("p7", as: Pump.self))
        #expect(updated.starts == 4 && updated.tags == ["north", "serviced"] && updated.site.floor == 3)
        // The mapping: counter, set, nested map, registers.
        let document = try #require(try await pumps.get("p7"))
        if case .counter? = document["starts"] {} else { Issue.record("starts must be a PN-counter") }
        if case .set? = document["tags"] {} else { Issue.record("tags must be an OR-set") }
        if case .map? = document["site"] {} else { Issue.record("site must be a nested map") }
        if case .register? = document["name"] {} else { Issue.record("name must be a register") }
    }

    @Test func anUnmappableFieldTypeIsAClearErrorAndWritesNothing() async throws {
        struct Route: Codable, Sendable {
            var name: String
            var stops: [Int: String]  // a dictionary not keyed by strings
        }
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let routes = try replica.collection("routes")
        do {
            try await routes.put("r1", Route(name: "north", stops: [1: "a", 2: "b"]))
            Issue.record("a dictionary keyed by integers must be refused")
        } catch {
            #expect(error.kind == .mapping && error.message.contains("stops"))
        }
        #expect(try await routes.get("r1") == nil)
        #expect(try await replica.queuedBytes() == 0)
    }

    @Test func writesToOneDocumentCoalesceIntoOneEntry() async throws {
        let directory = TemporaryDirectory()
        let replica = try await openSQLite(directory)
        let sensors = try replica.collection("sensors")
        for reading in 0..<200 {
            try await sensors.upsert("s1") { editor in
                editor.set("last", to: .int(Int64(reading)))
                editor.increment("count")
            }
        }
        let entries = try await replica.queuedChanges()
        #expect(entries.count == 1)
        let stored = try #require(try await replica.record(DocumentKey(collection: try CollectionName("sensors"), id: try DocumentID("s1"))))
        #expect(entries[0].record == stored, "the coalesced entry stands for the whole document")
        #expect(stored.body.counter("count") == 200 && stored.body.int("last") == 199)
        #expect(stored.version[await replica.writerID] == 200)
    }

    @Test func aWriteDuringAnInFlightPushGetsItsOwnEntryAndSurvivesTheAck() async throws {
        let storage = MemoryReplicaStorage()
        let replica = try await Replica(storage: storage)
        let c = try replica.collection("c")
        try await c.upsert("d") { $0.set("v", to: 1) }
        let batch = await storage.nextBatch(maxBytes: 1 << 20, maxEntries: 10)
        try await c.upsert("d") { $0.set("v", to: 2) }
        await storage.acknowledge(through: batch.last?.sequence ?? 0)
        let left = try await replica.queuedChanges()
        #expect(left.count == 1 && left[0].record.body.int("v") == 2)
    }

    @Test func aWritePastMaxQueueBytesIsRefusedWithSizeAndLimit() async throws {
        let directory = TemporaryDirectory()
        let replica = try await openSQLite(directory, ReplicaConfiguration(maxQueueBytes: 600))
        let c = try replica.collection("c")
        var written = 0
        var refusal: WeftError?
        for index in 0..<100 {
            do {
                try await c.create("d\(index)") { $0.set("payload", to: .string(String(repeating: "x", count: 50))) }
                written += 1
            } catch {
                refusal = error
                break
            }
        }
        let error = try #require(refusal)
        #expect(error.kind == .queueFull && error.queueLimit == 600)
        #expect(error.queueBytes == (try await replica.queuedBytes()))
        #expect(try await c.get("d\(written)") == nil, "the refused document was not written")
        #expect(try await replica.queuedChanges().count == written, "nothing already queued was dropped")
        #expect(try await replica.queuedBytes() <= 600)
        // Reads and updates that fit still work.
        #expect(try await c.get("d0") != nil)
    }

    @Test func observersSeeLocalChanges() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let stream = await replica.changes()
        let c = try replica.collection("c")
        try await c.create("a") { $0.set("x", to: 1) }
        try await c.update("a") { $0.set("x", to: 2) }
        try await c.delete("a")
        var seen = [ReplicaChange]()
        for await change in stream {
            seen.append(change)
            if seen.count == 3 { break }
        }
        #expect(seen.map(\.key.id.rawValue) == ["a", "a", "a"])
        #expect(seen.map(\.isDeleted) == [false, false, true])
        #expect(seen.allSatisfy { $0.origin == .local })
        #expect(seen[0].stamp < seen[1].stamp && seen[1].stamp < seen[2].stamp)
    }

    @Test func aBatchIsAllOrNothing() async throws {
        let directory = TemporaryDirectory()
        let replica = try await openSQLite(directory)
        try await replica.batch { batch in
            for index in 0..<50 { try batch.upsert("readings", "r\(index)") { $0.set("v", to: .int(Int64(index))) } }
        }
        #expect(try await replica.collection("readings").list().count == 50)
        let before = try await replica.queuedChanges()
        do {
            try await replica.batch { batch in
                try batch.upsert("readings", "new") { $0.set("v", to: 1) }
                try batch.create("readings", "r3") { $0.set("v", to: 1) }  // exists: the batch fails
            }
            Issue.record("the batch must fail")
        } catch let error as WeftError {
            #expect(error.kind == .documentExists)
        }
        #expect(try await replica.collection("readings").get("new") == nil)
        #expect(try await replica.queuedChanges() == before)
    }

    /// A batch that writes documents several times: each write edits what the one before it
    /// left, and each document keeps one queue entry. Two documents stay under the eight keys
    /// searched in place; forty are numbered through a hash table.
    @Test(arguments: [2, 40])
    func aBatchWritingDocumentsSeveralTimesChainsTheWrites(documents: Int) async throws {
        let directory = TemporaryDirectory()
        let replica = try await openSQLite(directory)
        let c = try replica.collection("c")
        try await c.upsert("k0") { $0.increment("n", by: 100) }  // stored before, and queued
        try await replica.batch { batch in
            for round in 0..<3 {
                for index in 0..<documents {
                    try batch.upsert("c", "k\(index)") { editor in
                        editor.increment("n")
                        editor.set("last", to: .int(Int64(round)))
                    }
                }
            }
            try batch.delete("c", "k1")
        }
        for index in 0..<documents {
            let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID("k\(index)"))
            let record = try #require(try await replica.record(key))
            if index == 1 {
                #expect(record.isDeleted)
                #expect(record.version[await replica.writerID] == 4)
            } else {
                #expect(!record.isDeleted)
                #expect(record.body.counter("n") == (index == 0 ? 103 : 3))
                #expect(record.body.int("last") == 2)
                #expect(record.version[await replica.writerID] == (index == 0 ? 4 : 3))
            }
        }
        let entries = try await replica.queuedChanges()
        #expect(entries.count == documents, "one entry per document")
        #expect(Set(entries.map(\.key.id.rawValue)) == Set((0..<documents).map { "k\($0)" }))
        for entry in entries { #expect(try await replica.record(entry.key) == entry.record) }
    }

    @Test func keysAreNumberedInOrderOfFirstAppearance() throws {
        // Short lists, long ones, and more keys than the capacity hint said (a list outgrowing
        // its in-place search).
        for (count, capacity) in [(5, 5), (50, 50), (50, 0)] {
            // Every key comes back once, so keys numbered after a switch to hashing are looked up
            // again too.
            let keys = try (0..<count).map { index in
                DocumentKey(collection: try CollectionName("c"), id: try DocumentID("k\(index % (count / 2 + 1))"))
            }
            var numbering = KeyNumbering(capacity: capacity)
            let numbers = keys.map { numbering.number(of: $0) }
            var expected = [DocumentKey: Int]()
            for key in keys where expected[key] == nil { expected[key] = expected.count }
            #expect(numbers == keys.map { expected[$0] ?? -1 })
            #expect(numbering.count == expected.count)
        }
    }

    @Test func concurrentWritesToOneDocumentLoseNothing() async throws {
        let directory = TemporaryDirectory()
        let replica = try await openSQLite(directory)
        let c = try replica.collection("c")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for step in 0..<25 {
                        try await c.upsert("shared") { editor in
                            editor.increment("n")
                            editor.set("t\(task)", to: .int(Int64(step)))
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let document = try #require(try await c.get("shared"))
        #expect(document.counter("n") == 200)
        #expect((0..<8).allSatisfy { document.int("t\($0)") == 24 })
        let entries = try await replica.queuedChanges()
        var joined = try #require(entries.first?.record)
        for entry in entries.dropFirst() { joined.merge(entry.record) }
        #expect(joined == (try await replica.record(DocumentKey(collection: try CollectionName("c"), id: try DocumentID("shared")))))
    }

    @Test func theReplicaKeepsItsIdentityAndClockAcrossRestarts() async throws {
        let directory = TemporaryDirectory()
        let time = ManualTimeSource(milliseconds: 10_000_000)
        let path = directory.path("app.sqlite")
        let first = try await Replica.open(path: path, timeSource: time)
        try await first.collection("c").upsert("d") { $0.set("v", to: 1) }
        let firstStamp = try #require(try await first.record(key("c", "d"))).lastStamp
        // The wall clock steps back an hour before the restart.
        time.set(10_000_000 - 3_600_000)
        let second = try await Replica.open(path: path, timeSource: time)
        #expect(second.replicaID == first.replicaID)
        try await second.collection("c").upsert("d") { $0.set("v", to: 2) }
        let secondStamp = try #require(try await second.record(key("c", "d"))).lastStamp
        #expect(secondStamp > firstStamp, "stamps keep increasing across a restart, whatever the wall clock does")
        #expect(try await second.collection("c").get("d")?.int("v") == 2)
    }

    @Test(arguments: Durability.allCases)
    func bothDurabilityLevelsOpenAndPersist(_ durability: Durability) async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("app.sqlite")
        do {
            let replica = try await Replica.open(path: path, configuration: ReplicaConfiguration(durability: durability))
            try await replica.collection("c").upsert("d") { $0.set("v", to: 7) }
        }
        let reopened = try await Replica.open(path: path)
        #expect(try await reopened.collection("c").get("d")?.int("v") == 7)
        let storage = try SQLiteReplicaStorage(path: path, durability: durability)
        #expect(try await storage.synchronousSetting() == (durability == .full ? 2 : 1))
    }
}
