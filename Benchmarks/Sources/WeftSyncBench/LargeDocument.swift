// One field of a large document edited (issue #15): the bytes a push and a pull of the change
// put on the wire, and the local edit's time, for a document of 100,000 fields beside one of
// 1,000.

import Foundation
import Synchronization
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftWire

struct LargeDocumentPass {
    var fields: Int
    var editMilliseconds: Double
    /// The first edit after the sync: for a document kept in parts, it also copies the record
    /// into the image.
    var firstEditMilliseconds: Double
    var meanEditMilliseconds: Double
    var pushedBytes: Int
    var pulledBytes: Int
    var json: [String: Any] {
        [
            "fields": fields, "local_edit_ms": rounded(editMilliseconds, 3), "first_edit_ms": rounded(firstEditMilliseconds, 3),
            "mean_edit_ms": rounded(meanEditMilliseconds, 3), "pushed_bytes": pushedBytes, "pulled_bytes": pulledBytes,
        ]
    }
}

/// A writer and a reader replica (SQLite files) on a Standalone server on loopback: the writer
/// creates a document of `fields` fields, both sync; then the writer edits one field (timed,
/// best of `repeats` edits, with the first and the mean), pushes, and the reader pulls, with every framed byte counted.
func runLargeDocument(fields: Int, repeats: Int) async throws -> LargeDocumentPass {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let server = try await BenchServer.start(storePath: scratch.file("central.sqlite"), policy: .crdt, maxDocumentBytes: 64 << 20)
    func replica(_ name: String) async throws -> (Replica, SyncEngine, WireCounter) {
        let replica = try await Replica.open(path: scratch.file("\(name).sqlite"))
        let counter = WireCounter(HTTPTransport(baseURL: server.baseURL, database: BenchServer.database, token: BenchServer.token))
        return (replica, SyncEngine(replica: replica, transport: counter), counter)
    }
    let (writer, writerEngine, writerWire) = try await replica("writer")
    let (reader, readerEngine, readerWire) = try await replica("reader")
    let documents = try writer.collection("assets")
    try await documents.upsert("big") { editor in
        for index in 0..<fields { editor.set("field\(index)", to: .string("reading \(index)")) }
    }
    _ = try await writerEngine.syncOnce()
    _ = try await readerEngine.syncOnce()
    var times = [Double]()
    let clock = ContinuousClock()
    for round in 0..<repeats {
        let start = clock.now
        try await documents.update("big") { $0.set("field7", to: .string("edit \(round)")) }
        times.append(seconds(clock.now - start) * 1000)
    }
    writerWire.reset()
    readerWire.reset()
    _ = try await writerEngine.pushAll()
    _ = try await readerEngine.pullAll()
    let key = DocumentKey(collection: try CollectionName("assets"), id: try DocumentID("big"))
    guard try await writer.queuedChanges().isEmpty, try await writer.deadLetters().isEmpty,
        try await reader.record(key) == (try await server.store.record(database: BenchServer.database, key: key))
    else {
        throw BenchFailure("the reader's record differs from the server's")
    }
    await server.stop()
    return LargeDocumentPass(
        fields: fields, editMilliseconds: times.min() ?? 0, firstEditMilliseconds: times.first ?? 0,
        meanEditMilliseconds: times.reduce(0, +) / Double(max(1, times.count)), pushedBytes: writerWire.pushed.withLock { $0 }, pulledBytes: readerWire.pulled.withLock { $0 })
}
