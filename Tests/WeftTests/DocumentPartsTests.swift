import Foundation
import GRDB
#if canImport(Glibc)
    import Glibc
#endif
import Testing
import WeftCRDT
import WeftServer
import WeftSQLite

@testable import Weft

/// Large documents edited locally are kept as an image and patches (`document_parts`), with a
/// stub in `documents.record`. Every reader resolves the stub into the record the writes made;
/// every writer that stores the record whole drops the parts. The model: the fields each edit
/// set, checked against what every reader returns, from this storage, another one on the same
/// file, and a reopened one.
@Suite struct DocumentPartsTests {
    /// A record of about 150 KB, above the 64 KiB from which a document is kept in parts.
    static let fields = 6_000

    static func key() throws -> DocumentKey {
        DocumentKey(collection: try CollectionName("assets"), id: try DocumentID("big"))
    }

    /// Creates document "big" of ``fields`` string fields in `documents`.
    static func createBig(_ documents: ReplicaCollection) async throws {
        try await documents.upsert("big") { editor in
            for index in 0..<Self.fields { editor.set("field\(index)", to: .string("reading \(index)")) }
        }
    }

    static func open(_ directory: TemporaryDirectory) async throws -> (Replica, SQLiteReplicaStorage) {
        let storage = try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
        return (try await Replica(storage: storage), storage)
    }

    /// The row's form: whether `documents.record` is a stub, and how many parts are stored.
    static func form(_ directory: TemporaryDirectory, collection: String = "assets") throws -> (stub: Bool, parts: Int) {
        let queue = try DatabaseQueue(path: directory.path("replica.sqlite"))
        return try queue.read { db in
            let stub = try Bool.fetchOne(
                db, sql: "SELECT substr(record, 1, 4) = x'FF575001' FROM documents WHERE collection = ? AND id = 'big'",
                arguments: [collection]) ?? false
            let parts = try Int.fetchOne(db, sql: "SELECT count(*) FROM document_parts") ?? 0
            return (stub, parts)
        }
    }

    /// Checks `record` against the model: every field holds the value last set.
    static func check(_ record: DocumentRecord?, _ model: [String: String], extraFields: Int = 0, _ what: String) {
        guard let record else {
            Issue.record("\(what): no record")
            return
        }
        #expect(record.body.count == model.count + extraFields, "\(what): field count")
        let wrong = model.filter { record.body.string($0.key) != $0.value }
        #expect(wrong.isEmpty, "\(what): \(wrong.count) fields differ, e.g. \(wrong.first.map { "\($0.key)" } ?? "")")
    }

    @Test func editsAppendPatchesAndEveryReaderSeesThem() async throws {
        let directory = TemporaryDirectory()
        var (replica, storage) = try await Self.open(directory)
        let documents = try replica.collection("assets")
        var model = [String: String]()
        try await Self.createBig(documents)
        for index in 0..<Self.fields { model["field\(index)"] = "reading \(index)" }
        #expect(try Self.form(directory) == (false, 0), "a document is created whole")

        for round in 1...5 {
            let field = "field\(round * 37)"
            try await documents.update("big") { editor in
                editor.set(field, to: .string("edit \(round)"))
                editor.increment("edits")
            }
            model[field] = "edit \(round)"
            #expect(try Self.form(directory) == (true, round + 1), "round \(round): the image and \(round) patches")
        }
        // Counters and removals go through patches too.
        try await documents.update("big") { $0.removeField("field1") }
        model["field1"] = nil
        let edited = try #require(try await replica.record(Self.key()))
        #expect(edited.body.counter("edits") == 5)
        Self.check(edited, model, extraFields: 1, "after the edits")

        // Every reader: get, getMany, a page of the collection, the queue.
        let expected = try #require(try await storage.record(for: Self.key()))
        #expect(expected == edited)
        #expect(try await storage.records(for: [Self.key()])[Self.key()] == edited)
        #expect(try await storage.records(in: try CollectionName("assets"), where: DocumentFilter(), limit: nil).first?.record == edited)
        let queued = try await replica.queuedChanges()
        #expect(queued.count == 1 && queued.first?.record == edited, "the queue stands for the whole record")

        // Another storage on the file (no memo) resolves the parts; so does a reopened one.
        let (_, other) = try await Self.open(directory)
        #expect(try await other.record(for: Self.key()) == edited)
        storage = other
        (replica, storage) = try await Self.open(directory)
        #expect(try await storage.record(for: Self.key()) == edited)
        #expect(try await replica.queuedChanges().first?.record == edited)
    }

    @Test func anotherWriterOnTheFileIsNeverHiddenByTheMemo() async throws {
        let directory = TemporaryDirectory()
        let (first, _) = try await Self.open(directory)
        let (second, _) = try await Self.open(directory)
        try await Self.createBig(first.collection("assets"))
        // Each edits in turn, both in parts: each must build on the other's last patch.
        for round in 0..<4 {
            try await first.collection("assets").update("big") { $0.set("a\(round)", to: .string("first")) }
            try await second.collection("assets").update("big") { $0.set("b\(round)", to: .string("second")) }
        }
        let form = try Self.form(directory)
        #expect(form.stub)
        for replica in [first, second] {
            let record = try #require(try await replica.record(Self.key()))
            for round in 0..<4 {
                #expect(record.body.string("a\(round)") == "first")
                #expect(record.body.string("b\(round)") == "second")
            }
            #expect(record.body.count == Self.fields + 8)
        }
    }

    @Test func wholeWritesDropThePartsAndPatchesFoldBack() async throws {
        let directory = TemporaryDirectory()
        let (replica, _) = try await Self.open(directory)
        let documents = try replica.collection("assets")
        try await Self.createBig(documents)
        try await documents.update("big") { $0.set("field3", to: .string("patched")) }
        #expect(try Self.form(directory) == (true, 2))

        // A pulled change is stored whole: the parts go (the trigger), and the record is the join.
        let local = try #require(try await replica.record(Self.key()))
        let stranger = ReplicaID(high: 0xFEED, low: 0xBEEF)
        var body = local.body
        body.set("field4", to: .string("pulled"), at: HLCTimestamp(wallMilliseconds: local.lastStamp.wallMilliseconds + 1, counter: 0, replica: stranger))
        var version = local.version
        version.increment(stranger)
        _ = try await replica.applyRemote([(key: Self.key(), record: DocumentRecord(body: body, deletion: local.deletion, version: version))], through: 1)
        #expect(try Self.form(directory) == (false, 0))
        let pulled = try #require(try await replica.record(Self.key()))
        #expect(pulled.body.string("field3") == "patched" && pulled.body.string("field4") == "pulled")

        // Patches past a quarter of the image: the record goes whole again, then parts anew.
        var model = [String: String]()
        var round = 0
        while true {
            round += 1
            let value = String(repeating: "x", count: 2_000) + "\(round)"
            let field = "field\(round % 50)"
            try await documents.update("big") { $0.set(field, to: .string(value)) }
            model["field\(round % 50)"] = value
            if try !Self.form(directory).stub { break }
            #expect(round < 200, "the patches fold before 200 edits of 2 KB")
            if round >= 200 { return }
        }
        #expect(try Self.form(directory).parts == 0, "written whole")
        try await documents.update("big") { $0.set("field5", to: .string("after the fold")) }
        #expect(try Self.form(directory) == (true, 2))
        let folded = try #require(try await replica.record(Self.key()))
        for (field, value) in model where field != "field5" { #expect(folded.body.string(field) == value) }
        #expect(folded.body.string("field5") == "after the fold")

        // A delete is written whole: the parts go with it.
        try await documents.delete("big")
        #expect(try Self.form(directory) == (false, 0))
        #expect(try await replica.record(Self.key())?.isDeleted == true)
    }

    @Test func aDeadLetterKeepsTheWholeRecord() async throws {
        let directory = TemporaryDirectory()
        let (replica, storage) = try await Self.open(directory)
        let documents = try replica.collection("assets")
        try await Self.createBig(documents)
        try await documents.update("big") { $0.set("field3", to: .string("patched")) }
        #expect(try Self.form(directory).stub)
        let entry = try #require(try await replica.queuedChanges().first)
        try await storage.moveToDeadLetter(sequence: entry.sequence, reason: "refused")
        let letter = try #require(try await storage.deadLetters(limit: 10).first)
        #expect(letter.record == entry.record)
        #expect(letter.record.body.string("field3") == "patched")
    }

    @Test func aLargeDocumentSyncsFromItsPartsAndComesBackWhole() async throws {
        let directory = TemporaryDirectory()
        let store = MemoryCentralStore()
        let service = SyncService(store: store)
        let (writer, _) = try await Self.open(directory)
        let reader = try await Replica(storage: MemoryReplicaStorage())
        let writerEngine = SyncEngine(replica: writer, transport: InProcessTransport(service: service, database: "db"))
        let readerEngine = SyncEngine(replica: reader, transport: InProcessTransport(service: service, database: "db"))
        try await Self.createBig(writer.collection("assets"))
        _ = try await writerEngine.syncOnce()
        for round in 0..<3 {
            try await writer.collection("assets").update("big") { $0.set("field\(round)", to: .string("edit \(round)")) }
        }
        #expect(try Self.form(directory).stub)
        _ = try await writerEngine.syncOnce()
        _ = try await readerEngine.syncOnce()
        let written = try #require(try await writer.record(Self.key()))
        #expect(try await reader.record(Self.key()) == written)
        #expect(try await store.record(database: "db", key: Self.key()) == written)
        #expect(try await writer.queuedChanges().isEmpty)
        #expect(written.body.string("field2") == "edit 2")
    }

    /// A process writing a document kept in parts is killed with SIGKILL after a random number of
    /// acknowledged writes, three times: after each kill the record resolves, holds every
    /// acknowledged write (and at most the one in flight besides), and the queue stands for it.
    /// The kills fall between patches, on folds back to a whole record and on new images.
    @Test func aKilledWriterLosesNoPatch() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("replica.sqlite")
        let executable = try builtExecutable("WeftCrashWriter")
        let fields = 4_000
        var random = SeededRandom(seed: 0x5EED_0F_DA7A)
        var expectedStart = 0
        var sawParts = false
        for round in 0..<3 {
            let target = Int.random(in: 50...700, using: &random)
            let process = Process()
            process.executableURL = executable
            process.arguments = ["large", path, "\(fields)"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = Pipe()
            try process.run()
            // Wait for `target` acknowledgements (events, not time), then kill.
            let reader = output.fileHandleForReading
            let lines = await Task.detached { () -> [String] in
                var text = ""
                var acks = 0
                while acks < target {
                    let chunk = reader.availableData
                    if chunk.isEmpty { break }
                    let piece = String(decoding: chunk, as: UTF8.self)
                    text += piece
                    acks += piece.split(separator: "\n").filter { $0.hasPrefix("ack ") }.count
                }
                return text.split(separator: "\n").map(String.init)
            }.value
            kill(process.processIdentifier, SIGKILL)
            let rest = String(decoding: reader.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let all = lines + rest.split(separator: "\n").map(String.init)
            let start = try #require(all.first.flatMap { $0.hasPrefix("start ") ? Int($0.dropFirst(6)) : nil }, "round \(round): \(all.prefix(3))")
            #expect(start == expectedStart, "round \(round): the writer resumes after the committed writes")
            let acked = all.compactMap { $0.hasPrefix("ack ") ? Int($0.dropFirst(4)) : nil }
            let lastAcked = acked.last ?? (start - 1)

            let parts = try Self.form(directory, collection: "large").parts
            sawParts = sawParts || parts > 0
            let storage = try SQLiteReplicaStorage(path: path)
            let key = DocumentKey(collection: try CollectionName("large"), id: try DocumentID("big"))
            let record = try #require(try await storage.record(for: key))
            let committed = Int(record.body.counter("count") ?? 0)
            #expect(committed == lastAcked + 1 || committed == lastAcked + 2, "round \(round): \(committed) committed, \(lastAcked) acknowledged last")
            var wrong = 0
            for field in 0..<fields {
                // The last write below `committed` to this field, or none.
                let last = committed - 1 - ((committed - 1 - field) % fields + fields) % fields
                let expected = last >= 0 && last % fields == field ? Int64(last) : -1
                if record.body.scalar("f\(field)") != .int(expected) { wrong += 1 }
            }
            #expect(wrong == 0, "round \(round): \(wrong) fields differ from the writes committed")
            #expect(try await storage.entries().last?.record == record, "the queue stands for the record")
            expectedStart = committed
        }
        #expect(sawParts, "the kills fell on a document kept in parts")
    }
}
