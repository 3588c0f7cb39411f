import Foundation
import Testing
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftSQLite

/// Issue #14: what a fault-injection suite, and an app, needs from the library: which writes
/// the server acknowledged, and a collection's tombstones.
@Suite("Acknowledgements and tombstones", .serialized)
struct AcknowledgementTests {
    /// A real server on loopback, a replica on a SQLite file: the report, the progress stream and
    /// the replica say which writes are durable on the server; a dead letter never counts.
    @Test func theReplicaSaysWhichWritesTheServerAcknowledged() async throws {
        let directory = TemporaryDirectory()
        var limits = ServerLimits()
        limits.maxDocumentBytes = 2_000
        let server = try await RunningServer.start(store: MemoryCentralStore(), limits: limits)
        let path = directory.path("replica.sqlite")
        var sequences = [String: UInt64]()
        do {
            let replica = try await Replica.open(path: path)
            let c = try replica.collection("c")
            for index in 0..<6 {
                try await c.create("d\(index)") { editor in
                    editor.set("n", to: .int(Int64(index)))
                    if index == 2 { editor.set("blob", to: .bytes([UInt8](repeating: 7, count: 10_000))) }
                }
            }
            for entry in try await replica.queuedChanges() { sequences[entry.key.id.rawValue] = entry.sequence }
            #expect(sequences.count == 6)
            #expect(try await replica.acknowledgedThrough() == 0)
            for sequence in sequences.values { #expect(try await !replica.isAcknowledged(sequence: sequence)) }

            let transport = HTTPTransport(baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken)
            let engine = SyncEngine(replica: replica, transport: transport)
            await engine.setBatchLimits(entries: 2, bytes: 1 << 20)
            let progress = await engine.progress()
            let report = try await engine.syncOnce()
            let last = try #require(sequences.values.max())
            #expect(report.acknowledgedThrough == last)
            #expect(report.deadLettered == 1)
            #expect(report.pushed == 5)
            for (id, sequence) in sequences {
                #expect(try await replica.isAcknowledged(sequence: sequence) == (id != "d2"), "\(id)")
            }
            // The progress stream showed the mark rising batch by batch to the last sequence.
            // (Buffered while the round ran; a guard of a minute ends the read if a step is missing.)
            let reading = Task {
                var marks = [UInt64]()
                for await step in progress {
                    marks.append(step.acknowledgedThrough)
                    if step.entriesDone == step.entriesTotal && step.acknowledgedThrough == last { break }
                }
                return marks
            }
            let guardTask = Task { try await Task.sleep(for: .seconds(60)); reading.cancel() }
            let marks = await reading.value
            guardTask.cancel()
            #expect(marks == marks.sorted() && marks.last == last && Set(marks.filter { $0 > 0 }).count >= 3, "\(marks)")

            // A new write is not acknowledged until the next round.
            try await c.update("d0") { $0.set("n", to: 100) }
            let newest = try #require(try await replica.queuedChanges().last?.sequence)
            #expect(try await !replica.isAcknowledged(sequence: newest))
            #expect(try await engine.syncOnce().acknowledgedThrough == newest)
            #expect(try await replica.isAcknowledged(sequence: newest))
        }
        // The mark survives a restart.
        let reopened = try await Replica.open(path: path)
        #expect(try await reopened.acknowledgedThrough() == sequences.values.max().map { $0 + 1 })
        await server.stop()
    }

    /// Tombstones of local and of pulled deletions, on a SQLite file; a re-created document is
    /// no longer one.
    @Test func aCollectionListsItsTombstones() async throws {
        let directory = TemporaryDirectory()
        let server = try await RunningServer.start(store: MemoryCentralStore())
        let a = try await Replica.open(path: directory.path("a.sqlite"))
        let b = try await Replica.open(path: directory.path("b.sqlite"))
        let engineA = SyncEngine(replica: a, transport: HTTPTransport(baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken))
        let engineB = SyncEngine(replica: b, transport: HTTPTransport(baseURL: server.baseURL, database: "mydb", token: RunningServer.writeToken))
        for id in ["w1", "w2", "w3", "w4"] { try await a.collection("orders").create(id) { $0.set("qty", to: 1) } }
        try await engineA.syncOnce()
        try await engineB.syncOnce()
        #expect(try await b.collection("orders").tombstones().isEmpty)

        try await a.collection("orders").delete("w2")
        try await b.collection("orders").delete("w4")
        try await engineA.syncOnce()
        try await engineB.syncOnce()
        try await engineA.syncOnce()
        for replica in [a, b] {
            let tombstones = try await replica.collection("orders").tombstones()
            #expect(tombstones.map(\.id.rawValue) == ["w2", "w4"])
            #expect(try await replica.collection("orders").list().map(\.id.rawValue) == ["w1", "w3"])
        }
        let deletedByA = try #require(try await b.collection("orders").tombstones().first)
        #expect(deletedByA.deletedAt.replica == a.replicaID)

        // Re-created: no longer a tombstone, on either replica once synced.
        try await b.collection("orders").create("w2") { $0.set("qty", to: 2) }
        try await engineB.syncOnce()
        try await engineA.syncOnce()
        #expect(try await a.collection("orders").tombstones().map(\.id.rawValue) == ["w4"])
        #expect(try await b.collection("orders").tombstones().map(\.id.rawValue) == ["w4"])
        await server.stop()
    }
}
