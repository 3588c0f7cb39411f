import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite
import WeftServer

/// Issue #13, point 7: a typed write never deletes fields its type does not know.
@Suite("Typed updates keep unknown fields")
struct TypedUpdateTests {
    struct Site: Codable, Equatable, Sendable {
        var name: String
        var floor: Int
    }

    /// The whole document, as the current app version models it.
    struct WorkOrder: Codable, Equatable, Sendable {
        var title: String
        var priority: Int
        var note: String?
        var tags: Set<String>
        var site: Site
    }

    /// An older app version, or a view model, that knows only some fields.
    struct Heading: Codable, Equatable, Sendable {
        var title: String
        var note: String?
    }

    static let order = WorkOrder(title: "Valve", priority: 2, note: "urgent", tags: ["a"], site: Site(name: "Plant", floor: 3))

    @Test func anUpdateThroughAPartialTypeKeepsTheOtherFields() async throws {
        let directory = TemporaryDirectory()
        let replica = try await Replica.open(path: directory.path("r.sqlite"))
        let orders = try replica.collection("orders")
        try await orders.put("o1", Self.order)
        try await orders.update("o1", as: Heading.self) { $0.title = "Valve 2" }
        let stored = try #require(try await orders.get("o1", as: WorkOrder.self))
        #expect(stored.priority == 2 && stored.tags == ["a"] && stored.site == Self.order.site, "\(stored)")
        #expect(stored.title == "Valve 2" && stored.note == "urgent")
        // Its own optional set to nil is removed: the type knows that field.
        try await orders.update("o1", as: Heading.self) { $0.note = nil }
        let cleared = try #require(try await orders.get("o1", as: WorkOrder.self))
        #expect(cleared.note == nil && cleared.priority == 2)
    }

    @Test func aPutOfAPartialTypeKeepsTheOtherFields() async throws {
        let directory = TemporaryDirectory()
        let replica = try await Replica.open(path: directory.path("r.sqlite"))
        let orders = try replica.collection("orders")
        try await orders.put("o1", Self.order)
        try await orders.put("o1", Heading(title: "Pump", note: nil))
        let stored = try #require(try await orders.get("o1", as: WorkOrder.self))
        #expect(stored.title == "Pump" && stored.note == nil && stored.priority == 2 && stored.site == Self.order.site)
    }

    /// Issue #17: arrays through replicas and a server. Two replicas insert steps into the same
    /// work order while apart, and one removes a step: after both sync, both insertions are
    /// there, the removed step is not, and the replicas agree on the order.
    @Test func arraysMergeThroughAServer() async throws {
        struct Procedure: Codable, Equatable, Sendable {
            var title: String
            var steps: [String]
        }
        let directory = TemporaryDirectory()
        let service = SyncService(store: try SQLiteCentralStore(path: directory.path("central.sqlite")))
        var engines = [SyncEngine]()
        for name in ["phone", "tablet"] {
            let replica = try await Replica.open(path: directory.path("\(name).sqlite"))
            engines.append(SyncEngine(replica: replica, transport: InProcessTransport(service: service, database: "db")))
        }
        let phone = try engines[0].replica.collection("procedures")
        let tablet = try engines[1].replica.collection("procedures")
        try await phone.put("p1", Procedure(title: "Pump", steps: ["isolate", "drain", "replace", "test"]))
        _ = try await engines[0].syncOnce()
        _ = try await engines[1].syncOnce()
        try await phone.update("p1", as: Procedure.self) { $0.steps.insert("lock out", at: 1) }
        try await tablet.update("p1", as: Procedure.self) {
            $0.steps.append("sign off")
            $0.steps.removeAll { $0 == "drain" }
        }
        for _ in 0..<2 { for engine in engines { _ = try await engine.syncOnce() } }
        let onPhone = try #require(try await phone.get("p1", as: Procedure.self))
        let onTablet = try #require(try await tablet.get("p1", as: Procedure.self))
        #expect(onPhone == onTablet)
        #expect(onPhone.steps == ["isolate", "lock out", "replace", "test", "sign off"], "\(onPhone.steps)")
    }
}
