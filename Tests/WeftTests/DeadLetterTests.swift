import Foundation
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftSQLite

/// A change the server refuses for good goes to the dead letters and never blocks the queue.
@Suite("Dead letters")
struct DeadLetterTests {
    @Test func aDocumentOverTheServerLimitIsSetAsideAndTheRestSyncs() async throws {
        let directory = TemporaryDirectory()
        var limits = ServerLimits()
        limits.maxDocumentBytes = 2_000
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: limits)
        let path = directory.path("replica.sqlite")
        do {
            let replica = try await Replica.open(path: path)
            let c = try replica.collection("c")
            for index in 0..<6 {
                try await c.create("d\(index)") { editor in
                    editor.set("n", to: .int(Int64(index)))
                    // Document 2 is far over the server's max_document_bytes.
                    if index == 2 { editor.set("blob", to: .bytes([UInt8](repeating: 7, count: 10_000))) }
                }
            }
            let transport = HTTPTransport(
                baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken, timeout: .seconds(60))
            let engine = SyncEngine(replica: replica, transport: transport)
            await engine.setBatchLimits(entries: 4, bytes: 1 << 20)
            let report = try await engine.syncOnce()
            #expect(report.pushed == 5)
            #expect(await engine.deadLettered == 1)
            #expect(try await replica.queuedChanges().isEmpty, "the refused change does not block the queue")
            #expect(try await replica.queuedBytes() == 0)
            let letters = try await replica.deadLetters()
            #expect(letters.map(\.key.id.rawValue) == ["d2"])
            #expect(letters.first?.reason.contains("max_document_bytes") == true, "\(letters)")
            #expect(letters.first?.record.body.scalar("blob") == .bytes([UInt8](repeating: 7, count: 10_000)))
            let central = try await server.store.changes(database: "mydb", after: 0, limit: 100, maxBytes: 1 << 20).changes
            #expect(Set(central.map(\.key.id.rawValue)) == ["d0", "d1", "d3", "d4", "d5"])
            // The document is still there locally; a later write that fits is queued and syncs.
            try await c.update("d2") { $0.removeField("blob") }
            #expect(try await engine.syncOnce().pushed == 1)
            #expect(try await server.store.record(database: "mydb", key: key("c", "d2"))?.body.int("n") == 2)
        }
        // The dead letters survive a restart.
        let reopened = try await Replica.open(path: path)
        #expect(try await reopened.deadLetters().map(\.key.id.rawValue) == ["d2"])
        await server.stop()
    }

    @Test("8. moving an entry to the dead letters removes it and its bytes", arguments: StorageKind.allCases)
    func contract(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let storage = try kind.make(directory)
        let a = sampleRecord("n", 1, wall: 1)
        let b = sampleRecord("n", 2, wall: 2)
        let sequences = try await storage.commitLocalWrites(
            [LocalWrite(key: key("c", "a"), record: a), LocalWrite(key: key("c", "b"), record: b)], maxQueueBytes: 1 << 20)
        let before = try await storage.totalBytes()
        let entries = try await storage.entries()
        try await storage.moveToDeadLetter(sequence: sequences[0], reason: "too large")
        #expect(try await storage.entries().map(\.sequence) == [sequences[1]])
        #expect(try await storage.totalBytes() == before - entries[0].byteCount)
        let letters = try await storage.deadLetters(limit: 10)
        #expect(letters == [DeadLetter(sequence: sequences[0], key: key("c", "a"), record: a, reason: "too large")])
        #expect(try await storage.record(for: key("c", "a")) == a, "the document itself is kept")
        await #expect(throws: WeftError.self) { try await storage.moveToDeadLetter(sequence: 999, reason: "none") }
    }
}
