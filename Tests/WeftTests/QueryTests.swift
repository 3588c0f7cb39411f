import Foundation
import GRDB
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftSQLite
import WeftTesting

/// Queries on a collection: the SQLite indexes, the scans of documents and a model (every live
/// document checked and sorted one by one) give the same pages, for random predicates and orders
/// over random histories of writes.
@Suite("Queries")
struct QueryTests {
    static let indexes: [IndexedField] = [
        .value("status"), .value("priority"), .value("name"), .value("address.city"), .value("visits"), .members("tags"),
    ]

    static func configuration(_ indexes: [IndexedField] = QueryTests.indexes) -> ReplicaConfiguration {
        var configuration = ReplicaConfiguration()
        configuration.collectionIndexes = ["orders": indexes]
        return configuration
    }

    static let names: [Scalar] = ["", "a", "ab", "abc", "abd", "b", "Z", "é", "e\u{301}", "日本", "a\u{10FFFF}", "ab\u{10FFFF}x", .bytes([0x61]), .int(5)]
    static let statuses: [Scalar] = ["open", "closed", "pending", .null, .int(1), .bool(true), .double(1.0)]
    static let priorities: [Scalar] = [.int(-3), .int(0), .int(1), .int(3), .double(-2.5), .double(0.5), .double(1.0), .bool(false), .double(-0.0), .int(Int64.max), .double(9.3e18)]
    static let tags: [Scalar] = ["x", "y", "z", .int(1), .null]
    static let cities: [Scalar] = ["Lyon", "Oslo", "Lima", .null]

    /// One random edit of a document.
    static func edit(_ editor: inout DocumentEditor, _ random: inout SeededRandom) {
        switch Int.random(in: 0..<9, using: &random) {
        case 0: editor.set("status", to: statuses.randomElement(using: &random) ?? .null)
        case 1: editor.set("priority", to: priorities.randomElement(using: &random) ?? .null)
        case 2: editor.set("name", to: names.randomElement(using: &random) ?? .null)
        case 3:
            let city = cities.randomElement(using: &random) ?? .null
            editor.updateMap("address") { document, stamp in _ = document.set("city", to: city, at: stamp) }
        case 4: editor.increment("visits", by: Int64.random(in: -2...3, using: &random))
        case 5: editor.insert(tags.randomElement(using: &random) ?? "x", intoSet: "tags")
        case 6: editor.remove(tags.randomElement(using: &random) ?? "x", fromSet: "tags")
        case 7: editor.set("created", to: .int(Int64.random(in: -5...5, using: &random)))
        default: editor.removeField(["status", "priority", "name", "address", "created"].randomElement(using: &random) ?? "status")
        }
    }

    static let paths: [FieldPath] = ["status", "priority", "name", "address.city", "visits", "created", "missing.path"]

    static func predicate(_ random: inout SeededRandom, depth: Int = 0) -> DocumentPredicate {
        let path = paths.randomElement(using: &random) ?? "status"
        let values = statuses + priorities + names + cities
        let value = values.randomElement(using: &random) ?? .null
        switch Int.random(in: 0..<(depth < 2 ? 11 : 7), using: &random) {
        case 0: return .compare(path, DocumentPredicate.Comparison.allCases.randomElement(using: &random) ?? .equal, value)
        case 1: return .oneOf(path, (0..<Int.random(in: 0...3, using: &random)).map { _ in values.randomElement(using: &random) ?? .null })
        case 2: return .contains("tags", tags.randomElement(using: &random) ?? "x")
        case 3:
            let prefixes = ["", "a", "ab", "a\u{10FFFF}", "é", "日", "e"]
            return .hasPrefix(path, prefixes.randomElement(using: &random) ?? "a")
        case 4: return .exists(path)
        case 5: return .idPrefix(["d1", "d", "é", ""].randomElement(using: &random) ?? "d")
        case 6: return .compare(path, .equal, value)
        case 7: return .and((0..<Int.random(in: 0...3, using: &random)).map { _ in predicate(&random, depth: depth + 1) })
        case 8: return .or((0..<Int.random(in: 0...3, using: &random)).map { _ in predicate(&random, depth: depth + 1) })
        default: return .not(predicate(&random, depth: depth + 1))
        }
    }

    static func order(_ random: inout SeededRandom) -> [SortKey] {
        let keys: [FieldPath] = ["priority", "name", "status", "visits", "address.city", "created"]
        return (0..<Int.random(in: 0...2, using: &random)).map { _ in
            SortKey(keys.randomElement(using: &random) ?? "name", descending: Bool.random(using: &random))
        }
    }

    /// What `query` must return: every live document checked and sorted one by one.
    static func model(_ documents: [(id: DocumentID, document: Document)], _ query: DocumentQuery) -> [DocumentID] {
        let sorted = documents.filter { query.predicate.matches($0.id, $0.document) }.sorted { a, b in
            Self.before(query, a, b)
        }
        return Array(sorted.prefix(query.limit ?? Int.max).map(\.id))
    }

    static func before(_ query: DocumentQuery, _ a: (id: DocumentID, document: Document), _ b: (id: DocumentID, document: Document)) -> Bool {
        for key in query.order {
            let order = key.path.value(in: a.document).compare(key.path.value(in: b.document))
            if order != 0 { return key.descending ? order > 0 : order < 0 }
        }
        return a.id < b.id
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func indexesScansAndTheModelAgree(seed: UInt64) async throws {
        let directory = TemporaryDirectory()
        var random = SeededRandom(seed: seed &* 0x9E37_79B9)
        let storage = try SQLiteReplicaStorage(path: directory.path("replica.sqlite"))
        let indexed = try await Replica(storage: storage, configuration: Self.configuration())
        let scanned = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.configuration())
        let ids = (0..<30).map { "d\($0)" } + ["é", "e\u{301}", "日", "Z", "a"]
        var queries = 0
        var answeredByIndexes = 0
        for round in 0..<8 {
            for _ in 0..<40 {
                let id = ids.randomElement(using: &random) ?? "a"
                let edits = (0..<Int.random(in: 1...3, using: &random)).map { _ in random.next() }
                let deleting = Int.random(in: 0..<10, using: &random) == 0
                for replica in [indexed, scanned] {
                    let orders = try replica.collection("orders")
                    if deleting {
                        if try await orders.get(id) != nil { try await orders.delete(id) }
                        continue
                    }
                    try await orders.upsert(id) { editor in
                        for seed in edits {
                            var local = SeededRandom(seed: seed)
                            Self.edit(&editor, &local)
                        }
                    }
                }
            }
            #expect(try storage.indexDiscrepancies() == [], "round \(round)")
            let documents = try await scanned.collection("orders").list()
            for _ in 0..<40 {
                let limit: Int? = Bool.random(using: &random) ? Int.random(in: 0...6, using: &random) : nil
                let query = DocumentQuery(Self.predicate(&random), orderBy: Self.order(&random), limit: limit)
                let expected = Self.model(documents, query)
                let fromIndex = try await indexed.collection("orders").query(query)
                let explained = try indexed.collection("orders").explain(query)
                if explained.usesOnlyIndexes { answeredByIndexes += 1 }
                let fromScan = try await scanned.collection("orders").query(query)
                #expect(fromIndex.documents.map(\.id) == expected, "\(query) \(explained)")
                #expect(fromScan.documents.map(\.id) == expected, "\(query)")
                #expect(try await indexed.collection("orders").count(query.predicate) == Self.model(documents, DocumentQuery(query.predicate)).count)
                // The pages of three, each after the previous one's cursor, are the whole result.
                var pages = [DocumentID]()
                var cursor: QueryCursor?
                var paging = query
                paging.limit = 3
                repeat {
                    paging.after = cursor
                    let page = try await indexed.collection("orders").query(paging)
                    pages += page.documents.map(\.id)
                    cursor = page.next
                } while cursor != nil && pages.count < 100
                #expect(pages == Self.model(documents, DocumentQuery(query.predicate, orderBy: query.order)), "paging \(query)")
                queries += 1
            }
        }
        #expect(queries == 320)
        // Most queries are answered by the indexes alone; the rest read documents.
        #expect(answeredByIndexes > 100, "\(answeredByIndexes) of \(queries) answered by indexes alone")
    }

    /// A writer with indexes is killed with SIGKILL eight times, after a random number of lines
    /// (the first is printed before the replica opens, so some kills fall while the indexes are
    /// rebuilt for a changed declaration): each time, the file's indexes agree exactly with its
    /// documents, and the file is sound.
    @Test func indexesStayExactWhenTheWriterIsKilled() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("indexed.sqlite")
        let executable = try builtExecutable("WeftCrashWriter")
        var random = SeededRandom(seed: 0x1DE5_C4A5)
        var checkedAfterWrites = 0
        for round in 0..<8 {
            let target = round == 0 ? 60 : Int.random(in: 1...40, using: &random)
            let process = Process()
            process.executableURL = executable
            process.arguments = ["indexed", path, "\(0xC0FFEE)", "\(round)"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = Pipe()
            try process.run()
            let reader = output.fileHandleForReading
            let lines = await Task.detached { () -> Int in
                var seen = 0
                while seen < target {
                    let chunk = reader.availableData
                    if chunk.isEmpty { break }
                    seen += String(decoding: chunk, as: UTF8.self).split(separator: "\n").count
                }
                return seen
            }.value
            kill(process.processIdentifier, SIGKILL)
            _ = reader.readDataToEndOfFile()
            process.waitUntilExit()
            if lines > 2 { checkedAfterWrites += 1 }
            let storage = try SQLiteReplicaStorage(path: path)
            #expect(try storage.indexDiscrepancies() == [], "round \(round), killed after \(lines) lines")
            #expect(try await storage.integrityCheck() == ["ok"])
            let fields = storage.indexedFields(of: try CollectionName("idx"))
            #expect(fields.isEmpty || fields.count == 3, "round \(round): the declaration is one or the other, whole")
        }
        #expect(checkedAfterWrites > 0)
    }

    @Test func theConfigurationDeclaresIndexes() throws {
        let parsed = try WeftConfiguration.parse(
            """
            [persistence]
            [persistence.collections.workOrders]
            indexes = ["status", "site.city"]
            set_indexes = ["tags"]
            [persistence.collections.notes]
            conflict_resolution = "crdt"
            indexes = ["title"]
            """, file: "test.toml")
        let configuration = parsed.persistence.replicaConfiguration
        #expect(configuration.collectionIndexes["workOrders"] == [.value("status"), .value("site.city"), .members("tags")])
        #expect(configuration.collectionIndexes["notes"] == [.value("title")])
        #expect(configuration.policy(for: try CollectionName("notes")) == .crdt)
        #expect(configuration.collectionPolicies["workOrders"] == nil)
    }

    @Test func badQueriesAreRefusedWithTypedErrors() async throws {
        let directory = TemporaryDirectory()
        let replica = try await Replica(
            storage: try SQLiteReplicaStorage(path: directory.path("replica.sqlite")), configuration: Self.configuration())
        let orders = try replica.collection("orders")
        try await orders.create("a") { $0.set("status", to: "open") }
        for query in [
            DocumentQuery(.compare(FieldPath("a..b"), .equal, 1)),
            DocumentQuery(orderBy: [SortKey(FieldPath(components: []))]),
            DocumentQuery(limit: -1),
            DocumentQuery(orderBy: [Field("status").ascending], after: QueryCursor(values: [], id: try DocumentID("a"))),
        ] {
            await #expect(throws: WeftError.self) { try await orders.query(query) }
            do {
                _ = try await orders.query(query)
            } catch {
                #expect(error.kind == .invalidArgument, "\(query): \(error)")
            }
        }
        // A document that does not decode as the type asked for is a mapping error.
        struct Numbered: Decodable { var status: Int }
        do {
            _ = try await orders.query(as: Numbered.self)
            Issue.record("decoded a text status as a number")
        } catch {
            #expect(error.kind == .mapping)
        }
        #expect(try await orders.count() == 1)
    }

    @Test func changingTheDeclarationRebuildsOrDropsTheIndexes() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("replica.sqlite")
        func open(_ indexes: [IndexedField]?, declaring: Bool = true) async throws -> (Replica, SQLiteReplicaStorage) {
            let storage = try SQLiteReplicaStorage(path: path)
            var configuration = ReplicaConfiguration()
            configuration.sessionIdentities = false
            configuration.declaresIndexes = declaring
            if let indexes { configuration.collectionIndexes = ["orders": indexes] }
            return (try await Replica(storage: storage, configuration: configuration), storage)
        }
        func tables(_ storage: SQLiteReplicaStorage) async throws -> [String] {
            try await DatabaseQueue(path: path).read { db in
                try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE name LIKE 'query_%' AND type = 'table' ORDER BY name")
            }
        }
        // Documents written before any index: the declaration indexes them (the file was at v8's
        // tables, and the registry is empty).
        do {
            let (replica, _) = try await open(nil)
            for index in 0..<50 {
                try await replica.collection("orders").create("o\(index)") { editor in
                    editor.set("status", to: index % 2 == 0 ? "open" : "closed")
                    editor.set("rank", to: .int(Int64(index)))
                }
            }
        }
        let byStatus = DocumentQuery(Field("status") == "open", orderBy: [Field("rank").descending], limit: 3)
        do {
            let (replica, storage) = try await open([.value("status"), .value("rank")])
            #expect(try replica.collection("orders").explain(byStatus).usesOnlyIndexes)
            #expect(try await replica.collection("orders").query(byStatus).documents.map(\.id.rawValue) == ["o48", "o46", "o44"])
            #expect(try storage.indexDiscrepancies() == [])
            let names = try await tables(storage)
            #expect(names == ["query_1", "query_indexes"], "\(names)")
        }
        // A tool that does not declare keeps them; another declaration rebuilds them.
        do {
            let (replica, storage) = try await open(nil, declaring: false)
            #expect(try replica.collection("orders").explain(byStatus).usesOnlyIndexes)
            let names = try await tables(storage)
            #expect(names == ["query_1", "query_indexes"], "\(names)")
        }
        do {
            let (replica, storage) = try await open([.value("rank"), .members("tags")])
            #expect(try !replica.collection("orders").explain(byStatus).usesOnlyIndexes)
            #expect(try await replica.collection("orders").query(byStatus).documents.map(\.id.rawValue) == ["o48", "o46", "o44"])
            #expect(try storage.indexDiscrepancies() == [])
            let names = try await tables(storage)
            #expect(names == ["query_1", "query_1_members", "query_indexes"], "\(names)")
        }
        // No declaration: the tables go.
        do {
            let (replica, storage) = try await open(nil)
            #expect(try !replica.collection("orders").explain(byStatus).collectionIndexed)
            let names = try await tables(storage)
            #expect(names == ["query_indexes"], "\(names)")
            #expect(try await replica.collection("orders").count(Field("status") == "open") == 25)
        }
    }

    /// A field rule decides what readers see of concurrent writes (`max` here, where last-writer
    /// wins would show the other value): the index holds what readers see, once the replica
    /// learns the rule from the server.
    @Test func indexesHoldWhatTheFieldRulesShow() async throws {
        let directory = TemporaryDirectory()
        let service = SyncService(store: MemoryCentralStore(), policies: ServerPolicies(defaultPolicy: .crdt, collections: ["readings": .fields(["peak": .max])]))
        var configuration = ReplicaConfiguration()
        configuration.collectionIndexes = ["readings": [.value("peak")]]
        let time = ManualTimeSource()
        let early = try await Replica(storage: MemoryReplicaStorage(), configuration: configuration, timeSource: time)
        let storage = try SQLiteReplicaStorage(path: directory.path("late.sqlite"))
        let late = try await Replica(storage: storage, configuration: configuration, timeSource: time)
        let earlyEngine = SyncEngine(replica: early, transport: InProcessTransport(service: service, database: "db"))
        let lateEngine = SyncEngine(replica: late, transport: InProcessTransport(service: service, database: "db"))
        _ = try await earlyEngine.syncOnce()
        _ = try await lateEngine.syncOnce()
        // Concurrent writes: 5 first, then -3 (the later stamp, which last-writer-wins would show).
        try await early.collection("readings").upsert("r1") { $0.set("peak", to: 5) }
        time.advance(by: 10)
        try await late.collection("readings").upsert("r1") { $0.set("peak", to: -3) }
        _ = try await earlyEngine.syncOnce()
        _ = try await lateEngine.syncOnce()
        let readings = try late.collection("readings")
        #expect(try await readings.get("r1")?.int("peak") == 5)
        #expect(try readings.explain(DocumentQuery(Field("peak") == 5)).usesOnlyIndexes)
        #expect(try await readings.query(Field("peak") == 5).documents.map(\.id.rawValue) == ["r1"])
        #expect(try await readings.query(Field("peak") == -3).documents.isEmpty)
        #expect(try storage.indexDiscrepancies() == [])
    }

    /// A second storage on the file, opened before the first declared its indexes, keeps them
    /// in its writes: it reads the registry again once another connection has committed.
    @Test func anotherStorageOnTheFileKeepsIndexesDeclaredSinceItOpened() async throws {
        let directory = TemporaryDirectory()
        let path = directory.path("replica.sqlite")
        let late = try SQLiteReplicaStorage(path: path)
        let lateReplica = try await Replica(storage: late)
        try await lateReplica.collection("orders").create("before") { $0.set("status", to: "open") }
        let declaring = try await Replica(storage: try SQLiteReplicaStorage(path: path), configuration: Self.configuration())
        #expect(try declaring.collection("orders").explain(DocumentQuery(Field("status") == "open")).usesOnlyIndexes)
        try await lateReplica.collection("orders").create("after") { $0.set("status", to: "open") }
        try await lateReplica.collection("orders").update("before") { $0.set("status", to: "closed") }
        let found = try await declaring.collection("orders").query(Field("status") == "open").documents.map(\.id.rawValue)
        #expect(found == ["after"])
        #expect(try late.indexDiscrepancies() == [])
    }
}
