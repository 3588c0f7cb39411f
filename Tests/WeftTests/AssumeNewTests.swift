import Foundation
import Synchronization
import Testing
import Weft
@_spi(Editing) import WeftCRDT
import WeftSQLite

/// While commits keep creating documents, the SQLite storage writes large commits without first
/// reading their keys, and reads them only if a write finds its row taken. These tests make
/// that assumption wrong in each way it can be, check with the storage's counts that it was
/// made (and found wrong), and check that every commit comes out as if the keys had been read.
@Suite struct AssumeNewTests {
    typealias Counts = SQLiteReplicaStorage.AssumptionCounts

    static func open(_ directory: TemporaryDirectory, maxQueueBytes: Int = 1 << 30) async throws -> (Replica, SQLiteReplicaStorage) {
        let storage = try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
        let replica = try await Replica(storage: storage, configuration: ReplicaConfiguration(maxQueueBytes: maxQueueBytes))
        return (replica, storage)
    }

    static func key(_ id: String) throws -> DocumentKey {
        DocumentKey(collection: try CollectionName("c"), id: try DocumentID(id))
    }

    /// Creates `ids` in one batch.
    static func create(_ replica: Replica, _ ids: [String]) async throws {
        try await replica.batch { batch in
            for id in ids { try batch.create("c", id) { $0.increment("n") } }
        }
    }

    @Test func aGuessThatHoldsJoinsARepeatedDocumentIntoOneEntry() async throws {
        let directory = TemporaryDirectory()
        let (replica, storage) = try await Self.open(directory)
        try await replica.batch { batch in
            for index in 0..<10 { try batch.upsert("c", "g\(index)") { $0.increment("n") } }
            try batch.upsert("c", "g3") { $0.increment("n", by: 10) }  // the same new document again
        }
        #expect(storage.assumptions == Counts(attempts: 1, misses: 0))
        let g3 = try #require(try await replica.record(Self.key("g3")))
        #expect(g3.body.counter("n") == 11)
        #expect(g3.version[await replica.writerID] == 2)
        let entries = try await replica.queuedChanges()
        #expect(entries.map(\.sequence) == Array(1...10), "one entry per document")
        #expect(entries.filter { $0.key.id.rawValue == "g3" }.map(\.record) == [g3])
        #expect(try await replica.queuedBytes() == entries.map(\.byteCount).reduce(0, +))
    }

    @Test func aStoredDocumentAmongNewOnesIsReadAndJoined() async throws {
        let directory = TemporaryDirectory()
        let (replica, storage) = try await Self.open(directory)
        try await Self.create(replica, (0..<10).map { "a\($0)" })
        #expect(storage.assumptions == Counts(attempts: 1, misses: 0))
        try await replica.batch { batch in
            for index in 0..<10 { try batch.upsert("c", "b\(index)") { $0.increment("n") } }
            try batch.upsert("c", "a5") { $0.increment("n", by: 10) }  // stored, its entry waiting
            for index in 10..<15 { try batch.upsert("c", "b\(index)") { $0.increment("n") } }
        }
        #expect(storage.assumptions == Counts(attempts: 2, misses: 1))
        let a5 = try #require(try await replica.record(Self.key("a5")))
        #expect(a5.body.counter("n") == 11)
        #expect(a5.version[await replica.writerID] == 2)
        let entries = try await replica.queuedChanges()
        #expect(entries.count == 25, "a5's write joins its waiting entry")
        #expect(entries.filter { $0.key.id.rawValue == "a5" }.map(\.record) == [a5])
        #expect(try await replica.queuedBytes() == entries.map(\.byteCount).reduce(0, +))
        #expect(entries.map(\.sequence) == Array(1...25))
    }

    @Test func updatesRightAfterCreatesFindTheirDocuments() async throws {
        let directory = TemporaryDirectory()
        let (replica, storage) = try await Self.open(directory)
        let ids = (0..<12).map { "u\($0)" }
        try await Self.create(replica, ids)
        for _ in 0..<2 {
            try await replica.batch { batch in
                for id in ids { try batch.update("c", id) { $0.increment("n") } }
            }
        }
        #expect(storage.assumptions == Counts(attempts: 2, misses: 1), "after one wrong guess, updates are read first")
        for id in ids { #expect(try await replica.record(Self.key(id))?.body.counter("n") == 3) }
        #expect(try await replica.queuedChanges().count == 12)
    }

    @Test func aCreateOfADeletedDocumentContinuesItsVersion() async throws {
        let directory = TemporaryDirectory()
        let (replica, storage) = try await Self.open(directory)
        try await Self.create(replica, (0..<10).map { "d\($0)" })
        try await replica.collection("c").delete("d3")
        let entries = try await replica.queuedChanges()
        try await storage.acknowledge(through: entries.map(\.sequence).max() ?? 0)
        try await Self.create(replica, (10..<20).map { "d\($0)" })
        try await replica.batch { batch in
            for index in 20..<30 { try batch.create("c", "d\(index)") { $0.increment("n") } }
            try batch.create("c", "d3") { $0.set("again", to: true) }  // a tombstone's row
        }
        #expect(storage.assumptions == Counts(attempts: 3, misses: 1))
        let d3 = try #require(try await replica.record(Self.key("d3")))
        #expect(!d3.isDeleted)
        #expect(d3.version[await replica.writerID] == 3, "create, delete, create")
        #expect(d3.body.keys == ["again"])
        #expect(try await replica.queuedChanges().count == 21)
    }

    @Test func aRefusedCommitChangesNothingAndIsNotRunTwiceAgain() async throws {
        let directory = TemporaryDirectory()
        let (replica, storage) = try await Self.open(directory, maxQueueBytes: 4_000)
        try await Self.create(replica, (0..<10).map { "q\($0)" })
        let before = try await replica.queuedChanges()
        for _ in 0..<2 {
            do {
                try await Self.create(replica, (10..<100).map { "q\($0)" })
                Issue.record("90 more documents must not fit in 4,000 bytes")
            } catch let error as WeftError {
                #expect(error.kind == .queueFull)
            }
        }
        #expect(storage.assumptions == Counts(attempts: 2, misses: 1), "a refusal stops the guessing")
        #expect(try await replica.queuedChanges() == before)
        #expect(try await replica.record(Self.key("q10")) == nil)
    }

    // MARK: Storage level

    static func record(_ replica: ReplicaID, _ value: Int64) -> DocumentRecord {
        let stamp = HLCTimestamp(wallMilliseconds: 1_000 + UInt64(value), counter: 0, replica: replica)
        var document = Document()
        document.assign("v", to: .int(value), at: stamp)
        var version = VersionVector()
        version.increment(replica)
        return DocumentRecord(body: document, deletion: LWWRegister(false, stamp: stamp), version: version)
    }

    /// Commits `keys` (read) with one write each.
    static func create(_ storage: SQLiteReplicaStorage, _ keys: [DocumentKey], _ record: DocumentRecord) async throws {
        let writes = keys.map { LocalWrite(key: $0, record: record) }
        _ = try await storage.commitLocalWrites(reading: keys, maxQueueBytes: 1 << 30) { _ in writes }
    }

    /// A new storage holding one queued document, `key`.
    static func storage(_ directory: TemporaryDirectory, holding key: DocumentKey) async throws -> (SQLiteReplicaStorage, ReplicaID) {
        let storage = try SQLiteReplicaStorage(path: directory.path("storage.sqlite"))
        let replica = try await storage.metadata().replicaID
        _ = try await storage.commitLocalWrites([LocalWrite(key: key, record: Self.record(replica, 1))], maxQueueBytes: 1 << 30)
        return (storage, replica)
    }

    /// A key the transform leaves unwritten is checked, and the transform runs again with its
    /// record.
    @Test func aKeyLeftUnwrittenIsStillRead() async throws {
        let directory = TemporaryDirectory()
        let stored = try Self.key("stored")
        let (storage, replica) = try await Self.storage(directory, holding: stored)
        try await Self.create(storage, try (0..<10).map { try Self.key("n\($0)") }, Self.record(replica, 2))

        let seen = Mutex<[Int]>([])
        let others = try (10..<20).map { try Self.key("n\($0)") }
        let writes = others.map { LocalWrite(key: $0, record: Self.record(replica, 3)) }
        _ = try await storage.commitLocalWrites(reading: [stored] + others, maxQueueBytes: 1 << 30) { records in
            seen.withLock { $0.append(records.count) }
            return writes
        }
        #expect(seen.withLock { $0 } == [0, 1], "run assuming nothing stored, then again with the stored record")
        #expect(storage.assumptions == Counts(attempts: 2, misses: 1))
        #expect(try await storage.entries().count == 21)
    }

    /// A wrong guess in a commit that also writes an in-flight document, writes in another
    /// order than it read, writes a key it did not read and writes one key twice: the re-run
    /// queues exactly what a commit that read first would have.
    @Test func aWrongGuessWithAnInFlightEntryReordersAndRepeats() async throws {
        let directory = TemporaryDirectory()
        let inFlight = try Self.key("in-flight")
        let (storage, replica) = try await Self.storage(directory, holding: inFlight)
        let pushed = try await storage.nextBatch(maxBytes: 1 << 20, maxEntries: 10)
        #expect(pushed.map(\.key) == [inFlight])
        try await Self.create(storage, try (0..<10).map { try Self.key("n\($0)") }, Self.record(replica, 2))

        let keys = try (10..<20).map { try Self.key("n\($0)") } + [inFlight]
        let extra = try Self.key("not-read")
        var writes = keys.reversed().map { LocalWrite(key: $0, record: Self.record(replica, 3)) }
        writes.append(LocalWrite(key: extra, record: Self.record(replica, 4)))
        writes.append(LocalWrite(key: keys[0], record: Self.record(replica, 5)))
        let planned = writes
        let sequences = try await storage.commitLocalWrites(reading: keys, maxQueueBytes: 1 << 30) { _ in planned }
        #expect(storage.assumptions == Counts(attempts: 2, misses: 1))

        // 1 in flight + 10 earlier + 10 read + the in-flight document's new entry + 1 not read.
        let entries = try await storage.entries()
        #expect(entries.count == 23)
        #expect(Set(entries.map(\.sequence)).count == 23)
        #expect(sequences.count == writes.count)
        #expect(sequences.last == sequences[keys.count - 1], "the repeated key joins its own entry (written at keys.count - 1)")
        #expect(try await storage.totalBytes() == entries.map(\.byteCount).reduce(0, +))
        #expect(try await storage.record(for: keys[0]) == Self.record(replica, 5))

        // Acknowledging the push keeps the in-flight document's new write.
        try await storage.acknowledge(through: pushed[0].sequence)
        let left = try await storage.entries()
        #expect(left.count == 22)
        #expect(left.filter { $0.key == inFlight }.map(\.record) == [Self.record(replica, 3)])
    }
}
