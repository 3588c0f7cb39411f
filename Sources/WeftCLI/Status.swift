import ArgumentParser
import Foundation
import Weft
import WeftSQLite

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a replica file's identity, queue and cursor.")

    @Argument(help: "The replica's SQLite file.")
    var path: String

    func run() async throws {
        guard FileManager.default.fileExists(atPath: path) else { throw fail("\(path) does not exist") }
        do {
            let replica = try await Replica.open(path: path, configuration: Self.lookingIn)
            let entries = try await replica.queuedChanges()
            print("replica      \(replica.replicaID)")
            print("queue        \(entries.count) entries, \(try await replica.queuedBytes()) bytes")
            if let first = entries.first, let last = entries.last {
                print("sequences    \(first.sequence)…\(last.sequence)")
            }
            print("pull cursor  \(try await replica.pullCursor())")
            print("conflicts    \(try await replica.conflicts(limit: 1_000_000).count) logged")
        } catch {
            throw fail("\(error)")
        }
    }
}
