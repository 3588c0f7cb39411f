// The examples of the "Querying your data" article (Weft) and of the query API's doc comments,
// compiled and run.
import Foundation
import Testing
import Weft
import WeftCRDT
import WeftSQLite

@Suite("Doc examples: Querying your data")
struct QueryingExamples {
    static func withReplica(_ body: (Replica, String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("weft-doc-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let databasePath = directory.appendingPathComponent("app.sqlite").path

        // Rule 1, in code.
        var configuration = ReplicaConfiguration()
        configuration.collectionIndexes = [
            "workOrders": [.value("status"), .value("assignee"), .value("created"), .value("site.city"), .members("tags")]
        ]
        let replica = try await Replica.open(path: databasePath, configuration: configuration)
        let orders = try replica.collection("workOrders")
        for index in 0..<60 {
            try await orders.create("wo-\(index)") { editor in
                editor.set("title", to: .string("Order \(index)"))
                editor.set("status", to: index % 2 == 0 ? "open" : "done")
                editor.set("created", to: .int(Int64(index)))
                if index % 3 == 0 { editor.set("assignee", to: "ana") }
                if index % 5 == 0 { editor.insert("urgent", intoSet: "tags") }
            }
        }
        try await body(replica, databasePath)
    }

    @Test func overviewAndRules() async throws {
        try await Self.withReplica { replica, _ in
            // Overview.
            let orders = try replica.collection("workOrders")
            let page = try await orders.query(
                Field("status") == "open" && Field("assignee") == "ana",
                orderBy: [Field("created").descending], limit: 20)
            for (id, order) in page.documents {
                print(id, order.string("title") ?? "")
            }
            #expect(page.documents.first?.id.rawValue == "wo-54")

            // Rule 2.
            let plan = orders.explain(DocumentQuery(Field("status") == "open", orderBy: [Field("created").descending]))
            print(plan)  // index lookup for status = "open"; order from the index
            if !plan.usesOnlyIndexes { print("reads documents:", plan.unindexedPaths) }
            #expect(plan.usesOnlyIndexes)
            #expect("\(plan)" == "index lookup for status = \"open\"; order from the index")

            // Rule 3.
            let unassigned = try await orders.query(!Field("assignee").exists)
            let notOpen = try await orders.query(!(Field("status") == "open"))  // includes documents without a status
            #expect(unassigned.documents.count == 40 && notOpen.documents.count == 30)

            // Rule 4.
            var cursor: QueryCursor?
            repeat {
                let page = try await orders.query(Field("status") == "open", orderBy: [Field("created").descending], limit: 50, after: cursor)
                for (id, _) in page.documents { print(id) }
                cursor = page.next
            } while cursor != nil
            #expect(cursor == nil)

            // Rule 5.
            struct WorkOrder: Codable, Sendable {
                var title: String
                var status: String
            }
            let open = try await orders.query(Field("status") == "open", as: WorkOrder.self)
            let openCount = try await orders.count(Field("status") == "open")
            #expect(open.count == openCount && openCount == 30 && open.allSatisfy { $0.value.status == "open" })

            // Rule 6.
            let task = Task {
                for try await page in orders.live(DocumentQuery(Field("status") == "open")) {
                    print(page.documents.count, "open")
                }
            }
            task.cancel()

            // The predicate examples of DocumentPredicate.
            let mine: DocumentPredicate = Field("status") == "open" && Field("assignee") == "ana"
            let urgent: DocumentPredicate = Field("priority") >= 3 || Field("tags").contains("urgent")
            #expect(try await orders.count(mine) == 10)
            #expect(try await orders.count(urgent) == 12)
        }
    }

    @MainActor
    final class OpenOrdersScreen {
        let model: LiveQueryModel
        init(_ orders: ReplicaCollection) {
            model = LiveQueryModel(orders, DocumentQuery(Field("status") == "open", orderBy: [Field("created").descending]))
        }
    }

    @MainActor
    func openOrders(_ replica: Replica) throws -> LiveQueryModel {
        LiveQueryModel(try replica.collection("workOrders"), DocumentQuery(Field("status") == "open"))
    }

    @MainActor
    @Test func theObservableModel() async throws {
        let replica = try await Replica(storage: MemoryReplicaStorage())
        try await replica.collection("workOrders").create("wo-1") { $0.set("status", to: "open") }
        let screen = OpenOrdersScreen(try replica.collection("workOrders"))
        let other = try openOrders(replica)
        screen.model.stop()
        other.stop()
    }

    @Test func theCommentExamples() async throws {
        try await Self.withReplica { replica, _ in
            do {  // ReplicaCollection.query(_:orderBy:limit:after:)
                let orders = try replica.collection("workOrders")
                let page = try await orders.query(
                    Field("status") == "open" && Field("assignee") == "ana",
                    orderBy: [Field("created").descending], limit: 20)
                for (id, order) in page.documents { print(id, order.string("title") ?? "") }
                if let next = page.next {
                    let more = try await orders.query(
                        Field("status") == "open" && Field("assignee") == "ana",
                        orderBy: [Field("created").descending], limit: 20, after: next)
                    print(more.documents.count)
                }
            }
            do {  // query(_:orderBy:limit:as:)
                struct WorkOrder: Codable, Sendable {
                    var title: String
                    var status: String
                }
                let open = try await replica.collection("workOrders")
                    .query(Field("status") == "open", as: WorkOrder.self)
                print(open.map(\.value.title))
                #expect(open.count == 30)
            }
            do {  // explain(_:)
                let plan = try replica.collection("workOrders").explain(DocumentQuery(Field("status") == "open"))
                print(plan)  // index lookup for status = "open"; order from the index
                #expect(plan.usesOnlyIndexes)
            }
            do {  // live(_:)
                let orders = try replica.collection("workOrders")
                for try await page in orders.live(DocumentQuery(Field("status") == "open", orderBy: [Field("created").descending])) {
                    print(page.documents.count, "open work orders")
                    break
                }
            }
        }
    }
}
