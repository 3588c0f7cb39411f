import ArgumentParser
import Foundation
import Weft
import WeftCRDT
import WeftSQLite

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print one document of a replica file as JSON (as readers see it).")

    @Argument(help: "The replica's SQLite file.")
    var path: String

    @Argument(help: "The collection.")
    var collection: String

    @Argument(help: "The document's id.")
    var id: String

    func run() async throws {
        guard FileManager.default.fileExists(atPath: path) else { throw fail("\(path) does not exist") }
        do {
            let replica = try await Replica.open(path: path, configuration: Self.lookingIn)
            guard let document = try await replica.collection(collection).get(id) else {
                throw fail("\(collection)/\(id) does not exist (or is deleted)")
            }
            print(JSONRender.line(id, document))
        } catch let error as WeftError {
            throw fail(error.message)
        }
    }
}

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the documents of a collection as JSON, in the order of their ids.")

    @Argument(help: "The replica's SQLite file.")
    var path: String

    @Argument(help: "The collection.")
    var collection: String

    @Option(help: "At most this many documents.")
    var limit: Int?

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must not be negative") }
    }

    func run() async throws {
        guard FileManager.default.fileExists(atPath: path) else { throw fail("\(path) does not exist") }
        do {
            let replica = try await Replica.open(path: path, configuration: Self.lookingIn)
            try await JSONRender.printArray(try replica.collection(collection).results(of: DocumentQuery(limit: limit)))
        } catch let error as WeftError {
            throw fail(error.message)
        }
    }
}
