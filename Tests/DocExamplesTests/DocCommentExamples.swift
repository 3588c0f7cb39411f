// The examples in doc comments of public API that no article repeats, compiled and run. (The
// query API's are in QueryingExamples.swift, Replica's and Replica.batch(_:)'s in
// LocalReplicaExamples.swift, PostgresEndpoint's in PostgresExamples.swift.)
import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite
import WeftTesting
import WeftURLSession

/// The example of `ConflictResolver`'s doc comment.
struct KeepLargerStock: ConflictResolver {
    func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document {
        let (x, y) = (a.body.int("stock") ?? 0, b.body.int("stock") ?? 0)
        if x != y { return x > y ? a.body : b.body }
        // Equal stocks: the bodies' encodings break the tie, the same way on every replica.
        return a.body.encoded().lexicographicallyPrecedes(b.body.encoded()) ? b.body : a.body
    }
}

@Suite("Doc examples: doc comments")
struct DocCommentExamples {
    @Test func keepLargerStockIsAJoin() async {
        await ResolverLawChecker.check(resolver: KeepLargerStock(), name: "keepLargerStock")
    }

    // `ReplicaCollection.documents(where:pageSize:)`.
    @Test func collectionDocuments() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        try await replica.collection("orders").create("o-1") { $0.set("status", to: "open") }
        for try await (id, document) in try replica.collection("orders").documents() {
            print(id, document.scalar("status") ?? .null)
        }
        #expect(try await replica.collection("orders").documents().reduce(0) { count, _ in count + 1 } == 1)
    }

    // `ResolverRegistry`.
    @Test func resolverRegistry() async throws {
        var configuration = ReplicaConfiguration()
        configuration.collectionPolicies = ["inventory": .custom(resolver: "inventoryLevels")]
        var resolvers = ResolverRegistry()
        resolvers.register("inventoryLevels") { a, b in
            // The larger stock wins whole; equal stocks are decided by the bodies' bytes, so the
            // result does not depend on which version comes first (a join, see `ConflictResolver`).
            let (x, y) = (a.body.int("stock") ?? 0, b.body.int("stock") ?? 0)
            if x != y { return x > y ? a.body : b.body }
            return a.body.encoded().lexicographicallyPrecedes(b.body.encoded()) ? b.body : a.body
        }
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: configuration, resolvers: resolvers)
        #expect(replica.resolvers.names == ["inventoryLevels"])
    }

    // `Document`.
    @Test func document() {
        var clock = HybridLogicalClock(replica: .random())
        var doc = Document()
        doc.set("title", to: "Pump 7", at: clock.now())
        doc.increment("visits", by: 1, at: clock.now())
        doc.insert("valve", intoSet: "tags", at: clock.now())
        #expect(doc.string("title") == "Pump 7" && doc.counter("visits") == 1)
    }

    // `CRDTModel`.
    @Test func gCounterModel() async {
        let model = CRDTModel<GCounter>(name: "GCounter", initial: GCounter()) { random in
            let amount = UInt64.random(in: 0...3, using: &random)
            return Operation("increment \(amount)") { state, replica in
                state.increment(by: amount, replica: replica.replica)
            }
        }
        await CRDTLawChecker.checkAll(model, count: 50)
    }

    // `CRDTLawChecker`.
    @Test func counterLaws() async {
        await CRDTLawChecker.checkAll(CRDTModels.gCounter)
    }

    // `ManualTimeSource`.
    @Test func manualTimeSource() {
        let time = ManualTimeSource(milliseconds: 1_000)
        var clock = HybridLogicalClock(replica: .random(), timeSource: time)
        time.advance(by: 5)
        time.set(500)  // the wall clock steps backwards; the HLC stays monotonic
        let first = clock.now()
        time.set(400)
        #expect(clock.now() > first)
    }

    // `ResolverLawChecker.check(resolver:name:count:sourceLocation:records:)`, with the
    // resolver of the "Conflict resolution" article (OfflineAndConflictExamples.swift).
    @Test func inventoryLevelsOnAShape() async {
        let shape = RecordShape([.register("stock", values: { .int(Int64.random(in: 0...3, using: &$0)) }), .set("bins", values: CRDTModels.scalar)])
        await ResolverLawChecker.check(resolver: InventoryLevels(), name: "inventory") { shape.concurrentRecords(&$0) }
    }

    // `ResolverLawChecker.check(resolver:name:count:sourceLocation:)`.
    @Test func fieldRulesOnTheStandardShape() async {
        await ResolverLawChecker.check(resolver: FieldRulesResolver(rules: ["r0": .max]), name: "max r0")
    }

    /// `URLSessionTransport`'s example, compiled only: it opens `app.sqlite` in the current
    /// directory (SyncExamples.swift runs the same calls against a server).
    static func urlSessionTransport(token: String) async throws -> SyncEngine {
        let replica = try await Replica.open(path: "app.sqlite")
        let transport = URLSessionTransport(
            baseURL: URL(string: "https://sync.example.com")!, database: "fieldapp", token: token)
        let engine = SyncEngine(replica: replica, transport: transport)
        return engine
    }
}
