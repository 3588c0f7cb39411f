// Bootstrap and storage against history (issue #15): a server holding N documents, each
// written V times by writers with random ids, and a new replica's first sync over HTTP.

import Foundation
import GRDB
import Synchronization
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftWire

/// What one bootstrap pass measured.
struct BootstrapPass {
    var documents: Int
    var versions: Int
    /// The new replica's first `pullAll()`, over HTTP on loopback, into a SQLite file.
    var seconds: Double
    /// The framed bytes of every page the replica received.
    var pulledBytes: Int
    /// The central store: bytes in use (pages minus free pages), the file, and the live records.
    var storeBytesInUse: Int
    var storeFileBytes: Int
    var liveRecordBytes: Int
    var logEntries: Int

    var json: [String: Any] {
        [
            "documents": documents, "versions_per_document": versions,
            "bootstrap_seconds": rounded(seconds, 3),
            "bootstrap_pulled_bytes": pulledBytes, "store_bytes_in_use": storeBytesInUse,
            "store_file_bytes": storeFileBytes,
            "live_record_bytes": liveRecordBytes, "log_entries": logEntries,
            "store_in_use_over_live_records": rounded(
                Double(storeBytesInUse) / Double(max(1, liveRecordBytes)), 3),
        ]
    }
}

/// Fills a SQLite central store with `documents` documents, `versions` versions each, written in
/// rounds by four writers with random ids (each version sets two registers and bumps a counter of
/// the document the writer last pulled, so it dominates and the server fast-forwards), and a
/// second store with the same final documents written once (no history). Then bootstraps a new
/// replica from each `repeats` times, alternating, and once more counting bytes.
func runBootstrap(documents: Int, versions: Int, repeats: Int) async throws -> (history: BootstrapPass, noHistory: BootstrapPass) {
    let scratch = try Scratch()
    defer { scratch.remove() }
    let writers = (0..<4).map { _ in ReplicaID.random() }
    var records = [DocumentRecord?](repeating: nil, count: documents)
    var marks = [ReplicaID: UInt64]()
    var wall: UInt64 = 1_700_000_000_000
    let statuses = ["open", "assigned", "in progress", "waiting", "done"]
    let collection = try CollectionName("orders")
    let keys = try (0..<documents).map { DocumentKey(collection: collection, id: try DocumentID("order-\($0)")) }
    func push(_ store: SQLiteCentralStore, _ writer: ReplicaID, _ batch: [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)])
        async throws
    {
        _ = try await store.applyPush(database: BenchServer.database, replica: writer, changes: batch) {
            local, key, remote throws(WeftError) in
            try DocumentMerge.merge(local: local, remote: remote, key: key, policy: .crdt)
        }
    }
    let historyPath = scratch.file("history.sqlite")
    let history = try SQLiteCentralStore(path: historyPath)
    for version in 0..<versions {
        let writer = writers[version % writers.count]
        var batch = [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)]()
        for index in 0..<documents {
            wall += 1
            let stamp = HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: writer)
            var record = records[index] ?? DocumentRecord(body: Document(), deletion: LWWRegister(false, stamp: stamp), version: VersionVector())
            var body = record.body
            if version == 0 {
                body.set("title", to: .string("Work order \(index): replace the pump seal at site \(index % 97)"), at: stamp)
                body.set("priority", to: .int(Int64(index % 5)), at: stamp)
                body.set("billable", to: .bool(index % 3 == 0), at: stamp)
            }
            body.set("status", to: .string(statuses[version % statuses.count]), at: stamp)
            body.set("hours", to: .double(Double(version) * 0.25), at: stamp)
            body.increment("visits", by: 1, at: stamp)
            var vector = record.version
            vector.increment(writer)
            record = DocumentRecord(body: body, deletion: record.deletion, version: vector)
            records[index] = record
            let sequence = (marks[writer] ?? 0) + 1
            marks[writer] = sequence
            batch.append((sequence, keys[index], record))
            if batch.count == 1_000 || index == documents - 1 {
                try await push(history, writer, batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
    }
    // The same documents, written once.
    let plainPath = scratch.file("plain.sqlite")
    let plain = try SQLiteCentralStore(path: plainPath)
    let loader = ReplicaID.random()
    for start in stride(from: 0, to: documents, by: 1_000) {
        let end = min(documents, start + 1_000)
        try await push(plain, loader, (start..<end).compactMap { index in records[index].map { (UInt64(index + 1), keys[index], $0) } })
    }
    let servers = [
        try await BenchServer.start(store: history, storePath: historyPath, policy: .crdt),
        try await BenchServer.start(store: plain, storePath: plainPath, policy: .crdt),
    ]
    let rounds = try await bootstrapRounds(from: servers, repeats: repeats, scratch: scratch)
    for (which, changes) in rounds.changes.enumerated() where changes < documents {
        throw BenchFailure("the bootstrap from store \(which) applied \(changes) changes for \(documents) documents")
    }
    let (times, pulled) = (rounds.times, rounds.pulled)
    for server in servers { await server.stop() }
    var passes = [BootstrapPass]()
    for (which, path) in [historyPath, plainPath].enumerated() {
        let figures = try await storeFigures(path)
        passes.append(
            BootstrapPass(
                documents: documents, versions: which == 0 ? versions : 1, seconds: times[which], pulledBytes: pulled[which],
                storeBytesInUse: figures.bytesInUse, storeFileBytes: figures.fileBytes, liveRecordBytes: figures.liveRecordBytes,
                logEntries: figures.logEntries))
    }
    return (passes[0], passes[1])
}

/// A new SQLite replica's first `pullAll()` from each of `servers`, `repeats` times in
/// alternating order (timed), then once more through a byte counter: the median times, the
/// framed bytes and the changes of the counted run, per server.
func bootstrapRounds(from servers: [BenchServer], repeats: Int, scratch: Scratch) async throws
    -> (times: [Double], pulled: [Int], changes: [Int])
{
    var times = [[Double]](repeating: [], count: servers.count)
    var pulled = [Int](repeating: 0, count: servers.count)
    var changes = [Int](repeating: 0, count: servers.count)
    for round in 0..<repeats + 1 {
        let order = Array(servers.indices)
        for which in round % 2 == 0 ? order : order.reversed() {
            let counting = round == repeats
            let replica = try await Replica.open(path: scratch.file("replica-\(which)-\(round).sqlite"))
            let http = HTTPTransport(baseURL: servers[which].baseURL, database: BenchServer.database, token: BenchServer.token)
            let counter = WireCounter(http)
            let engine = SyncEngine(replica: replica, transport: counting ? counter : http)
            let clock = ContinuousClock()
            let start = clock.now
            let result = try await engine.pullAll()
            if counting {
                pulled[which] = counter.pulled.withLock { $0 }
                changes[which] = result.changes
            } else {
                times[which].append(seconds(clock.now - start))
            }
        }
    }
    return (times.map(median), pulled, changes)
}

/// A SQLite central store's size after a checkpoint (so the WAL's pages are in the file): bytes
/// in use (pages minus free pages), the file, the live records, the log entries and documents.
func storeFigures(_ path: String) async throws -> (bytesInUse: Int, fileBytes: Int, liveRecordBytes: Int, logEntries: Int, documents: Int) {
    let queue = try DatabaseQueue(path: path)
    let figures = try await queue.writeWithoutTransaction { db -> (Int, Int, Int, Int, Int) in
        try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0
        let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        let live = try Int.fetchOne(db, sql: "SELECT sum(length(record)) FROM documents") ?? 0
        let entries = try Int.fetchOne(db, sql: "SELECT count(*) FROM log") ?? 0
        let documents = try Int.fetchOne(db, sql: "SELECT count(*) FROM documents") ?? 0
        return ((pages - free) * pageSize, pages * pageSize, live, entries, documents)
    }
    try queue.close()
    return figures
}
