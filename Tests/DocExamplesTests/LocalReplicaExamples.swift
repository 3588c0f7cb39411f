// The examples of the "The local replica" article (Weft), compiled and run; the batch is also
// the example of `Replica.batch(_:)`'s doc comment, and the last test that of `Replica`'s.
import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite

@Suite("Doc examples: The local replica")
struct LocalReplicaExamples {
    struct Reading: Sendable {
        var id: String
        var celsius: Double
    }

    @Test func overviewRule1AndRule6() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-doc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let databasePath = directory.appendingPathComponent("app.sqlite").path

        let replica = try await Replica.open(path: databasePath)
        let orders = try replica.collection("workOrders")
        try await orders.create("wo-1") { $0.set("title", to: "Replace valve") }
        try await orders.update("wo-1") { $0.increment("visits") }
        let order = try await orders.get("wo-1")
        #expect(order?.counter("visits") == 1)

        let readings = [Reading(id: "r1", celsius: 21.5), Reading(id: "r2", celsius: 22)]
        try await replica.batch { batch in
            for reading in readings {
                try batch.upsert("readings", reading.id) { $0.set("celsius", to: .double(reading.celsius)) }
            }
        }
        #expect(try await replica.collection("readings").list().count == 2)

        // Rule 6: read large collections page by page.
        try await orders.create("wo-2") { $0.set("status", to: "open") }
        var open = 0
        for try await (_, order) in orders.documents() where order.scalar("status") == "open" {
            open += 1
        }
        #expect(open == 1)
        let firstPage = try await orders.list(limit: 1)
        let secondPage = try await orders.list(where: DocumentFilter(after: firstPage.last?.id), limit: 1)
        #expect(firstPage.map(\.id.rawValue) == ["wo-1"] && secondPage.map(\.id.rawValue) == ["wo-2"])
    }

    @Test func rule4() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-doc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let databasePath = directory.appendingPathComponent("app.sqlite").path

        let replica = try await Replica.open(
            path: databasePath, configuration: ReplicaConfiguration(durability: .full))
        #expect(replica.configuration.durability == .full)
    }

    @Test func replicaDocComment() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let orders = try replica.collection("workOrders")
        try await orders.create("wo-1") { $0.set("title", to: "Replace valve") }
        try await orders.update("wo-1") { $0.increment("visits") }
        #expect(try await orders.get("wo-1")?.counter("visits") == 1)
    }
}
