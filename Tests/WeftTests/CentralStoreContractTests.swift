import Foundation
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftWire
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

    @Test("6b. receipts: a push that changes something replaces the replica's, answering the link", arguments: CentralKind.testable)
    func receipts(_ kind: CentralKind) async throws {
        let directory = TemporaryDirectory()
        let store = try await kind.make(directory)
        /// Pushes a change of document `d<id>` under `sequence`; answers the mark and the link.
        func push(_ sequence: UInt64, receipt: UInt64, id: UInt64? = nil, value: Int64? = nil, epoch: UInt64 = 5) async throws
            -> [UInt64]
        {
            let id = id ?? sequence
            let answer = try await store.applyPush(
                database: "db", replica: replicaA, epoch: epoch, expectedMark: 0, pulledThrough: 0, receipt: receipt,
                changes: [change(sequence, "d\(id)", "v", value ?? Int64(id), replica: replicaA, wall: 10 + UInt64(value ?? 0), count: value.map { UInt64($0) } ?? id)],
                projector: .plain, merge: Self.merge)
            return [answer.mark, answer.receipt.previous, answer.receipt.current]
        }
        func hello(_ acknowledged: UInt64) async throws -> UInt64 {
            let answer = try await store.hello(database: "db", replica: replicaA, confirmedEpoch: 5, epoch: 5, acknowledgedThrough: acknowledged)
            #expect(answer.accepted)
            return answer.receipt
        }
        #expect(try await hello(0) == 0, "no push yet")
        #expect(try await push(1, receipt: 11) == [1, 0, 11])
        #expect(try await push(2, receipt: 22) == [2, 11, 22])
        #expect(try await push(2, receipt: 22) == [2, 11, 22], "the same push again answers the same link")
        #expect(try await push(2, receipt: 23) == [2, 22, 22], "a push that changes nothing: (current, current)")
        #expect(try await push(1, receipt: 11) == [2, 22, 22], "an old push sent again late changes nothing")
        #expect(try await push(2, receipt: 22) == [2, 11, 22])
        #expect(try await hello(2) == 22, "the hello answers the current receipt and leaves it")
        #expect(try await hello(2) == 22)
        // Pushes that are not applied leave it: a merge that throws, a session that is not the
        // replica's, a mark the store does not hold.
        await #expect(throws: WeftError.self) {
            try await store.applyPush(
                database: "db", replica: self.replicaA, epoch: 5, expectedMark: 0, pulledThrough: 0, receipt: 33,
                changes: [self.change(3, "z", "a", 3, replica: self.replicaA, wall: 12, count: 3)], projector: .plain
            ) { _, _, _ throws(WeftError) in throw .invalidArgument("refused") }
        }
        await #expect(throws: WeftError.self) { try await push(3, receipt: 34, epoch: 6) }
        await #expect(throws: WeftError.self) {
            try await store.applyPush(
                database: "db", replica: self.replicaA, epoch: 5, expectedMark: 99, pulledThrough: 0, receipt: 35, changes: [],
                projector: .plain, merge: Self.merge)
        }
        #expect(try await push(3, receipt: 44) == [3, 22, 44])
        // A change at or below the mark that changes a record moves them (rule 1).
        #expect(try await push(2, receipt: 55, id: 2, value: 9) == [3, 44, 55])
        // Per database and per replica.
        let other = try await store.hello(database: "other", replica: replicaA, confirmedEpoch: 0, epoch: 5, acknowledgedThrough: 0)
        #expect(other.receipt == 0)
        let stranger = try await store.hello(database: "db", replica: replicaB, confirmedEpoch: 0, epoch: 5, acknowledgedThrough: 0)
        #expect(stranger.receipt == 0)
        // A hello that finds acknowledged changes lost (rule 5) keeps the receipt.
        let restored = try await store.hello(database: "db", replica: replicaA, confirmedEpoch: 5, epoch: 6, acknowledgedThrough: 9)
        #expect(restored.accepted && restored.appliedThrough == 3 && restored.receipt == 55)
        if kind == .sqlite {
            let reopened = try SQLiteCentralStore(path: directory.path("central.sqlite"))
            #expect(try await reopened.hello(database: "db", replica: replicaA, confirmedEpoch: 6, epoch: 6, acknowledgedThrough: 9).receipt == 55)
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
