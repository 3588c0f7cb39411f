// weft-query-bench: queries on a Weft replica against raw SQLite on the same data, in the same
// run (issue #16). Prints one JSON object on stdout; progress goes to stderr.
//
// Usage: swift run -c release --package-path Benchmarks weft-query-bench [--documents N] [--quick]
//
// The data: N work orders (default 1,000,000) with `status` (N/50 values, so an equality finds
// 50), `created` (a random integer), `assignee` (one of 1,000) and a title. Weft declares the
// three as indexes; raw SQLite has a table with the three as columns, each with an index, and
// the same encoded record as a BLOB. Measured:
//
// - writes: both load the N documents in batches of 1,000 per commit (documents a second);
// - equality: `status = ?` (50 rows), Weft's query against raw SQLite's SELECT of the rows;
// - range: `created` in a range, sorted by `created`, limit 20;
// - live: a live query over 10,000 matching documents on a replica that pulls one change from
//   an in-process server: from the change's publication to the new page;
// - iteration: a child process iterates every document of the N through `results(of:)` in the
//   order of `created`, and reports its peak resident memory.

import Foundation
import GRDB
import Weft
import WeftCRDT
import WeftReplicaBench
import WeftServer
import WeftSQLite

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

func log(_ message: String) {
    var line = "[weft-query-bench] " + message + "\n"
    line.withUTF8 { buffer in _ = write(2, buffer.baseAddress, buffer.count) }
}

func fail(_ message: String) -> Never {
    log(message)
    exit(1)
}

var documents = 1_000_000
var iteratePath: String?
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--documents":
        guard let text = arguments.popFirst(), let value = Int(text.replacingOccurrences(of: "_", with: "")), value >= 1_000 else {
            fail("--documents needs a whole number >= 1000")
        }
        documents = value
    case "--quick": documents = 20_000
    case "--iterate":
        guard let path = arguments.popFirst() else { fail("--iterate needs a database path") }
        iteratePath = path
    case "-h", "--help":
        print("usage: weft-query-bench [--documents N] [--quick]")
        exit(0)
    default: fail("unknown argument \(argument)")
    }
}

let collection = "orders"
let indexes: [IndexedField] = [.value("status"), .value("created"), .value("assignee")]

func configuration() -> ReplicaConfiguration {
    var configuration = ReplicaConfiguration(maxQueueBytes: 1 << 40)
    configuration.collectionIndexes = [collection: indexes]
    configuration.sessionIdentities = false
    return configuration
}

/// Document `index`'s fields, from a seeded generator (the same for both stores).
struct Order: Sendable {
    var id: String
    var status: String
    var created: Int64
    var assignee: String
    var title: String
}

func orders(_ count: Int) -> [Order] {
    var generator = SystemRandomNumberGenerator()
    let groups = max(1, count / 50)
    return (0..<count).map { index in
        Order(
            id: "wo-\(UInt64.random(in: 0...UInt64.max, using: &generator))-\(index)", status: "s\(index % groups)",
            created: Int64.random(in: 0..<Int64(count) * 10, using: &generator),
            assignee: "tech-\(Int.random(in: 0..<1_000, using: &generator))", title: "Replace valve in building \(index % 97), unit \(index)")
    }
}

// MARK: - Iteration in a child process

if let iteratePath {
    do {
        let before = residentMemoryBytes() ?? 0
        let replica = try await Replica.open(path: iteratePath, configuration: configuration())
        let query = DocumentQuery(Field("created") >= 0, orderBy: [Field("created").ascending])
        let explained = try replica.collection(collection).explain(query)
        var count = 0
        var sampledPeak = 0
        let clock = ContinuousClock()
        let start = clock.now
        for try await (_, document) in try replica.collection(collection).results(of: query, pageSize: 500) {
            count += document.count > 0 ? 1 : 0
            if count % 10_000 == 0 { sampledPeak = max(sampledPeak, residentMemoryBytes() ?? 0) }
        }
        let seconds = nanoseconds(clock.now - start) / 1e9
        let peak = peakResidentMemoryBytes() ?? sampledPeak
        print(
            "{\"documents\": \(count), \"seconds\": \(rounded(seconds)), \"rss_before_mib\": \(rounded(Double(before) / 1_048_576, 1)), "
                + "\"peak_rss_mib\": \(rounded(Double(peak) / 1_048_576, 1)), \"plan\": \"\(explained)\"}")
        exit(0)
    } catch {
        fail("iteration failed: \(error)")
    }
}

// MARK: - Raw SQLite

final class RawOrders: Sendable {
    let pool: DatabasePool

    init(path: String) throws {
        pool = try DatabasePool(path: path)
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        try pool.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE orders (id TEXT PRIMARY KEY NOT NULL, status, created, assignee, record BLOB NOT NULL) WITHOUT ROWID;
                    CREATE INDEX orders_status ON orders (status);
                    CREATE INDEX orders_created ON orders (created);
                    CREATE INDEX orders_assignee ON orders (assignee);
                    """)
        }
    }

    func upsert(_ batch: ArraySlice<Order>, payload: [UInt8]) throws {
        try pool.write { db in
            let statement = try db.cachedStatement(
                sql: "INSERT OR REPLACE INTO orders (id, status, created, assignee, record) VALUES (?, ?, ?, ?, ?)")
            for order in batch {
                try statement.execute(arguments: [order.id, order.status, order.created, order.assignee, Data(payload)])
            }
        }
    }

    struct Row: Sendable {
        var id: String
        var status: String?
        var created: Int64?
        var assignee: String?
        var record: Data
    }

    func select(_ sql: String, _ arguments: StatementArguments) throws -> [Row] {
        try pool.read { db in
            let cursor = try GRDB.Row.fetchCursor(db.cachedStatement(sql: sql), arguments: arguments)
            var rows = [Row]()
            while let row = try cursor.next() {
                rows.append(Row(id: row[0], status: row[1], created: row[2], assignee: row[3], record: row[4]))
            }
            return rows
        }
    }
}

// MARK: - Measures

/// Writes `batch` in one commit.
func load(_ replica: Replica, _ batch: ArraySlice<Order>) async throws {
    let name = "orders"
    try await replica.batch { (writes: inout ReplicaBatch) throws(WeftError) in
        for order in batch {
            try writes.upsert(name, order.id) { editor in
                editor.set("status", to: .string(order.status))
                editor.set("created", to: .int(order.created))
                editor.set("assignee", to: .string(order.assignee))
                editor.set("title", to: .string(order.title))
            }
        }
    }
}

/// Writes the live measure's 10,000 documents.
func loadLive(_ replica: Replica) async throws {
    let name = "orders"
    for first in stride(from: 0, to: 10_000, by: 1_000) {
        try await replica.batch { (writes: inout ReplicaBatch) throws(WeftError) in
            for index in first..<first + 1_000 {
                try writes.upsert(name, "live-\(index)") { editor in
                    editor.set("status", to: "open")
                    editor.set("created", to: .int(Int64(index)))
                }
            }
        }
    }
}

func time(_ body: () async throws -> Void) async rethrows -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    try await body()
    return nanoseconds(clock.now - start)
}

func target(_ value: Double, _ comparison: String, _ bound: Double, _ what: String) -> [String: Any] {
    let met = comparison == ">=" ? value >= bound : (comparison == "<" ? value < bound : value <= bound)
    return ["value": rounded(value), "target": "\(comparison) \(bound)", "met": met, "measures": what]
}

var output: [String: Any] = ["documents": documents]
var targets: [String: Any] = [:]
let directory = try ScratchDirectory(prefix: "weft-query-bench")
defer { directory.remove() }

do {
    log("generating \(documents) documents")
    let data = orders(documents)
    let path = directory.file("replica.sqlite")
    let storage = try SQLiteReplicaStorage(path: path)
    let replica = try await Replica(storage: storage, configuration: configuration())
    let weft = try replica.collection(collection)
    let raw = try RawOrders(path: directory.file("raw.sqlite"))
    try await weft.upsert("warmup") { $0.set("status", to: "warmup") }
    let payload = try await replica.record(DocumentKey(collection: try CollectionName(collection), id: try DocumentID("warmup")))?.encoded() ?? []

    // Writes: the whole load, in batches of 1,000, alternating stores by chunks of 100,000.
    log("loading both stores")
    var weftNanoseconds = 0.0
    var rawNanoseconds = 0.0
    for chunk in stride(from: 0, to: documents, by: 100_000) {
        let end = min(chunk + 100_000, documents)
        weftNanoseconds += try await time {
            for first in stride(from: chunk, to: end, by: 1_000) {
                try await load(replica, data[first..<min(first + 1_000, end)])
            }
        }
        rawNanoseconds += try await time {
            for first in stride(from: chunk, to: end, by: 1_000) { try raw.upsert(data[first..<min(first + 1_000, end)], payload: payload) }
        }
        log("  \(end) of \(documents)")
    }
    let weftRate = Double(documents) / (weftNanoseconds / 1e9)
    let rawRate = Double(documents) / (rawNanoseconds / 1e9)
    output["writes_with_3_indexes"] = ["weft_per_second": rounded(weftRate, 0), "raw_per_second": rounded(rawRate, 0)]
    targets["indexed_writes_vs_raw"] = target(weftRate / rawRate, ">=", 0.4, "batched writes with 3 declared indexes / raw SQLite batched upserts with 3 indexes")

    // Equality: 50 of N.
    let groups = max(1, documents / 50)
    var weftSamples = [Double]()
    var rawSamples = [Double]()
    var statuses = (0..<300).map { _ in "s\(Int.random(in: 0..<groups))" }
    let equality = DocumentQuery(Field("status") == .string(statuses[0]))
    let equalityPlan = "\(weft.explain(equality))"
    for (round, status) in statuses.enumerated() {
        var weftCount = 0
        var rawCount = 0
        let weftTime = try await time { weftCount = try await weft.query(Field("status") == .string(status)).documents.count }
        let rawTime = try await time { rawCount = try raw.select("SELECT id, status, created, assignee, record FROM orders WHERE status = ?", [status]).count }
        guard weftCount == rawCount, weftCount == 50 || documents % 50 != 0 else { fail("equality found \(weftCount) in Weft, \(rawCount) raw") }
        if round >= 20 {
            weftSamples.append(weftTime)
            rawSamples.append(rawTime)
        }
    }
    let weftEquality = LatencySummary(weftSamples)
    let rawEquality = LatencySummary(rawSamples)
    output["equality_50"] = ["weft": weftEquality.microseconds, "raw": rawEquality.microseconds, "plan": equalityPlan]
    targets["indexed_equality_vs_raw"] = target(weftEquality.p50 / rawEquality.p50, "<=", 2.0, "p50 of an indexed equality query returning 50 / raw SQLite")

    // Range, sorted, limit 20.
    weftSamples = []
    rawSamples = []
    let span = Int64(documents) * 10
    let range = DocumentQuery(Field("created") >= 0 && Field("created") < 100, orderBy: [Field("created").ascending], limit: 20)
    let rangePlan = "\(weft.explain(range))"
    for round in 0..<300 {
        let low = Int64.random(in: 0..<span / 2)
        let high = low + span / 4
        var weftIDs = [String]()
        var rawIDs = [String]()
        let weftTime = try await time {
            weftIDs = try await weft.query(
                Field("created") >= .int(low) && Field("created") < .int(high), orderBy: [Field("created").ascending], limit: 20
            ).documents.map(\.id.rawValue)
        }
        let rawTime = try await time {
            rawIDs = try raw.select(
                "SELECT id, status, created, assignee, record FROM orders WHERE created >= ? AND created < ? ORDER BY created, id LIMIT 20",
                [low, high]
            ).map(\.id)
        }
        guard weftIDs == rawIDs else { fail("the range queries differ: \(weftIDs.prefix(3)) against \(rawIDs.prefix(3))") }
        if round >= 20 {
            weftSamples.append(weftTime)
            rawSamples.append(rawTime)
        }
    }
    let weftRange = LatencySummary(weftSamples)
    let rawRange = LatencySummary(rawSamples)
    output["range_sort_limit_20"] = ["weft": weftRange.microseconds, "raw": rawRange.microseconds, "plan": rangePlan]
    targets["range_sort_limit_vs_raw"] = target(weftRange.p50 / rawRange.p50, "<=", 2.0, "p50 of a range query sorted with limit 20 / raw SQLite")
    statuses = []

    // Iteration in a child process, on the file just written.
    log("iterating in a child process")
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    child.arguments = ["--iterate", path]
    let pipe = Pipe()
    child.standardOutput = pipe
    try child.run()
    let childOutput = pipe.fileHandleForReading.readDataToEndOfFile()
    child.waitUntilExit()
    guard child.terminationStatus == 0,
        let iteration = try JSONSerialization.jsonObject(with: childOutput) as? [String: Any],
        let peak = iteration["peak_rss_mib"] as? Double
    else { fail("the iteration child failed: \(String(decoding: childOutput, as: UTF8.self))") }
    output["iteration"] = iteration
    targets["iteration_peak_rss_mib"] = target(peak, "<", 100, "peak RSS of a process iterating a query over every document")
} catch {
    fail("the query measures failed: \(error)")
}

// Live query: 10,000 matching documents on a replica that pulls one change at a time.
do {
    log("live query over 10,000 documents")
    let service = SyncService(store: MemoryCentralStore())
    let writer = try await Replica(storage: MemoryReplicaStorage(), configuration: configuration())
    let reader = try await Replica(storage: try SQLiteReplicaStorage(path: directory.file("live.sqlite")), configuration: configuration())
    let writerEngine = SyncEngine(replica: writer, transport: InProcessTransport(service: service, database: "db"))
    let readerEngine = SyncEngine(replica: reader, transport: InProcessTransport(service: service, database: "db"))
    try await loadLive(writer)
    _ = try await writerEngine.syncOnce()
    _ = try await readerEngine.syncOnce()
    let clock = ContinuousClock()
    let (pages, pageArrived) = AsyncStream<(count: Int, at: ContinuousClock.Instant)>.makeStream()
    let live = try reader.collection(collection).live(DocumentQuery(Field("status") == "open", orderBy: [Field("created").ascending]))
    let follower = Task {
        for try await page in live { pageArrived.yield((page.documents.count, clock.now)) }
    }
    let changes = await reader.changes()
    var changeIterator = changes.makeAsyncIterator()
    var pageIterator = pages.makeAsyncIterator()
    guard let first = await pageIterator.next(), first.count == 10_000 else { fail("the live query did not start with 10,000 documents") }
    var latencies = [Double]()
    for round in 0..<60 {
        // Alternately take a document out of the results and put it back.
        let id = "live-\(Int.random(in: 0..<10_000))"
        try await writer.collection(collection).update(id) { $0.set("status", to: round % 2 == 0 ? "closed" : "open") }
        if round % 2 == 1 {
            try await writer.collection(collection).update(id) { $0.set("status", to: "open") }
        }
        _ = try await writerEngine.syncOnce()
        _ = try await readerEngine.syncOnce()
        guard let change = await changeIterator.next() else { fail("no change arrived") }
        let applied = clock.now
        _ = change
        guard let page = await pageIterator.next() else { fail("no page arrived") }
        // The page may come before the change's observer runs: count that as no delay.
        latencies.append(max(0, nanoseconds(page.at - applied)))
        if round % 2 == 0 { _ = page.count }
    }
    follower.cancel()
    let summary = LatencySummary(latencies)
    output["live_query_10k"] = summary.microseconds
    targets["live_query_reaction_p50_ms"] = target(summary.p50 / 1e6, "<=", 10, "from a pulled change's publication to the live page, 10,000 matching")
} catch {
    fail("the live measure failed: \(error)")
}

output["targets"] = targets
let json = try JSONSerialization.data(withJSONObject: output, options: [.prettyPrinted, .sortedKeys])
print(String(decoding: json, as: UTF8.self))
