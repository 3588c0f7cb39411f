import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite

/// The behavioural contracts of DocumentStore, ChangeQueue and ReplicaStorage, run against
/// every implementation.
@Suite("Storage contract")
struct StorageContractTests {
    @Test("1. the replica id is created once and kept", arguments: StorageKind.allCases)
    func replicaIDIsStable(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let first = try await storage.metadata().replicaID
        #expect(try await storage.metadata().replicaID == first)
        if kind == .sqlite {
            let reopened = try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
            #expect(try await reopened.metadata().replicaID == first)
        }
    }

    @Test("2–3. records are read back, tombstones included, listed by id with filters", arguments: StorageKind.allCases)
    func recordsRoundTrip(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        #expect(try await storage.record(for: key("c", "x")) == nil)
        let b = sampleRecord("n", 2, wall: 2)
        let a = sampleRecord("n", 1, wall: 1)
        var deleted = sampleRecord("n", 3, wall: 3)
        deleted.merge(DocumentRecord(body: Document(), deletion: LWWRegister(true, stamp: HLCTimestamp(wallMilliseconds: 4, counter: 0, replica: ReplicaID(high: 0, low: 1))), version: VersionVector()))
        _ = try await storage.commitLocalWrites(
            [LocalWrite(key: key("c", "b"), record: b), LocalWrite(key: key("c", "a"), record: a),
             LocalWrite(key: key("c", "z"), record: deleted),
             LocalWrite(key: key("other", "a"), record: a)],
            maxQueueBytes: 1 << 20)
        #expect(try await storage.record(for: key("c", "a")) == a)
        #expect(try await storage.record(for: key("c", "z"))?.isDeleted == true)
        let live = try await storage.records(in: try CollectionName("c"), where: .all, limit: nil)
        #expect(live.map(\.id.rawValue) == ["a", "b"])
        let everything = try await storage.records(in: try CollectionName("c"), where: DocumentFilter(includeDeleted: true), limit: nil)
        #expect(everything.map(\.id.rawValue) == ["a", "b", "z"])
        let byField = try await storage.records(
            in: try CollectionName("c"), where: DocumentFilter(fieldEquals: ("n", .int(2))), limit: nil)
        #expect(byField.map(\.id.rawValue) == ["b"])
        let limited = try await storage.records(in: try CollectionName("c"), where: .all, limit: 1)
        #expect(limited.map(\.id.rawValue) == ["a"])
        let prefixed = try await storage.records(in: try CollectionName("c"), where: DocumentFilter(idPrefix: "b"), limit: nil)
        #expect(prefixed.map(\.id.rawValue) == ["b"])
    }

    @Test("4. the clock and the pull cursor persist; the cursor never moves back", arguments: StorageKind.allCases)
    func metadataPersists(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let stamp = HLCTimestamp(wallMilliseconds: 77, counter: 3, replica: try await storage.metadata().replicaID)
        try await storage.saveLastStamp(stamp)
        try await storage.setPullCursor(10)
        try await storage.setPullCursor(4)
        var metadata = try await storage.metadata()
        #expect(metadata.lastStamp == stamp && metadata.pullCursor == 10)
        if kind == .sqlite {
            metadata = try await SQLiteReplicaStorage(path: directory.path("replica.sqlite")).metadata()
            #expect(metadata.lastStamp == stamp && metadata.pullCursor == 10)
        }
    }

    @Test("queue 1–2. sequences increase and bytes are exact", arguments: StorageKind.allCases)
    func sequencesAndBytes(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let r1 = sampleRecord("n", 1, wall: 1)
        let r2 = sampleRecord("n", 2, wall: 2)
        let sequences = try await storage.commitLocalWrites(
            [LocalWrite(key: key("c", "a"), record: r1), LocalWrite(key: key("c", "b"), record: r2)],
            maxQueueBytes: 1 << 20)
        #expect(sequences.count == 2 && sequences[0] < sequences[1])
        let entries = try await storage.entries()
        #expect(entries.map(\.sequence) == sequences)
        let expected = entries.reduce(0) { $0 + QueueEntry.byteCount(key: $1.key, recordBytes: $1.record.encoded().count) }
        #expect(try await storage.totalBytes() == expected)
        #expect(entries.allSatisfy { $0.byteCount == QueueEntry.byteCount(key: $0.key, recordBytes: $0.record.encoded().count) })
        // Acknowledge all, write again: sequence numbers are never reused.
        try await storage.acknowledge(through: sequences[1])
        #expect(try await storage.totalBytes() == 0)
        let again = try await storage.commitLocalWrites(
            [LocalWrite(key: key("c", "a"), record: r1)], maxQueueBytes: 1 << 20)
        #expect(again[0] > sequences[1])
        if kind == .sqlite {
            let reopened = try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
            try await reopened.acknowledge(through: again[0])
            let after = try await reopened.commitLocalWrites(
                [LocalWrite(key: key("c", "a"), record: r1)], maxQueueBytes: 1 << 20)
            #expect(after[0] > again[0])
        }
    }

    @Test("queue 3–6. batches, coalescing, in-flight writes and acknowledgement", arguments: StorageKind.allCases)
    func batchesAndInFlight(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let k = key("c", "doc")
        let first = sampleRecord("a", 1, wall: 1)
        let second = sampleRecord("b", 2, wall: 2)
        let s1 = try await storage.commitLocalWrites([LocalWrite(key: k, record: first)], maxQueueBytes: 1 << 20)
        let s2 = try await storage.commitLocalWrites(
            [LocalWrite(key: k, record: first.merged(with: second))], maxQueueBytes: 1 << 20)
        #expect(s1 == s2, "a pending entry absorbs the next write to its document")
        #expect(try await storage.entries().count == 1)
        #expect(try await storage.entries().first?.record == first.merged(with: second))

        let batch = try await storage.nextBatch(maxBytes: 1 << 20, maxEntries: 100)
        #expect(batch.map(\.sequence) == s1)
        #expect(try await storage.nextBatch(maxBytes: 1 << 20, maxEntries: 100).isEmpty, "in-flight entries are not handed out twice")

        // A write while the entry is in flight gets its own entry.
        let third = sampleRecord("c", 3, wall: 3)
        let s3 = try await storage.commitLocalWrites(
            [LocalWrite(key: k, record: first.merged(with: second).merged(with: third))], maxQueueBytes: 1 << 20)
        #expect(s3[0] > s1[0])
        #expect(try await storage.entries().count == 2)

        // Acknowledging the in-flight batch keeps the newer entry.
        try await storage.acknowledge(through: batch.last!.sequence)
        let remaining = try await storage.entries()
        #expect(remaining.map(\.sequence) == s3 && remaining.first?.record == first.merged(with: second).merged(with: third))
        #expect(try await storage.totalBytes() == remaining[0].byteCount)
    }

    @Test("queue 3. batches respect byte and count limits but always make progress", arguments: StorageKind.allCases)
    func batchLimits(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        for index in 0..<5 {
            let record = sampleRecord("n", Int64(index), wall: UInt64(index + 1))
            _ = try await storage.commitLocalWrites(
                [LocalWrite(key: key("c", "d\(index)"), record: record)], maxQueueBytes: 1 << 20)
        }
        let one = try await storage.nextBatch(maxBytes: 1, maxEntries: 100)
        #expect(one.count == 1, "an entry larger than maxBytes still goes out alone")
        let two = try await storage.nextBatch(maxBytes: 1 << 20, maxEntries: 2)
        #expect(two.count == 2 && two[0].sequence > one[0].sequence)
        try await storage.releaseInFlight()
        let again = try await storage.nextBatch(maxBytes: 1 << 20, maxEntries: 100)
        #expect(again.count == 5 && again[0].sequence == one[0].sequence, "released entries go out again, oldest first")
    }

    @Test("replica storage 5, 7. the cursor's tag moves with it; a resync resets both, survives a restart and queues push-backs", arguments: StorageKind.allCases)
    func resyncAndCursorTags(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let merge: @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
            record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
        ) = { local, key, remote throws(WeftError) in try DocumentMerge.merge(local: local, remote: remote, key: key, policy: .crdt) }
        _ = try await storage.applyRemoteChanges([(key("c", "a"), sampleRecord("n", 1, wall: 1))], through: 5, tag: 55, merge)
        _ = try await storage.applyRemoteChanges([], through: 5, tag: 99, merge)
        var metadata = try await storage.metadata()
        #expect(metadata.pullCursor == 5 && metadata.pullCursorTag == 55, "an empty page keeps the tag")
        _ = try await storage.applyRemoteChanges([(key("c", "b"), sampleRecord("n", 2, wall: 2))], through: 8, tag: 88, merge)
        #expect(try await storage.metadata().pullCursorTag == 88)
        #expect(Set(try await storage.documentKeys()) == [key("c", "a"), key("c", "b")])
        #expect(try await storage.entries().isEmpty)

        try await storage.beginResync()
        metadata = try await storage.metadata()
        #expect(metadata.pullCursor == 0 && metadata.pullCursorTag == 0 && metadata.resyncPending)
        if kind == .sqlite {
            let reopened = try await SQLiteReplicaStorage(path: directory.path("replica.sqlite")).metadata()
            #expect(reopened.resyncPending && reopened.pullCursor == 0)
        }
        try await storage.endResync(pushingBack: [key("c", "b"), key("c", "missing")])
        #expect(try await storage.metadata().resyncPending == false)
        let queued = try await storage.entries()
        #expect(queued.map(\.key) == [key("c", "b")], "the push-back is queued, a missing key is skipped")
        #expect(queued.first?.record == (try await storage.record(for: key("c", "b"))))
    }

    @Test("1. a new identity keeps the old one among the former identities", arguments: StorageKind.allCases)
    func formerIdentities(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let first = try await storage.metadata().replicaID
        let second = ReplicaID.random()
        try await storage.replaceIdentity(with: second)
        try await storage.replaceIdentity(with: .random())
        #expect(try await storage.metadata().formerIdentities == [first, second])
        if kind == .sqlite {
            #expect(try await SQLiteReplicaStorage(path: directory.path("replica.sqlite")).metadata().formerIdentities == [first, second])
        }
    }

    @Test("replica storage 2. a write past the cap is refused and changes nothing", arguments: StorageKind.allCases)
    func queueCap(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let a = sampleRecord("n", 1, wall: 1)
        _ = try await storage.commitLocalWrites([LocalWrite(key: key("c", "a"), record: a)], maxQueueBytes: 1 << 20)
        let before = try await storage.entries()
        let bytes = try await storage.totalBytes()
        let b = sampleRecord("n", 2, wall: 2)
        do {
            _ = try await storage.commitLocalWrites(
                [LocalWrite(key: key("c", "b"), record: b), LocalWrite(key: key("c", "c"), record: b)],
                maxQueueBytes: bytes + 10)
            Issue.record("the write should have been refused")
        } catch {
            #expect(error.kind == .queueFull && error.queueBytes == bytes && error.queueLimit == bytes + 10)
        }
        #expect(try await storage.entries() == before)
        #expect(try await storage.totalBytes() == bytes)
        #expect(try await storage.record(for: key("c", "b")) == nil, "the document is unchanged")
    }

    @Test("replica storage 4. a commit saves a stamp at or above its largest in the same step", arguments: StorageKind.allCases)
    func commitSavesTheClock(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let early = sampleRecord("n", 1, wall: 5)
        let late = sampleRecord("n", 2, wall: 9)
        _ = try await storage.commitLocalWrites(
            [LocalWrite(key: key("c", "a"), record: late), LocalWrite(key: key("c", "b"), record: early)],
            maxQueueBytes: 1 << 20)
        let saved = try #require(try await storage.metadata().lastStamp)
        #expect(saved >= late.lastStamp)
        if kind == .sqlite {
            // The lease is what a restarted replica resumes after.
            let reopened = try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
            #expect(try #require(try await reopened.metadata().lastStamp) >= late.lastStamp)
        }
    }
}
