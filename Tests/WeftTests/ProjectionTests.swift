import Foundation
import GRDB
import Synchronization
import Testing
import Weft
import WeftCRDT
import WeftPostgres
import WeftServer

/// The JSON projection: one function of a record and its collection's policy, kept by the
/// central stores beside every record, in the transaction that writes it.
@Suite("JSON projection")
struct ProjectionTests {
    static let replica = ReplicaID(high: 0xA1, low: 0xB2)
    static func stamp(_ wall: UInt64, _ replica: ReplicaID = replica) -> HLCTimestamp {
        HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
    }

    struct Line: Codable, Equatable { var part: String; var quantity: Int }
    struct Order: Codable, Equatable {
        var status: String
        var lines: [Line]
        var notes: [String: String]
        var photo: [UInt8]
        var tags: Set<String>
    }

    @Test("A document shows as its readers see it: values, counters, sorted sets, objects, lists as arrays, removed entries hidden")
    func aDocumentShowsAsReadersSeeIt() throws {
        var document = try Document(
            encoding: Order(
                status: "open", lines: [Line(part: "valve", quantity: 2), Line(part: "pump", quantity: 1)],
                notes: ["gate": "code 4411", "dog": "friendly"], photo: [0xFF, 0x00, 0x10], tags: ["urgent", "b", "a"]),
            at: Self.stamp(1))
        // The list loses its first element and the dictionary an entry: both are recorded as
        // removed and must not show.
        try document.update(
            from: Order(
                status: "open", lines: [Line(part: "pump", quantity: 1)], notes: ["gate": "code 4411"], photo: [0xFF, 0x00, 0x10],
                tags: ["urgent", "b", "a"]),
            at: Self.stamp(2))
        document.increment("visits", by: 3, at: Self.stamp(3))
        document.set("ratio", to: .double(0.25), at: Self.stamp(3))
        document.set("quote", to: .string("say \"hi\"\n\u{0}\u{1}é/"), at: Self.stamp(3))
        document.set("inf", to: .double(.infinity), at: Self.stamp(3))
        #expect(
            document.jsonValue.text
                == #"{"inf":"inf","lines":[{"part":"pump","quantity":1}],"notes":{"gate":"code 4411"},"photo":"/wAQ","quote":"say \"hi\"\n\#u{FFFD}\u0001é/","ratio":0.25,"status":"open","tags":["a","b","urgent"],"visits":3}"#
        )
    }

    @Test("Concurrent writes of a register show the greatest stamp; under field rules, the rule's choice; a deleted record has no projection")
    func policiesDecideWhatShows() throws {
        let other = ReplicaID(high: 0xC3, low: 0xD4)
        var a = Document()
        a.set("max_temp", to: .int(31), at: Self.stamp(5))
        var b = Document()
        b.set("max_temp", to: .int(40), at: Self.stamp(4, other))
        a.merge(b)
        var version = VersionVector()
        version.increment(Self.replica)
        version.increment(other)
        let record = DocumentRecord(body: a, deletion: LWWRegister(false, stamp: Self.stamp(5)), version: version)
        #expect(DocumentProjection.text(of: record, policy: .crdt) == #"{"max_temp":31}"#)
        #expect(DocumentProjection.text(of: record, policy: .fields(["max_temp": .max])) == #"{"max_temp":40}"#)
        let deleted = DocumentRecord(body: Document(), deletion: LWWRegister(true, stamp: Self.stamp(6)), version: version)
        #expect(DocumentProjection.text(of: deleted, policy: .crdt) == nil)
    }

    @Test("The text is JSON that parses back to the value, whatever the strings and numbers hold")
    func theTextParsesBack() throws {
        var random = SplitMix64(seed: 0x5EED)
        let alphabet: [Unicode.Scalar] = ["a", "\"", "\\", "/", "\n", "\t", "\u{7}", "\u{1F}", "é", "€", "😀", "\u{2028}", " ", "{", "]"]
        func string() -> String {
            String(String.UnicodeScalarView((0..<Int.random(in: 0...6, using: &random)).map { _ in alphabet.randomElement(using: &random)! }))
        }
        func value(_ depth: Int) -> JSONValue {
            switch Int.random(in: 0..<(depth > 2 ? 5 : 7), using: &random) {
            case 0: return .null
            case 1: return .bool(Bool.random(using: &random))
            case 2: return .int(Int64.random(in: .min ... .max, using: &random))
            case 3: return .double(Double(Int64.random(in: -1_000_000...1_000_000, using: &random)) / 64)
            case 4: return .string(string())
            case 5: return .array((0..<Int.random(in: 0...3, using: &random)).map { _ in value(depth + 1) })
            default:
                var members = [String: JSONValue]()
                for _ in 0..<Int.random(in: 0...3, using: &random) { members[string()] = value(depth + 1) }
                return .object(members)
            }
        }
        for _ in 0..<500 {
            let original = value(0)
            let parsed = try JSONDecoder().decode(JSONValue.self, from: Data(original.text.utf8))
            #expect(Self.sameJSON(parsed, original), "\(original.text)")
        }
    }

    /// Equal JSON, numbers compared by value (a parser may read `2.0` as an integer).
    static func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
        switch (a, b) {
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
        case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { sameJSON($0, $1) }
        case (.object(let x), .object(let y)):
            return x.count == y.count && x.allSatisfy { key, value in y[key].map { sameJSON(value, $0) } ?? false }
        default: return a == b
        }
    }
}

/// A central store that keeps the projection, and a way to read its `doc` and `deleted` columns
/// with SQL as an analyst would.
enum ProjectingKind: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres
    var description: String { rawValue }
    static var testable: [ProjectingKind] { TestPostgres.skipped ? [.sqlite] : allCases }
}

struct ProjectingStore: Sendable {
    let store: any CentralStore
    let path: String?
    let url: URL?

    static func make(_ kind: ProjectingKind, _ directory: TemporaryDirectory) async throws -> ProjectingStore {
        switch kind {
        case .sqlite:
            let path = directory.path("central.sqlite")
            return ProjectingStore(store: try SQLiteCentralStore(path: path), path: path, url: nil)
        case .postgres:
            let url = try await TestPostgres.freshDatabase()
            return ProjectingStore(store: try await PostgresCentralStore(url: url), path: nil, url: url)
        }
    }

    func close() async { if let postgres = store as? PostgresCentralStore { await postgres.shutdown() } }

    /// Every row of `database`: collection/id → (the projection parsed, `deleted`).
    func rows(_ database: String) async throws -> [String: (doc: JSONValue?, deleted: Bool?)] {
        var result = [String: (doc: JSONValue?, deleted: Bool?)]()
        let parse = { (text: String?) throws -> JSONValue? in
            try text.map { try JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) }
        }
        if let path {
            let queue = try DatabaseQueue(path: path)
            let fetched = try await queue.read { db in
                try Row.fetchAll(db, sql: "SELECT collection, id, doc, deleted FROM documents WHERE tenant = ?", arguments: [database]).map {
                    row -> (String, String?, Int64?) in ("\(row[0] as String)/\(row[1] as String)", row[2], row[3])
                }
            }
            for (name, doc, deleted) in fetched { result[name] = (try parse(doc), deleted.map { $0 != 0 }) }
        } else if let url {
            let lines = try await TestPostgres.query(
                url, "SELECT json_build_array(collection, id, doc, deleted) FROM weft_documents WHERE tenant = '\(database)'")
            for line in lines.split(separator: "\n") {
                guard case .array(let columns) = try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8)), columns.count == 4,
                    case .string(let collection) = columns[0], case .string(let id) = columns[1]
                else { throw TestPostgres.TestFailure("unexpected row \(line)") }
                var deleted: Bool?
                if case .bool(let flag) = columns[3] { deleted = flag }
                result["\(collection)/\(id)"] = (columns[2] == .null ? nil : columns[2], deleted)
            }
        }
        return result
    }

    /// The analyst's query: how many live documents of `collection` have each `status`.
    func statusCounts(_ database: String, _ collection: String) async throws -> [String: Int] {
        var counts = [String: Int]()
        if let path {
            let queue = try DatabaseQueue(path: path)
            let fetched = try await queue.read { db in
                try Row.fetchAll(
                    db,
                    sql: """
                        SELECT json_extract(doc, '$.status'), count(*) FROM documents
                        WHERE tenant = ? AND collection = ? AND NOT deleted GROUP BY 1
                        """, arguments: [database, collection]
                ).map { row -> (String, Int) in (row[0] as String? ?? "null", row[1] as Int) }
            }
            for (status, count) in fetched { counts[status] = count }
        } else if let url {
            let text = try await TestPostgres.query(
                url,
                """
                SELECT coalesce(status, 'null') || '=' || n FROM (
                    SELECT doc->>'status' AS status, count(*) AS n FROM weft_documents
                    WHERE tenant = '\(database)' AND collection = '\(collection)' AND NOT deleted GROUP BY 1) AS counts
                """)
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=")
                if parts.count == 2, let count = Int(parts[1]) { counts[String(parts[0])] = count }
            }
        }
        return counts
    }
}

@Suite("JSON projection in the central stores", .serialized)
struct StoredProjectionTests {
    final class Finished: Sendable { let count = Mutex(0) }

    struct KeepMoreStock: ConflictResolver {
        func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document {
            let (x, y) = (a.body.int("stock") ?? .min, b.body.int("stock") ?? .min)
            if x != y { return x > y ? a.body : b.body }
            return a.body.encoded().lexicographicallyPrecedes(b.body.encoded()) ? b.body : a.body
        }
    }

    static let policies = ServerPolicies(
        defaultPolicy: .crdt,
        collections: [
            "orders": .lastWriterWins, "readings": .fields(["max_temp": .max]), "inventory": .custom(resolver: "keepMore"),
            "parts": .custom(resolver: "absent"),
        ])

    /// Checks every stored row against the model: the projection of the record the store holds,
    /// and what a replica that has synced everything shows its readers.
    static func check(_ projecting: ProjectingStore, _ service: SyncService, _ reader: Replica, _ keys: [DocumentKey]) async throws {
        let rows = try await projecting.rows("db")
        #expect(rows.count == keys.count)
        for key in keys {
            let record = try #require(try await projecting.store.record(database: "db", key: key))
            let row = try #require(rows["\(key.collection.rawValue)/\(key.id.rawValue)"], "\(key)")
            #expect(row.deleted == record.isDeleted, "\(key)")
            let expected = service.projector.value(database: "db", key: key, record: record)
            #expect(row.doc.map { ProjectionTests.sameJSON($0, expected ?? .null) } ?? (expected == nil), "\(key): \(String(describing: row.doc))")
            // What readers of the collection see, after a full sync.
            let seen = try await reader.collection(key.collection.rawValue).get(key.id.rawValue)
            #expect(seen?.jsonValue == expected, "\(key)")
        }
    }

    @Test("After every kind of change the doc column is the projection of the stored record, and what replicas show", arguments: ProjectingKind.testable)
    func theProjectionFollowsEveryChange(kind: ProjectingKind) async throws {
        let directory = TemporaryDirectory()
        let projecting = try await ProjectingStore.make(kind, directory)
        var resolvers = ResolverRegistry()
        resolvers.register("keepMore", KeepMoreStock())
        let service = SyncService(store: projecting.store, policies: Self.policies, resolvers: resolvers)
        var engines = [SyncEngine]()
        for _ in 0..<3 {
            let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: ReplicaConfiguration(), resolvers: resolvers)
            let engine = SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db"))
            _ = try await engine.syncOnce()
            engines.append(engine)
        }
        func syncAll() async throws { for _ in 0..<2 { for engine in engines { _ = try await engine.syncOnce() } } }
        let collections = ["orders", "readings", "inventory", "parts", "notes"]
        let keys = try collections.map { DocumentKey(collection: try CollectionName($0), id: try DocumentID("x")) }

        // Pushes: creations.
        let first = engines[0].replica
        try await first.collection("orders").put(
            "x", ProjectionTests.Order(status: "open", lines: [.init(part: "valve", quantity: 2)], notes: ["gate": "4411"], photo: [], tags: ["a"]))
        try await first.collection("readings").create("x") { $0.set("max_temp", to: .int(20)) }
        try await first.collection("inventory").create("x") { $0.set("stock", to: .int(5)) }
        try await first.collection("parts").create("x") { $0.set("name", to: .string("seal")) }
        try await first.collection("notes").create("x") { $0.increment("views", by: 1) }
        try await syncAll()
        try await Self.check(projecting, service, engines[2].replica, keys)

        // Conflicts under each policy: concurrent edits on every replica.
        for (index, engine) in engines.enumerated() {
            let replica = engine.replica
            try await replica.collection("orders").update("x", as: ProjectionTests.Order.self) { order in
                order.status = ["assigned", "closed", "open"][index]
                order.lines.append(.init(part: "p\(index)", quantity: index))
                order.notes["n\(index)"] = "by \(index)"
            }
            try await replica.collection("readings").update("x") { $0.set("max_temp", to: .int(Int64([25, 31, 22][index]))) }
            try await replica.collection("inventory").update("x") { $0.set("stock", to: .int(Int64([8, 3, 12][index]))) }
            try await replica.collection("parts").update("x") { $0.set("name", to: .string("seal \(index)")) }
            try await replica.collection("notes").update("x") { editor in
                editor.increment("views", by: 1)
                editor.insert(.string("t\(index)"), intoSet: "tags")
            }
        }
        try await syncAll()
        try await Self.check(projecting, service, engines[2].replica, keys)
        // The rules show: the greatest temperature, the most stock, every view counted.
        let rows = try await projecting.rows("db")
        #expect(rows["readings/x"]?.doc == .object(["max_temp": .int(31)]))
        #expect(rows["inventory/x"]?.doc == .object(["stock": .int(12)]))
        #expect(rows["notes/x"]?.doc == .object(["views": .int(4), "tags": .array([.string("t0"), .string("t1"), .string("t2")])]))

        // Deletions show as such.
        try await engines[1].replica.collection("notes").delete("x")
        try await syncAll()
        try await Self.check(projecting, service, engines[2].replica, keys)
        #expect(try await projecting.rows("db")["notes/x"]?.deleted == true)
        #expect(try await projecting.rows("db")["notes/x"]?.doc == nil)

        // The analyst's query.
        try await first.collection("orders").put(
            "y", ProjectionTests.Order(status: "open", lines: [], notes: [:], photo: [], tags: []))
        try await syncAll()
        let status = try #require(try await projecting.rows("db")["orders/x"]?.doc.flatMap { value -> String? in
            if case .object(let members) = value, case .string(let status)? = members["status"] { return status }
            return nil
        })
        var expected = ["open": 1]
        expected[status, default: 0] += 1
        #expect(try await projecting.statusCounts("db", "orders") == expected)

        // Compaction and tombstone collection leave the projection of what stays.
        _ = try await service.compactLog()
        _ = try await service.collectTombstones(retention: 0)
        let left = try await projecting.rows("db")
        #expect(left.count >= keys.count)
        for (name, row) in left where row.deleted == nil { Issue.record("\(name) is left without a projection") }
        await projecting.close()
    }

    @Test("Rows stored before the projection are filled in, in bounded steps, while pushes go on", arguments: ProjectingKind.testable)
    func rowsStoredBeforeAreFilledIn(kind: ProjectingKind) async throws {
        let directory = TemporaryDirectory()
        let projecting = try await ProjectingStore.make(kind, directory)
        let service = SyncService(store: projecting.store, policies: Self.policies)
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: ReplicaConfiguration())
        let engine = SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db"))
        try await replica.batch { batch in
            for index in 0..<25 { try batch.upsert("readings", "r\(index)") { $0.set("max_temp", to: .int(Int64(index))) } }
        }
        _ = try await engine.syncOnce()
        // As an older build left them: no projection.
        if let path = projecting.path {
            try await DatabaseQueue(path: path).write { db in try db.execute(sql: "UPDATE documents SET doc = NULL, deleted = NULL") }
        } else if let url = projecting.url {
            _ = try await TestPostgres.query(url, "UPDATE weft_documents SET doc = NULL, deleted = NULL")
        }
        // A push meanwhile projects what it writes.
        try await replica.collection("readings").update("r3") { $0.set("max_temp", to: .int(300)) }
        _ = try await engine.syncOnce()
        #expect(try await projecting.rows("db").values.filter { $0.deleted == nil }.count == 24)
        let step = try await projecting.store.projectDocuments(limit: 10, projector: service.projector)
        #expect(step.projected == 10 && !step.passFinished)
        #expect(try await projecting.rows("db").values.filter { $0.deleted == nil }.count == 14)
        #expect(try await service.projectDocuments(step: 10) == 14)
        let keys = try (0..<25).map { DocumentKey(collection: try CollectionName("readings"), id: try DocumentID("r\($0)")) }
        try await StoredProjectionTests.check(projecting, service, replica, keys)
        #expect(try await projecting.rows("db")["readings/r3"]?.doc == .object(["max_temp": .int(300)]))
        await projecting.close()
    }

    @Test(
        "SQL over the projection of a live PostgreSQL store that two servers push to at once",
        .enabled(if: !TestPostgres.skipped, "WEFT_SKIP_POSTGRES=1 leaves PostgreSQL out"))
    func analystsQueryWhileTwoServersTakePushes() async throws {
        let url = try await TestPostgres.freshDatabase()
        let stores = [try await PostgresCentralStore(url: url), try await PostgresCentralStore(url: url)]
        let services = stores.map { SyncService(store: $0, policies: Self.policies) }
        let projecting = ProjectingStore(store: stores[0], path: nil, url: url)
        var engines = [SyncEngine]()
        for index in 0..<4 {
            let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: ReplicaConfiguration())
            engines.append(SyncEngine(replica: replica, transport: InProcessTransport(service: services[index % 2], database: "db")))
        }
        let perReplica = 30
        let writers = engines.count
        let written = Finished()
        let queries = try await withThrowingTaskGroup(of: Int.self) { [engines] group in
            for (index, engine) in engines.enumerated() {
                group.addTask {
                    let orders = try engine.replica.collection("orders")
                    for number in 0..<perReplica {
                        try await orders.create("r\(index)-\(number)") { $0.set("status", to: .string("open")) }
                        if number % 2 == 1 { try await orders.update("r\(index)-\(number - 1)") { $0.set("status", to: .string("closed")) } }
                        if number % 5 == 4 { _ = try await engine.syncOnce() }
                    }
                    _ = try await engine.syncOnce()
                    written.count.withLock { $0 += 1 }
                    return 0
                }
            }
            // The analyst, meanwhile: every answer counts only documents that exist, each once.
            group.addTask {
                var made = 0
                while written.count.withLock({ $0 }) < writers {
                    let counts = try await projecting.statusCounts("db", "orders")
                    #expect(counts.keys.allSatisfy { ["open", "closed"].contains($0) }, "\(counts)")
                    #expect(counts.values.reduce(0, +) <= writers * perReplica)
                    made += 1
                    try await Task.sleep(for: .milliseconds(20))
                }
                return made
            }
            var made = 0
            for try await count in group { made += count }
            return made
        }
        #expect(queries > 0)
        let half = engines.count * perReplica / 2
        #expect(try await projecting.statusCounts("db", "orders") == ["open": half, "closed": half])
        let keys = try (0..<engines.count).flatMap { index in
            try (0..<perReplica).map { DocumentKey(collection: try CollectionName("orders"), id: try DocumentID("r\(index)-\($0)")) }
        }
        for engine in engines { _ = try await engine.syncOnce() }
        try await Self.check(projecting, services[0], engines[0].replica, keys)
        for store in stores { await store.shutdown() }
    }

    @Test("A SQLite store from before the projection (schema v6) upgrades in place: the columns are added, the rows projected by the pass")
    func aVersionSixSQLiteStoreUpgrades() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("central.sqlite")
        do {
            let store = try SQLiteCentralStore(path: path)
            let service = SyncService(store: store, policies: Self.policies)
            let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: ReplicaConfiguration())
            try await replica.collection("readings").create("r1") { $0.set("max_temp", to: .int(7)) }
            try await replica.collection("readings").create("r2") { $0.set("max_temp", to: .int(8)) }
            _ = try await SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db")).syncOnce()
        }
        // Back to what schema v6 left: no projection columns, no v7 in the migrations table.
        try await DatabaseQueue(path: path).write { db in
            try db.execute(
                sql: """
                    DROP INDEX documents_unprojected;
                    ALTER TABLE documents DROP COLUMN doc;
                    ALTER TABLE documents DROP COLUMN deleted;
                    DELETE FROM grdb_migrations WHERE identifier LIKE 'v7:%';
                    """)
        }
        let store = try SQLiteCentralStore(path: path)
        let projecting = ProjectingStore(store: store, path: path, url: nil)
        #expect(try await projecting.rows("db").values.allSatisfy { $0.deleted == nil && $0.doc == nil })
        let service = SyncService(store: store, policies: Self.policies)
        #expect(try await service.projectDocuments() == 2)
        #expect(try await projecting.rows("db")["readings/r2"]?.doc == .object(["max_temp": .int(8)]))
        #expect(try await projecting.rows("db").values.allSatisfy { $0.deleted == false })
    }

    @Test("A typed view shows each declared field in its column where the value has the column's type, NULL otherwise", arguments: ProjectingKind.testable)
    func typedViews(kind: ProjectingKind) async throws {
        let configuration = try WeftConfiguration.parse(
            """
            [server.views.orders]
            status = "text"
            total = "double"
            count = "integer"
            done = "boolean"
            "address.city" = "text"
            lines = "json"
            [server.views.gone]
            status = "text"
            """)
        for bad in [#""bad-name" = "text""#, #"status = "float""#, #"id = "text""#, "status = 3"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try WeftConfiguration.parse("[server.views.orders]\n" + bad) }
        }
        let views = try #require(configuration.server?.views)
        #expect(views.map(\.viewName) == ["weft_view_gone", "weft_view_orders"])
        let directory = TemporaryDirectory()
        let projecting = try await ProjectingStore.make(kind, directory)
        try await projecting.store.declareViews(views)
        let service = SyncService(store: projecting.store, policies: Self.policies)
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: ReplicaConfiguration())
        let engine = SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db"))
        let orders = try replica.collection("notes")
        try await orders.create("a") { editor in
            editor.set("status", to: .string("open"))
            editor.set("total", to: .int(12))
            editor.set("count", to: .int(3))
            editor.set("done", to: .bool(false))
            editor.updateMap("address") { address, stamp in address.set("city", to: .string("Lyon"), at: stamp) }
        }
        try await orders.create("b") { editor in
            editor.set("status", to: .int(7))
            editor.set("total", to: .string("lots"))
            editor.set("count", to: .double(2.5))
            editor.set("done", to: .string("yes"))
        }
        try await orders.create("c") { $0.set("status", to: .string("deleted soon")) }
        _ = try await engine.syncOnce()
        // The view is of `orders`; these were written to `notes`: none shows.
        #expect(try await Self.viewRows(projecting).isEmpty)
        let real = try replica.collection("orders")
        for id in ["a", "b", "c"] {
            let document = try #require(try await orders.get(id))
            try await real.create(id) { editor in
                for key in document.keys {
                    switch document[key] {
                    case .register(let register)?: editor.set(key, to: register.value)
                    case .map(let nested)?: editor.updateMap(key) { map, stamp in
                            if let city = nested.string("city") { map.set("city", to: .string(city), at: stamp) }
                        }
                    default: break
                    }
                }
            }
        }
        try await real.delete("c")
        _ = try await engine.syncOnce()
        #expect(
            try await Self.viewRows(projecting) == [
                #"["db","a","open",12,3,false,"Lyon"]"#,
                #"["db","b","7",null,null,null,null]"#,
            ])
        // Declared again without `gone`: that view goes.
        try await projecting.store.declareViews(views.filter { $0.collection.rawValue == "orders" })
        #expect(try await Self.views(projecting) == ["weft_view_orders"])
        await projecting.close()
    }

    /// The rows of `weft_view_orders` as JSON arrays (database, id, status, total, count, done,
    /// address_city), by id; numbers written without a fraction where they are integral.
    static func viewRows(_ projecting: ProjectingStore) async throws -> [String] {
        if let path = projecting.path {
            return try await DatabaseQueue(path: path).read { db in
                try String.fetchAll(
                    db,
                    sql: """
                        SELECT json_array(database, id, status, CASE WHEN total = CAST(total AS INTEGER) THEN CAST(total AS INTEGER) ELSE total END,
                            count, CASE done WHEN 1 THEN json('true') WHEN 0 THEN json('false') END, address_city)
                        FROM weft_view_orders ORDER BY id
                        """)
            }
        }
        guard let url = projecting.url else { return [] }
        let text = try await TestPostgres.query(
            url,
            """
            SELECT json_build_array(database, id, status, CASE WHEN total = trunc(total) THEN trunc(total)::bigint::text::jsonb ELSE to_jsonb(total) END,
                count, done, address_city)::text FROM weft_view_orders ORDER BY id
            """)
        return text.split(separator: "\n").map { $0.replacingOccurrences(of: ", ", with: ",") }
    }

    static func views(_ projecting: ProjectingStore) async throws -> [String] {
        if let path = projecting.path {
            return try await DatabaseQueue(path: path).read { db in
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY 1")
            }
        }
        guard let url = projecting.url else { return [] }
        return try await TestPostgres.query(url, "SELECT viewname FROM pg_views WHERE schemaname = current_schema() ORDER BY 1")
            .split(separator: "\n").map(String.init)
    }
}
