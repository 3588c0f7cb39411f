// The README's "Using it" snippet, compiled and run twice on one file: it must not fail the
// second time (issue #17).
import Foundation
import Testing
import Weft
import WeftSQLite

@Suite("Doc examples: the README")
struct ReadmeExamples {
    /// The snippet, with the file in a temporary directory.
    static func snippet(_ path: String) async throws -> QueryPage {
        let replica = try await Replica.open(path: path)
        let orders = try replica.collection("workOrders")
        try await orders.upsert("wo-1") { $0.set("title", to: "Replace valve") }  // document + queue entry, one transaction
        try await orders.update("wo-1") { $0.increment("visits") }
        let open = try await orders.query(Field("status") == "open", orderBy: [Field("created").descending], limit: 20)
        return open
    }

    @Test func theSnippetRunsTwice() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-readme-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("app.sqlite").path
        _ = try await Self.snippet(path)
        _ = try await Self.snippet(path)
        let replica = try await Replica.open(path: path)
        #expect(try await replica.collection("workOrders").get("wo-1")?.counter("visits") == 2)
    }
}
