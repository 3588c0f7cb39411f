import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite

/// Reading a collection page by page: `DocumentFilter.after` on every storage, and
/// `ReplicaCollection.documents(where:pageSize:)`, whose memory follows the page.
@Suite("Paged reads of a collection")
struct PagedListTests {
    /// Ids whose UTF-8 order differs from a naive string order: "Z" < "a" < "z" < "é" < "日".
    static let ids = ["a", "Z", "z", "é", "日", "b1", "b10", "b2", "a-0", "a0"]

    @Test(arguments: StorageKind.allCases)
    func pagesCoverEveryLiveDocumentOnceInIdOrder(_ kind: StorageKind) async throws {
        let directory = TemporaryDirectory()
        let replica = try await Replica(storage: try kind.make(directory))
        let orders = try replica.collection("orders")
        for (index, id) in Self.ids.enumerated() {
            try await orders.upsert(id) { $0.set("n", to: .int(Int64(index))) }
        }
        // Deleted documents and other collections stay out of the pages.
        try await orders.delete("b2")
        try await orders.delete("a")
        try await replica.collection("other").upsert("a0") { $0.set("n", to: .int(0)) }
        let live = Self.ids.filter { $0 != "b2" && $0 != "a" }.map { try! DocumentID($0) }.sorted()
        #expect(live.map(\.rawValue) == ["Z", "a-0", "a0", "b1", "b10", "z", "é", "日"])

        for size in [1, 2, 3, 100] {
            var seen = [DocumentID]()
            for try await (id, document) in orders.documents(pageSize: size) {
                seen.append(id)
                #expect(document.scalar("n") != nil)
            }
            #expect(seen == live, "page size \(size)")
        }
        // Keyset paging by hand: each page after the previous page's last id.
        var after: DocumentID?
        var pages = [[String]]()
        while true {
            let page = try await orders.list(where: DocumentFilter(after: after), limit: 3)
            if page.isEmpty { break }
            pages.append(page.map(\.id.rawValue))
            after = page.last?.id
        }
        #expect(pages == [["Z", "a-0", "a0"], ["b1", "b10", "z"], ["é", "日"]])
        // Filters combine with the position.
        let prefixed = try await orders.list(
            where: DocumentFilter(idPrefix: "b", after: try DocumentID("b1")))
        #expect(prefixed.map(\.id.rawValue) == ["b10"])
        let withTombstones = try await orders.list(
            where: DocumentFilter(includeDeleted: true, after: try DocumentID("Z")), limit: 2)
        #expect(withTombstones.map(\.id.rawValue) == ["a", "a-0"])
    }

    @Test func aPageOfDeletedDocumentsDoesNotEndTheSequence() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        let orders = try replica.collection("orders")
        for index in 0..<20 {
            try await orders.upsert("d\(index + 10)") { $0.set("n", to: .int(Int64(index))) }
        }
        for index in 0..<15 { try await orders.delete("d\(index + 10)") }
        var seen = [String]()
        for try await (id, _) in orders.documents(pageSize: 2) { seen.append(id.rawValue) }
        #expect(seen == (25..<30).map { "d\($0)" })
    }
}
