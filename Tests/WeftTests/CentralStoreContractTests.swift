import Foundation
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftPostgres

enum CentralKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case memory, sqlite, postgres
    var description: String { rawValue }

    /// The kinds to test: PostgreSQL unless left out on purpose (WEFT_SKIP_POSTGRES=1).
    static var testable: [CentralKind] { TestPostgres.skipped ? [.memory, .sqlite] : allCases }

    func make(_ directory: TemporaryDirectory) async throws -> any CentralStore {
        switch self {
        case .memory: return MemoryCentralStore()
        case .sqlite: return try SQLiteCentralStore(path: directory.path("central.sqlite"))
        case .postgres: return try await PostgresCentralStore(url: try await TestPostgres.freshDatabase())
        }
    }
}

/// The CentralStore contract, run against every implementation.
@Suite("Central store contract")
struct CentralStoreContractTests {
    let replicaA = ReplicaID(high: 1, low: 1)
    let replicaB = ReplicaID(high: 2, low: 2)

    static let merge: @Sendable (DocumentRecord?, DocumentKey, DocumentRecord) throws(WeftError) -> (
        record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?
    ) = { local, key, remote throws(WeftError) in
        try DocumentMerge.merge(local: local, remote: remote, key: key, policy: .crdt)
    }

    func change(_ sequence: UInt64, _ id: String, _ field: String, _ value: Int64, replica: ReplicaID, wall: UInt64, count: UInt64)
        -> (sequence: UInt64, key: DocumentKey, delta: DocumentRecord)
    {
        var record = sampleRecord(field, value, wall: wall, replica: replica)
        record = DocumentRecord(
            body: record.body, deletion: record.deletion, version: VersionVector([replica: count]))
        return (sequence, key("c", id), record)
    }

    @Test("1. pushes are atomic and idempotent; the high-water mark skips what was applied", arguments: CentralKind.testable)
    func idempotentPush(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        let batch = [change(1, "x", "a", 1, replica: replicaA, wall: 10, count: 1), change(2, "y", "a", 2, replica: replicaA, wall: 11, count: 1)]
        #expect(try await store.applyPush(database: "db", replica: replicaA, changes: batch, merge: Self.merge) == 2)
        #expect(try await store.applyPush(database: "db", replica: replicaA, changes: batch, merge: Self.merge) == 2)
        let log = try await store.changes(database: "db", after: 0, limit: 100, maxBytes: 1 << 20)
        #expect(log.changes.count == 2 && !log.hasMore, "the re-sent batch logged nothing")
        // A throwing merge changes nothing, high-water mark included.
        await #expect(throws: WeftError.self) {
            try await store.applyPush(
                database: "db", replica: self.replicaA, changes: [self.change(3, "z", "a", 3, replica: self.replicaA, wall: 12, count: 1)]
            ) { _, _, _ throws(WeftError) in throw .invalidArgument("refused") }
        }
        #expect(try await store.record(database: "db", key: key("c", "z")) == nil)
        #expect(try await store.applyPush(database: "db", replica: replicaA, changes: [], merge: Self.merge) == 2)
    }

    @Test("2–3. sequences increase; pages respect limits and never skip or repeat", arguments: CentralKind.testable)
    func paging(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        for index in 1...25 {
            _ = try await store.applyPush(
                database: "db", replica: replicaA,
                changes: [change(UInt64(index), "d\(index)", "v", Int64(index), replica: replicaA, wall: UInt64(index), count: 1)],
                merge: Self.merge)
        }
        var cursor: UInt64 = 0
        var seen = [UInt64]()
        while true {
            let page = try await store.changes(database: "db", after: cursor, limit: 7, maxBytes: 1 << 20)
            seen += page.changes.map(\.sequence)
            #expect(page.changes.count <= 7)
            cursor = page.changes.last?.sequence ?? cursor
            if !page.hasMore { break }
        }
        #expect(seen.count == 25 && seen == seen.sorted() && Set(seen).count == 25)
        let tiny = try await store.changes(database: "db", after: 0, limit: 100, maxBytes: 1)
        #expect(tiny.changes.count == 1 && tiny.hasMore, "at least one change, even over maxBytes")
    }

    @Test("4. databases are independent; conflicts are logged", arguments: CentralKind.testable)
    func tenantsAndConflicts(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        _ = try await store.applyPush(database: "one", replica: replicaA, changes: [change(1, "x", "a", 1, replica: replicaA, wall: 5, count: 1)], merge: Self.merge)
        _ = try await store.applyPush(database: "one", replica: replicaB, changes: [change(1, "x", "b", 2, replica: replicaB, wall: 6, count: 1)], merge: Self.merge)
        #expect(try await store.changes(database: "two", after: 0, limit: 10, maxBytes: 1 << 20).changes.isEmpty)
        #expect(try await store.record(database: "two", key: key("c", "x")) == nil)
        let merged = try #require(try await store.record(database: "one", key: key("c", "x")))
        #expect(merged.body.int("a") == 1 && merged.body.int("b") == 2)
        let conflicts = try await store.conflicts(database: "one", limit: 10)
        #expect(conflicts.count == 1 && conflicts[0].policy == .crdt && conflicts[0].winner == merged)
        #expect(try await store.conflicts(database: "two", limit: 10).isEmpty)
        if kind == .sqlite {
            let reopened = try SQLiteCentralStore(path: directory.path("central.sqlite"))
            #expect(try await reopened.record(database: "one", key: key("c", "x")) == merged)
            #expect(try await reopened.applyPush(
                database: "one", replica: replicaA, changes: [change(1, "x", "a", 1, replica: replicaA, wall: 5, count: 1)], merge: Self.merge) == 1)
        }
    }

    @Test("7. known replicas: those with a session or a high-water mark, per database", arguments: CentralKind.testable)
    func knownReplicas(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        let stranger = ReplicaID(high: 3, low: 3)
        let many = Set((0..<1_000).map { ReplicaID(high: 9, low: UInt64($0)) })
        #expect(try await store.knownReplicas(database: "db", among: [replicaA, replicaB, stranger]).isEmpty)
        _ = try await store.hello(database: "db", replica: replicaA, confirmedEpoch: 0, epoch: 7, acknowledgedThrough: 0)
        _ = try await store.applyPush(database: "db", replica: replicaB, changes: [change(1, "x", "b", 1, replica: replicaB, wall: 5, count: 1)], merge: Self.merge)
        #expect(try await store.knownReplicas(database: "db", among: [replicaA, replicaB, stranger]) == [replicaA, replicaB])
        #expect(try await store.knownReplicas(database: "db", among: many.union([replicaA])) == [replicaA], "many at once, in chunks")
        #expect(try await store.knownReplicas(database: "other", among: [replicaA, replicaB]).isEmpty)
        #expect(try await store.knownReplicas(database: "db", among: []).isEmpty)
    }
}
