import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite

/// The SQLite storage remembers the decoded form of large records with the bytes they were
/// decoded from (`DecodedRecords`). These tests check that the edits of a large document use it,
/// and that it never stands in for a row written since: by another storage on the same file, by
/// a pulled change, or by this storage's own later writes.
@Suite struct DecodedRecordTests {
    /// Fields enough for a record above the memo's 256 KiB threshold.
    static let fields = 20_000

    static func open(_ directory: TemporaryDirectory) async throws -> (Replica, SQLiteReplicaStorage) {
        let storage = try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
        return (try await Replica(storage: storage), storage)
    }

    static func key() throws -> DocumentKey {
        DocumentKey(collection: try CollectionName("assets"), id: try DocumentID("big"))
    }

    @Test func editsOfALargeDocumentDecodeItOnceAndSeeEveryOtherWriter() async throws {
        let directory = TemporaryDirectory()
        let (first, firstStorage) = try await Self.open(directory)
        let documents = try first.collection("assets")
        try await documents.upsert("big") { editor in
            for index in 0..<Self.fields { editor.set("field\(index)", to: .string("reading \(index)")) }
        }
        #expect(try await first.record(Self.key()).map { $0.body.count } == Self.fields)

        // The writer's own edits read back what it wrote: no decode.
        let before = firstStorage.decodedRecordHits
        for round in 0..<3 {
            try await documents.update("big") { $0.set("field7", to: .string("first \(round)")) }
        }
        #expect(firstStorage.decodedRecordHits >= before + 3)

        // A second storage on the same file edits the document: the first must see its edit,
        // in reads and in its own next edit (which must not write over it).
        let (second, _) = try await Self.open(directory)
        try await second.collection("assets").update("big") { $0.set("field8", to: .string("second")) }
        let seen = try #require(try await first.record(Self.key()))
        #expect(seen.body.string("field8") == "second")
        #expect(seen.body.string("field7") == "first 2")
        try await documents.update("big") { $0.set("field9", to: .string("first again")) }
        let both = try #require(try await second.record(Self.key()))
        #expect(both.body.string("field8") == "second")
        #expect(both.body.string("field9") == "first again")
        #expect(both.body.count == Self.fields)

        // A change pulled from elsewhere replaces the row: the next edit builds on it.
        let stranger = ReplicaID(high: 0xFEED, low: 0xBEEF)
        var body = both.body
        body.set(
            "field10", to: .string("pulled"),
            at: HLCTimestamp(
                wallMilliseconds: both.lastStamp.wallMilliseconds + 1, counter: 0, replica: stranger))
        var version = both.version
        version.increment(stranger)
        try await first.applyRemote(
            [
                (
                    key: Self.key(),
                    record: DocumentRecord(body: body, deletion: both.deletion, version: version)
                )
            ], through: 1)
        try await documents.update("big") { $0.set("field11", to: .string("after the pull")) }
        let last = try #require(try await first.record(Self.key()))
        #expect(last.body.string("field10") == "pulled")
        #expect(last.body.string("field11") == "after the pull")
        #expect(last.body.string("field8") == "second")
        #expect(try await first.queuedChanges().last?.record == last)
    }
}
