import Testing
import WeftCRDT
import WeftTesting

private let r1 = ReplicaID(high: 0, low: 1)
private let r2 = ReplicaID(high: 0, low: 2)

struct WorkOrder: Codable, Equatable {
    struct Site: Codable, Equatable {
        var name: String
        var floor: Int
    }
    var title: String
    var priority: Int
    var done: Bool
    var cost: Double
    var note: String?
    @Counter var visits: Int64
    var tags: Set<String>
    var site: Site
}

@Suite("Document")
struct DocumentTests {
    let time = ManualTimeSource(milliseconds: 1_000)

    func order() -> WorkOrder {
        WorkOrder(
            title: "Valve", priority: 2, done: false, cost: 12.5, note: nil, visits: 1, tags: ["a", "b"],
            site: .init(name: "Plant", floor: 3))
    }

    @Test func aStructRoundTrips() throws {
        var clock = HybridLogicalClock(replica: r1, timeSource: time)
        let doc = try Document(encoding: order(), at: clock.now())
        #expect(doc.string("title") == "Valve")
        #expect(doc.counter("visits") == 1)
        #expect(doc.set("tags") == ["a", "b"])
        #expect(doc.map("site")?.int("floor") == 3)
        #expect(doc["note"] == nil)
        #expect(try doc.decode(WorkOrder.self) == order())
        // Through the binary codec too.
        #expect(try Document(encoded: doc.encoded()).decode(WorkOrder.self) == order())
    }

    @Test func concurrentStructEditsOfDifferentFieldsAllSurvive() throws {
        var clock1 = HybridLogicalClock(replica: r1, timeSource: time)
        var clock2 = HybridLogicalClock(replica: r2, timeSource: time)
        var a = try Document(encoding: order(), at: clock1.now())
        var b = a
        var editA = order()
        editA.title = "Valve (urgent)"
        editA.visits += 2
        editA.tags.remove("a")
        var editB = order()
        editB.done = true
        editB.visits += 5
        editB.tags.insert("c")
        editB.site.floor = 4
        time.advance(by: 1)
        let deltaA = try a.update(from: editA, at: clock1.now())
        let deltaB = try b.update(from: editB, at: clock2.now())
        a.merge(deltaB)
        b.merge(deltaA)
        #expect(a == b)
        let merged = try a.decode(WorkOrder.self)
        #expect(merged.title == "Valve (urgent)" && merged.done && merged.site.floor == 4)
        #expect(merged.visits == 8)  // 1 + 2 + 5: counters add, never overwrite
        #expect(merged.tags == ["b", "c"])
    }

    @Test func unchangedFieldsAreNotRewritten() throws {
        var clock = HybridLogicalClock(replica: r1, timeSource: time)
        var doc = try Document(encoding: order(), at: clock.now())
        let delta = try doc.update(from: order(), at: clock.now())
        #expect(delta == Document())
        var edit = order()
        edit.priority = 5
        let small = try doc.update(from: edit, at: clock.now())
        #expect(small.keys == ["priority"])
    }

    @Test func anUnmappableFieldGivesAClearErrorAndChangesNothing() throws {
        struct WithArray: Codable {
            var title: String
            var steps: [Int: String]  // a dictionary not keyed by strings
        }
        var clock = HybridLogicalClock(replica: r1, timeSource: time)
        var doc = try Document(encoding: order(), at: clock.now())
        let before = doc
        do {
            try doc.update(from: WithArray(title: "x", steps: [1: "a"]), at: clock.now())
            Issue.record("expected an error")
        } catch let error as DocumentCodingError {
            #expect(error.isUnsupportedType && error.path == "steps")
            #expect(error.description.contains("steps"))
        }
        #expect(doc == before)
    }

    @Test func decodingAFieldOfTheWrongKindThrows() throws {
        var clock = HybridLogicalClock(replica: r1, timeSource: time)
        var doc = Document()
        doc.set("title", to: 5, at: clock.now())
        struct Titled: Codable { var title: String }
        #expect(throws: DecodingError.self) { try doc.decode(Titled.self) }
    }

    @Test func concurrentFieldsOfDifferentKindsResolveTheSameWayEverywhere() {
        var clock1 = HybridLogicalClock(replica: r1, timeSource: time)
        var clock2 = HybridLogicalClock(replica: r2, timeSource: time)
        var a = Document()
        var b = Document()
        let da = a.set("x", to: "text", at: clock1.now())
        let db = b.increment("x", by: 3, at: clock2.now())
        a.merge(db)
        b.merge(da)
        #expect(a == b && a.counter("x") == 3)
    }

    @Test func nestingDeeperThanTheLimitIsRefused() throws {
        var clock = HybridLogicalClock(replica: r1, timeSource: time)
        var doc = Document()
        doc.set("leaf", to: 1, at: clock.now())
        for _ in 0..<40 {
            var outer = Document()
            let inner = doc
            outer.updateMap("child", at: clock.now()) { $0 = inner }
            doc = outer
        }
        let bytes = doc.encoded()
        #expect(throws: CodecError.self) { try Document(encoded: bytes) }
        let decoded = try Document(encoded: bytes, limits: DecodingLimits(maximumDepth: 64))
        #expect(decoded == doc)
    }
}
