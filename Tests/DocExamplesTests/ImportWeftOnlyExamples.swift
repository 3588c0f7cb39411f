// `import Weft` alone is enough to model data: the Codable bridge's property wrappers and the
// document types come with it (issue #17). This file imports nothing else from Weft's modules.
import Foundation
import Testing
import Weft

@Suite("Doc examples: import Weft alone")
struct ImportWeftOnlyExamples {
    struct Visit: Codable, Sendable {
        var site: String
        @Counter var visits: Int64
    }

    @Test func modellingWithTheCounterWrapper() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let visits = try replica.collection("visits")
        try await visits.put("v1", Visit(site: "Lyon", visits: 2))
        let document: Document? = try await visits.get("v1")
        #expect(document?.counter("visits") == 2)
        #expect(try await visits.get("v1", as: Visit.self)?.visits == 2)
        let stamp: HLCTimestamp? = document?.greatestStamp
        #expect(stamp != nil)
    }
}
