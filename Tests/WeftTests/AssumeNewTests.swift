import Foundation
import Synchronization
import Testing
import Weft
@_spi(Editing) import WeftCRDT
import WeftSQLite

/// While commits keep creating documents, the SQLite storage writes large commits without first
/// reading their keys, and reads them only if a write finds its row taken. These tests make
/// that assumption wrong in each way it can be and check that every commit comes out as if the
/// keys had been read.
@Suite struct AssumeNewTests {
    static func open(_ directory: TemporaryDirectory, maxQueueBytes: Int = 1 << 30) async throws -> Replica {
        try await Replica.open(path: directory.path("replica.sqlite"), configuration: ReplicaConfiguration(maxQueueBytes: maxQueueBytes))
    }

    static func key(_ id: String) throws -> DocumentKey {
        DocumentKey(collection: try CollectionName("c"), id: try DocumentID(id))
    }

    /// Creates `ids` in one batch: a commit that finds none stored, so the next one assumes.
    static func create(_ replica: Replica, _ ids: [String]) async throws {
        try await replica.batch { batch in
            for id in ids { try batch.create("c", id) { $0.increment("n") } }
        }
    }

    @Test func aStoredDocumentAmongNewOnesIsReadAndJoined() async throws {
        let directory = TemporaryDirectory()
        let replica = try await Self.open(directory)
        try await Self.create(replica, (0..<10).map { "a\($0)" })
        try await replica.batch { batch in
            for index in 0..<10 { try batch.upsert("c", "b\(index)") { $0.increment("n") } }
            try batch.upsert("c", "a5") { $0.increment("n", by: 10) }  // stored, its entry waiting
            for index in 10..<15 { try batch.upsert("c", "b\(index)") { $0.increment("n") } }
        }
        let a5 = try #require(try await replica.record(Self.key("a5")))
        #expect(a5.body.counter("n") == 11)
        #expect(a5.version[replica.replicaID] == 2)
        let entries = try await replica.queuedChanges()
        #expect(entries.count == 25, "a5's write joins its waiting entry")
        #expect(entries.filter { $0.key.id.rawValue == "a5" }.map(\.record) == [a5])
        #expect(try await replica.queuedBytes() == entries.map(\.byteCount).reduce(0, +))
        #expect(entries.map(\.sequence) == Array(1...25))
    }

    @Test func updatesRightAfterCreatesFindTheirDocuments() async throws {
        let directory = TemporaryDirectory()
        let replica = try await Self.open(directory)
        let ids = (0..<12).map { "u\($0)" }
        try await Self.create(replica, ids)
        try await replica.batch { batch in
            for id in ids { try batch.update("c", id) { $0.increment("n") } }
        }
        for id in ids { #expect(try await replica.record(Self.key(id))?.body.counter("n") == 2) }
        #expect(try await replica.queuedChanges().count == 12)
    }

    @Test func aCreateOfADeletedDocumentContinuesItsVersion() async throws {
        let directory = TemporaryDirectory()
        let storage = try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
        let replica = try await Replica(storage: storage)
        try await Self.create(replica, (0..<10).map { "d\($0)" })
        try await replica.collection("c").delete("d3")
        let entries = try await replica.queuedChanges()
        try await storage.acknowledge(through: entries.map(\.sequence).max() ?? 0)
        try await Self.create(replica, (10..<20).map { "d\($0)" })  // assumes again
        try await replica.batch { batch in
            for index in 20..<30 { try batch.create("c", "d\(index)") { $0.increment("n") } }
            try batch.create("c", "d3") { $0.set("again", to: true) }  // a tombstone's row
        }
        let d3 = try #require(try await replica.record(Self.key("d3")))
        #expect(!d3.isDeleted)
        #expect(d3.version[replica.replicaID] == 3, "create, delete, create")
        #expect(d3.body.keys == ["again"])
        #expect(try await replica.queuedChanges().count == 21)
    }

    @Test func aRefusedCommitChangesNothing() async throws {
        let directory = TemporaryDirectory()
        let replica = try await Self.open(directory, maxQueueBytes: 4_000)
        try await Self.create(replica, (0..<10).map { "q\($0)" })
        let before = try await replica.queuedChanges()
        await #expect(throws: WeftError.self) {
            try await Self.create(replica, (10..<100).map { "q\($0)" })
        }
        #expect(try await replica.queuedChanges() == before)
        #expect(try await replica.record(Self.key("q10")) == nil)
    }

    /// Storage level: a key the transform leaves unwritten is checked, and the transform runs
    /// again with its record.
    @Test func aKeyLeftUnwrittenIsStillRead() async throws {
        let directory = TemporaryDirectory()
        let storage = try SQLiteReplicaStorage(path: directory.path("storage.sqlite"))
        let replica = try await storage.metadata().replicaID
        func record(_ value: Int64) -> DocumentRecord {
            let stamp = HLCTimestamp(wallMilliseconds: 1_000, counter: 0, replica: replica)
            var document = Document()
            document.assign("v", to: .int(value), at: stamp)
            var version = VersionVector()
            version.increment(replica)
            return DocumentRecord(body: document, deletion: LWWRegister(false, stamp: stamp), version: version)
        }
        _ = try await storage.commitLocalWrites([LocalWrite(key: try Self.key("stored"), record: record(1))], maxQueueBytes: 1 << 30)
        let fresh = try (0..<10).map { try Self.key("n\($0)") }
        _ = try await storage.commitLocalWrites(fresh.map { LocalWrite(key: $0, record: record(2)) }, maxQueueBytes: 1 << 30)

        let seen = Mutex<[Int]>([])
        let others = try (10..<20).map { try Self.key("n\($0)") }
        let stored = try Self.key("stored")
        let writes = others.map { LocalWrite(key: $0, record: record(3)) }
        _ = try await storage.commitLocalWrites(reading: [stored] + others, maxQueueBytes: 1 << 30) { records in
            seen.withLock { $0.append(records.count) }
            return writes
        }
        #expect(seen.withLock { $0 } == [0, 1], "run assuming nothing stored, then again with the stored record")
        #expect(try await storage.entries().count == 21)
    }
}
