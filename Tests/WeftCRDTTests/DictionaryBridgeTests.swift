import Testing
import WeftCRDT

/// Dictionaries keyed by strings in the Codable bridge: a nested document, one field per key, so
/// entries merge key by key (issue #17).
@Suite("The Codable bridge: dictionaries keyed by strings")
struct DictionaryBridgeTests {
    struct Part: Codable, Sendable, Equatable {
        var name: String
        @Counter var count: Int64
    }

    struct Order: Codable, Sendable, Equatable {
        var title: String
        var parts: [String: Part]
        var notes: [String: String]
    }

    static func stamp(_ wall: UInt64, _ replica: ReplicaID) -> HLCTimestamp {
        HLCTimestamp(wallMilliseconds: wall, counter: 0, replica: replica)
    }

    @Test func aDictionaryRoundTripsAsANestedDocument() throws {
        let order = Order(title: "Pump", parts: ["p1": Part(name: "valve", count: 2)], notes: ["ana": "call first", "é": "x"])
        let document = try Document(encoding: order, at: Self.stamp(1, ReplicaID(high: 1, low: 1)))
        #expect(document.map("parts")?.map("p1")?.string("name") == "valve")
        #expect(document.map("parts")?.map("p1")?.counter("count") == 2)
        #expect(document.map("notes")?.string("ana") == "call first")
        #expect(try document.decode(Order.self) == order)
        let empty = Order(title: "Pump", parts: [:], notes: [:])
        #expect(try Document(encoding: empty, at: Self.stamp(1, ReplicaID(high: 1, low: 1))).decode(Order.self) == empty)
    }

    /// Two replicas add different entries, and a third removes one, concurrently: the join keeps
    /// every entry added, drops the one removed (an entry the remover had seen), and counts every
    /// increment of a shared entry's counter.
    @Test func entriesMergeKeyByKey() throws {
        let a = ReplicaID(high: 1, low: 1)
        let b = ReplicaID(high: 2, low: 2)
        let c = ReplicaID(high: 3, low: 3)
        let base = try Document(
            encoding: Order(title: "Pump", parts: ["p1": Part(name: "valve", count: 1)], notes: ["old": "x"]), at: Self.stamp(1, a))
        var fromA = base
        var order = try fromA.decode(Order.self)
        order.parts["p2"] = Part(name: "gasket", count: 1)
        order.parts["p1"]?.count += 2
        _ = try fromA.update(from: order, at: Self.stamp(2, a))
        var fromB = base
        order = try fromB.decode(Order.self)
        order.parts["p3"] = Part(name: "seal", count: 4)
        order.parts["p1"]?.count += 1
        _ = try fromB.update(from: order, at: Self.stamp(3, b))
        var fromC = base
        order = try fromC.decode(Order.self)
        order.notes["old"] = nil
        _ = try fromC.update(from: order, at: Self.stamp(4, c))
        #expect(fromC.map("notes")?.string("old") == nil, "removing an entry removes its field")

        for merged in [fromA.merged(with: fromB).merged(with: fromC), fromC.merged(with: fromB).merged(with: fromA)] {
            let result = try merged.decode(Order.self)
            #expect(Set(result.parts.keys) == ["p1", "p2", "p3"])
            #expect(result.parts["p1"]?.count == 4, "1 + 2 + 1: every increment counts")
            #expect(result.notes.isEmpty, "the removal of an entry both others had seen stays")
        }
    }

    /// An entry removed on one replica while another edits a field inside it: the removal wins,
    /// and the document still decodes (without the rule, the entry would come back holding only
    /// the edited field). Adding the key again afterwards brings the entry back, whole.
    @Test func aRemovalWinsOverAConcurrentEditInsideTheEntry() throws {
        let a = ReplicaID(high: 1, low: 1)
        let b = ReplicaID(high: 2, low: 2)
        let base = try Document(
            encoding: Order(title: "Pump", parts: ["p1": Part(name: "valve", count: 1), "p2": Part(name: "seal", count: 1)], notes: [:]),
            at: Self.stamp(1, a))
        var fromA = base
        var order = try fromA.decode(Order.self)
        order.parts["p1"] = nil
        _ = try fromA.update(from: order, at: Self.stamp(2, a))
        var fromB = base
        order = try fromB.decode(Order.self)
        order.parts["p1"]?.name = "ball valve"
        order.parts["p2"]?.count += 1
        _ = try fromB.update(from: order, at: Self.stamp(3, b))
        for merged in [fromA.merged(with: fromB), fromB.merged(with: fromA)] {
            let result = try merged.decode(Order.self)
            #expect(Set(result.parts.keys) == ["p2"] && result.parts["p2"]?.count == 2, "\(result.parts)")
        }
        // Added again: whole, with the new values.
        var merged = fromA.merged(with: fromB)
        order = try merged.decode(Order.self)
        order.parts["p1"] = Part(name: "new valve", count: 7)
        _ = try merged.update(from: order, at: Self.stamp(4, a))
        #expect(try merged.decode(Order.self).parts["p1"] == Part(name: "new valve", count: 7))
        // The reserved key is refused as a dictionary key.
        order.notes["~removed"] = "x"
        #expect(throws: DocumentCodingError.self) { try merged.update(from: order, at: Self.stamp(5, a)) }
    }
}
