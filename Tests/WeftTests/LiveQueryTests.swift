import Foundation
import Observation
import Testing
import Weft
import WeftCRDT
import WeftServer
import WeftSQLite

/// Live queries: pages that follow local writes, pulled changes and bursts, end on
/// cancellation, and an observable model on top.
@Suite("Live queries")
struct LiveQueryTests {
    static func configuration() -> ReplicaConfiguration {
        var configuration = ReplicaConfiguration()
        configuration.collectionIndexes = ["orders": [.value("status"), .value("rank")]]
        return configuration
    }

    static func ids(_ page: QueryPage?) -> [String] { page?.documents.map(\.id.rawValue) ?? [] }

    @Test(arguments: StorageKind.allCases)
    func pagesFollowLocalWrites(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let replica = try await Replica(storage: try kind.make(directory), configuration: Self.configuration())
        let orders = try replica.collection("orders")
        try await orders.create("a") { $0.set("status", to: "open"); $0.set("rank", to: 3) }
        try await orders.create("b") { $0.set("status", to: "closed"); $0.set("rank", to: 1) }
        var pages = orders.live(DocumentQuery(Field("status") == "open", orderBy: [Field("rank").ascending])).makeAsyncIterator()
        #expect(Self.ids(try await pages.next()) == ["a"])
        // A document enters, at its place in the order.
        try await orders.update("b") { $0.set("status", to: "open") }
        #expect(Self.ids(try await pages.next()) == ["b", "a"])
        // A write that moves it within the results.
        try await orders.update("b") { $0.set("rank", to: 9) }
        #expect(Self.ids(try await pages.next()) == ["a", "b"])
        // A write that does not touch the results gives no page; the next one that does, does.
        try await orders.create("c") { $0.set("status", to: "closed") }
        try await orders.delete("a")
        let page = try await pages.next()
        #expect(Self.ids(page) == ["b"])
        #expect(page?.documents.first?.document.int("rank") == 9)
    }

    @Test func aBurstOfWritesGivesOnePage() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.configuration())
        let orders = try replica.collection("orders")
        var pages = orders.live(DocumentQuery(Field("status") == "open")).makeAsyncIterator()
        #expect(try await pages.next()?.documents.isEmpty == true)
        for index in 0..<200 { try await orders.create("o\(1000 + index)") { $0.set("status", to: "open") } }
        // The writes happened while nobody read the sequence: the next page holds them all.
        let page = try await pages.next()
        #expect(page?.documents.count == 200)
    }

    @Test func aLimitedQueryRunsAgainAndTakesInWhatMovesUp() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.configuration())
        let orders = try replica.collection("orders")
        for rank in 1...5 { try await orders.create("r\(rank)") { $0.set("rank", to: .int(Int64(rank))) } }
        var pages = orders.live(DocumentQuery(orderBy: [Field("rank").ascending], limit: 2)).makeAsyncIterator()
        #expect(Self.ids(try await pages.next()) == ["r1", "r2"])
        try await orders.delete("r1")
        #expect(Self.ids(try await pages.next()) == ["r2", "r3"])
    }

    @Test func cancellingTheIterationEndsItAndReleasesTheSubscription() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.configuration())
        let orders = try replica.collection("orders")
        let (firstPage, signalFirst) = AsyncStream<Void>.makeStream()
        let task = Task { () -> Int in
            var count = 0
            for try await _ in orders.live(DocumentQuery()) {
                count += 1
                signalFirst.yield()
            }
            return count
        }
        var events = firstPage.makeAsyncIterator()
        _ = await events.next()
        #expect(await replica.observerCount == 1)
        task.cancel()
        let count = try await task.value
        #expect(count == 1)
        // The subscription goes once the cancelled iteration is released (an event, not a time).
        var checks = 0
        while await replica.observerCount != 0, checks < 60_000 {
            try await Task.sleep(for: .milliseconds(1))
            checks += 1
        }
        #expect(await replica.observerCount == 0)
    }

    @Test func pagesFollowPulledChanges() async throws {
        let directory = TemporaryDirectory()
        let service = SyncService(store: MemoryCentralStore())
        let writer = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.configuration())
        let reader = try await Replica(
            storage: try SQLiteReplicaStorage(path: directory.path("reader.sqlite")), configuration: Self.configuration())
        let writerEngine = SyncEngine(replica: writer, transport: InProcessTransport(service: service, database: "db"))
        let readerEngine = SyncEngine(replica: reader, transport: InProcessTransport(service: service, database: "db"))
        var pages = try reader.collection("orders").live(DocumentQuery(Field("status") == "open")).makeAsyncIterator()
        #expect(try await pages.next()?.documents.isEmpty == true)
        try await writer.collection("orders").create("w1") { $0.set("status", to: "open") }
        _ = try await writerEngine.syncOnce()
        _ = try await readerEngine.syncOnce()
        #expect(Self.ids(try await pages.next()) == ["w1"])
        try await writer.collection("orders").update("w1") { $0.set("status", to: "done") }
        _ = try await writerEngine.syncOnce()
        _ = try await readerEngine.syncOnce()
        #expect(Self.ids(try await pages.next()) == [])
    }

    /// Waits, on the main actor, until `condition` holds, woken by the model's changes.
    @MainActor
    static func waitUntil(_ model: LiveQueryModel, _ condition: @MainActor () -> Bool) async {
        while !condition() {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                withObservationTracking {
                    _ = model.updates
                } onChange: {
                    continuation.resume()
                }
            }
        }
    }

    @MainActor
    @Test func theObservableModelFollowsTheQuery() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: Self.configuration())
        let orders = try replica.collection("orders")
        try await orders.create("a") { $0.set("status", to: "open") }
        let model = LiveQueryModel(orders, DocumentQuery(Field("status") == "open"))
        await Self.waitUntil(model) { model.isLoaded }
        #expect(model.documents.map(\.id.rawValue) == ["a"])
        try await orders.create("b") { $0.set("status", to: "open") }
        await Self.waitUntil(model) { model.documents.count == 2 }
        #expect(model.documents.map(\.id.rawValue) == ["a", "b"])
        model.stop()
        #expect(model.error == nil)
    }
}
