import Foundation
import Testing
import WeftCRDT
import WeftTesting

@Suite("Codable conformances")
struct CodableConformanceTests {
    func roundTrip<T: Codable & Equatable>(_ value: T) throws {
        let json = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(T.self, from: json) == value)
    }

    @Test func everyTypeRoundTripsThroughJSON() throws {
        let r1 = ReplicaID(high: 1, low: 2)
        let stamp = HLCTimestamp(wallMilliseconds: 1_700_000_000_000, counter: 3, replica: r1)
        try roundTrip(r1)
        try roundTrip(stamp)
        try roundTrip(Dot(replica: r1, counter: 4))
        var vector = VersionVector()
        vector.increment(r1)
        try roundTrip(vector)
        var context = CausalContext()
        context.insert(Dot(replica: r1, counter: 3))
        try roundTrip(context)
        try roundTrip(LWWRegister("x", stamp: stamp))
        var mv = MVRegister<Int64>()
        mv.set(5, by: r1)
        try roundTrip(mv)
        var g = GCounter()
        g.increment(by: 9, replica: r1)
        try roundTrip(g)
        var pn = PNCounter()
        pn.increment(by: -9, replica: r1)
        try roundTrip(pn)
        var set = ORSet<String>()
        set.insert("a", by: r1)
        try roundTrip(set)
        var map = LWWMap<String, Int64>()
        map.set("k", to: 1, at: stamp)
        try roundTrip(map)
        var orMap = ORMap<String, PNCounter>()
        orMap.update("k", by: r1, default: PNCounter()) { $0.increment(by: 2, replica: r1) }
        try roundTrip(orMap)
        var doc = Document()
        doc.set("title", to: "x", at: stamp)
        try roundTrip(doc)
        // The Codable form is the validated binary form, as one base64 string.
        let json = String(decoding: try JSONEncoder().encode(doc), as: UTF8.self)
        #expect(json.hasPrefix("\"Ago") && json.hasSuffix("\""))
    }

    @Test func invalidCodableInputIsRejected() throws {
        for junk in ["\"not base64!\"", "\"AQ==\"", "\"AQIDBA==\"", "42", "\"AQo=\"", "\"AQoAAA\""] {
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(Document.self, from: Data(junk.utf8)) }
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(ReplicaID.self, from: Data("\"nope\"".utf8))
        }
        let duplicated = "[{\"replica\":\"00000000-0000-0001-0000-000000000002\",\"counter\":1},"
            + "{\"replica\":\"00000000-0000-0001-0000-000000000002\",\"counter\":2}]"
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(VersionVector.self, from: Data(duplicated.utf8)) }
    }
}
