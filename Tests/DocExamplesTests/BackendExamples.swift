// The Swift example of "Reading and writing from your backend" (WeftServer), run against a
// real SQLite central store, and a replica that pulls what it wrote.
import Foundation
import Testing
import Weft
import WeftServer

@Suite("Doc examples: reading and writing from your backend")
struct BackendExamples {
    @Test func aBackendWritesThroughTheService() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-doc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteCentralStore(path: directory.appendingPathComponent("standalone.sqlite").path)
        let service = SyncService(store: store)
        let replica = try await Replica(storage: MemoryReplicaStorage())
        try await replica.collection("workOrders").create("wo-17") { $0.set("status", to: "open") }
        let engine = SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "fieldapp"))
        try await engine.syncOnce()

        // The article's example.
        let key = DocumentKey(collection: try CollectionName("workOrders"), id: try DocumentID("wo-17"))
        let written = try await service.write(
            database: "fieldapp", key: key, .mergePatch(["status": .string("assigned"), "assignee": .string("ana")]), condition: .none)
        print(SyncService.version(of: written.record))

        try await engine.syncOnce()
        let pulled = try #require(try await replica.collection("workOrders").get("wo-17"))
        #expect(pulled.string("status") == "assigned" && pulled.string("assignee") == "ana")
    }
}
