// The examples of the "Modelling data as CRDT documents" article, compiled and run.
import Testing
import WeftCRDT
import WeftTesting

@Suite("Doc examples: Modelling data")
struct ModellingDataExamples {
    let replicaID = ReplicaID(high: 9, low: 9)

    @Test func rule2WriteWithAStamp() {
        var clock = HybridLogicalClock(replica: replicaID)
        var order = Document()
        order.set("title", to: "Replace valve", at: clock.now())
        order.increment("visits", by: 1, at: clock.now())
        order.insert("plumbing", intoSet: "tags", at: clock.now())
        order.updateMap("site", at: clock.now()) { site in
            site.set("name", to: "North plant", at: clock.now())
        }
        #expect(order.map("site")?.string("name") == "North plant")
        #expect(order.counter("visits") == 1)
    }

    @Test func rule3ShipTheDeltas() throws {
        var laptopClock = HybridLogicalClock(replica: replicaID)
        var laptop = Document()
        var phone = Document()
        let delta = laptop.set("status", to: "done", at: laptopClock.now())
        phone.merge(try Document(encoded: delta.encoded()))
        phone.merge(try Document(encoded: delta.encoded()))  // a duplicate changes nothing
        #expect(phone == laptop)
    }

    @Test func rule4Codable() throws {
        var clock = HybridLogicalClock(replica: replicaID)
        struct WorkOrder: Codable {
            var title: String
            @Counter var visits: Int64
            var tags: Set<String>
        }
        var doc = try Document(encoding: WorkOrder(title: "Valve", visits: 0, tags: []), at: clock.now())
        let delta = try doc.update(from: WorkOrder(title: "Valve", visits: 1, tags: ["urgent"]), at: clock.now())
        let order = try doc.decode(WorkOrder.self)
        #expect(order.visits == 1 && order.tags == ["urgent"])
        #expect(Set(delta.keys) == ["visits", "tags"])
    }

    @Test func readmeExample() throws {
        var clock = HybridLogicalClock(replica: .random())
        var doc = Document()
        let delta = doc.set("title", to: "Pump 7", at: clock.now())  // ship `delta.encoded()`
        var other = Document()
        other.merge(try Document(encoded: delta.encoded()))  // join: order and duplicates don't matter
        #expect(other == doc)
    }

    // Rule 4's items as nested documents keyed by id, and steps as an array.
    struct Part: Codable {
        var name: String
        @Counter var count: Int64
    }
    struct Order: Codable {
        var title: String
        var parts: [String: Part]  // keyed by the part's id
        var steps: [String]  // in order
    }

    @Test func itemsKeyedByIdAndStepsInOrder() throws {
        var phoneClock = HybridLogicalClock(replica: .random())
        var tabletClock = HybridLogicalClock(replica: .random())
        let order = Order(title: "Pump", parts: ["p1": Part(name: "valve", count: 2)], steps: ["drain", "replace"])
        var phone = try Document(encoding: order, at: phoneClock.now())
        var tablet = phone
        // Each device edits its copy with its own identity.
        var edited = try phone.decode(Order.self)
        edited.steps.insert("isolate", at: 0)
        _ = try phone.update(from: edited, at: phoneClock.now())
        edited = try tablet.decode(Order.self)
        edited.steps.append("test")
        edited.parts["p1"]?.count += 1
        _ = try tablet.update(from: edited, at: tabletClock.now())
        phone.merge(tablet)
        let merged = try phone.decode(Order.self)
        #expect(merged.steps == ["isolate", "drain", "replace", "test"])
        #expect(merged.parts["p1"]?.count == 3)
    }
}
