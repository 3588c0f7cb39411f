import Foundation
import Testing
import Weft
@_spi(Editing) import WeftCRDT
import WeftSQLite

/// The SQLite storage keeps the queue's byte total, next sequence and clock lease in memory
/// between commits. These tests check they stay right when they cannot be trusted: another
/// connection wrote, everything was acknowledged, or the process restarted.
@Suite struct QueueCounterTests {
    static func write(_ storage: SQLiteReplicaStorage, _ id: String, _ value: Int64, wall: UInt64) async throws -> UInt64 {
        let replica = try await storage.metadata().replicaID
        var document = Document()
        document.assign("n", to: .int(value), at: HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica))
        var version = VersionVector()
        version.increment(replica)
        let record = DocumentRecord(
            body: document, deletion: LWWRegister(false, stamp: HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)),
            version: version)
        let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID(id))
        let sequences = try await storage.commitLocalWrites([LocalWrite(key: key, record: record)], maxQueueBytes: 1 << 30)
        return try #require(sequences.first)
    }

    static func summed(_ storage: SQLiteReplicaStorage) async throws -> Int {
        try await storage.entries().map(\.byteCount).reduce(0, +)
    }

    @Test func twoStoragesOnOneFileNeverShareASequenceNumber() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("shared.sqlite")
        let first = try SQLiteReplicaStorage(path: path)
        let second = try SQLiteReplicaStorage(path: path)
        var sequences = [UInt64]()
        for round in 0..<10 {
            sequences.append(try await Self.write(round % 2 == 0 ? first : second, "d\(round)", Int64(round), wall: 100 + UInt64(round)))
        }
        #expect(sequences == Array(1...10), "each storage sees the other's commits before numbering its own")
        #expect(try await first.totalBytes() == (try await Self.summed(first)))
        #expect(try await second.totalBytes() == (try await Self.summed(second)))
        // One acknowledges; the other's next write still gets a new number and counts right.
        try await first.acknowledge(through: 10)
        #expect(try await second.totalBytes() == 0)
        #expect(try await Self.write(second, "d0", 99, wall: 500) == 11)
        #expect(try await first.totalBytes() == (try await Self.summed(first)))
    }

    @Test func acknowledgedNumbersAreNeverReusedAfterARestart() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("restart.sqlite")
        do {
            let storage = try SQLiteReplicaStorage(path: path)
            for index in 0..<5 { _ = try await Self.write(storage, "d\(index)", 1, wall: 10) }
            try await storage.acknowledge(through: 5)
            #expect(try await storage.totalBytes() == 0)
        }
        let reopened = try SQLiteReplicaStorage(path: path)
        #expect(try await Self.write(reopened, "d9", 1, wall: 20) == 6, "a server's high-water mark of 5 must not swallow this write")
        #expect(try await reopened.totalBytes() == (try await Self.summed(reopened)))
    }

    @Test func aRefusedWriteLeavesTheCountersAlone() async throws {
        let directory = TemporaryDirectory()
        let storage = try SQLiteReplicaStorage(path: directory.path("refused.sqlite"))
        _ = try await Self.write(storage, "a", 1, wall: 10)
        let before = try await storage.totalBytes()
        let replica = try await storage.metadata().replicaID
        let key = DocumentKey(collection: try CollectionName("c"), id: try DocumentID("b"))
        let stamp = HLCTimestamp(wallMilliseconds: 11, counter: 0, replica: replica)
        var version = VersionVector()
        version.increment(replica)
        let record = DocumentRecord(body: Document(), deletion: LWWRegister(false, stamp: stamp), version: version)
        await #expect(throws: WeftError.self) {
            _ = try await storage.commitLocalWrites([LocalWrite(key: key, record: record)], maxQueueBytes: before)
        }
        #expect(try await storage.totalBytes() == before)
        #expect(try await Self.write(storage, "c", 1, wall: 12) == 2, "the refused write used no number")
        #expect(try await storage.totalBytes() == (try await Self.summed(storage)))
    }
}
