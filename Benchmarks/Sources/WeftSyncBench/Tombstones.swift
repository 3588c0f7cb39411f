// Forgotten tombstones (issue #15, point 3): a server holding N documents of which half were
// deleted; a new replica's first sync before and after the server forgets the tombstones,
// beside a server holding only the live half.

import Foundation
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer

/// What one tombstone pass measured.
struct TombstonePass {
    var label: String
    var documents: Int
    var seconds: Double
    var pulledBytes: Int
    var pulledChanges: Int
    var storeBytesInUse: Int

    var json: [String: Any] {
        [
            "store": label, "documents_stored": documents, "bootstrap_seconds": rounded(seconds, 3), "bootstrap_pulled_bytes": pulledBytes,
            "bootstrap_changes": pulledChanges, "store_bytes_in_use": storeBytesInUse,
        ]
    }
}

/// Three SQLite stores: `documents` documents with every other one deleted (its tombstone kept),
/// the same after the server forgot the tombstones, and only the live half written. A new
/// replica bootstraps from each `repeats` times (alternating), then once more counting bytes.
func runTombstones(documents: Int, repeats: Int) async throws -> [TombstonePass] {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let writer = ReplicaID.random()
    let collection = try CollectionName("orders")
    let keys = try (0..<documents).map { DocumentKey(collection: collection, id: try DocumentID("order-\($0)")) }
    var wall: UInt64 = 1_700_000_000_000
    func live(_ index: Int) -> DocumentRecord {
        wall += 1
        let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: writer)
        var body = Document()
        body.set("title", to: .string("Work order \(index): replace the pump seal at site \(index % 97)"), at: stamp)
        body.set("status", to: .string("open"), at: stamp)
        body.set("priority", to: .int(Int64(index % 5)), at: stamp)
        return DocumentRecord(body: body, deletion: LWWRegister(false, stamp: stamp), version: VersionVector([writer: 1]))
    }
    func deleted(_ record: DocumentRecord) -> DocumentRecord {
        wall += 1
        var body = record.body
        for key in body.keys { body.removeField(key) }
        var version = record.version
        version.increment(writer)
        return DocumentRecord(
            body: body, deletion: LWWRegister(true, stamp: HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: writer)), version: version)
    }
    func push(_ store: SQLiteCentralStore, _ changes: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)]) async throws {
        for start in stride(from: 0, to: changes.count, by: 1_000) {
            _ = try await store.applyPush(
                database: BenchServer.database, replica: writer, changes: Array(changes[start..<min(changes.count, start + 1_000)])
            ) { local, key, remote throws(WeftError) in try DocumentMerge.merge(local: local, remote: remote, key: key, policy: .crdt) }
        }
    }
    let records = (0..<documents).map { live($0) }
    var paths = [String]()
    for which in 0..<3 {
        let path = scratch.file("store-\(which).sqlite")
        paths.append(path)
        let store = try SQLiteCentralStore(path: path)
        if which < 2 {
            try await push(store, records.indices.map { (UInt64($0 + 1), keys[$0], records[$0]) })
            try await push(
                store, stride(from: 1, to: documents, by: 2).enumerated().map { (UInt64(documents + $0.offset + 1), keys[$0.element], deleted(records[$0.element])) })
            if which == 1 {
                // No replica pulled since: every tombstone goes.
                while try await !store.collectTombstones(pulledSince: .max, limit: 1_000).passFinished {}
            } else {
                // A replica that pulled from 0 just now holds every tombstone back (the server's
                // own pass runs as it starts).
                try await store.rememberPull(
                    database: BenchServer.database, replica: ReplicaID.random(), after: 0, afterTag: 0, served: 1, servedTag: 0,
                    pulledAt: SystemTimeSource().currentMilliseconds())
            }
        } else {
            try await push(store, stride(from: 0, to: documents, by: 2).map { (UInt64($0 + 1), keys[$0], records[$0]) })
        }
    }
    let servers = try await paths.asyncMap { try await BenchServer.start(storePath: $0, policy: .crdt) }
    let rounds = try await bootstrapRounds(from: servers, repeats: repeats, scratch: scratch)
    for server in servers { await server.stop() }
    var passes = [TombstonePass]()
    for (which, label) in ["half deleted, tombstones kept", "half deleted, tombstones forgotten", "live half only"].enumerated() {
        let figures = try await storeFigures(paths[which])
        passes.append(
            TombstonePass(
                label: label, documents: figures.documents, seconds: rounds.times[which], pulledBytes: rounds.pulled[which],
                pulledChanges: rounds.changes[which], storeBytesInUse: figures.bytesInUse))
    }
    return passes
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var result = [T]()
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
