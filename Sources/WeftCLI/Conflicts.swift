import ArgumentParser
import Foundation
import Weft
import WeftCRDT
import WeftSQLite

struct Conflicts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the conflicts a replica resolved, newest first.")

    @Argument(help: "The replica's SQLite file.")
    var path: String

    @Option(help: "How many to show.")
    var limit = 20

    func run() async throws {
        guard FileManager.default.fileExists(atPath: path) else { throw fail("\(path) does not exist") }
        do {
            let replica = try await Replica.open(path: path, configuration: Self.lookingIn)
            let conflicts = try await replica.conflicts(limit: limit)
            if conflicts.isEmpty { print("no conflicts") }
            for conflict in conflicts {
                print(
                    "\(conflict.key)  policy \(conflict.policy)  local \(conflict.local.lastStamp)  remote \(conflict.remote.lastStamp)"
                )
                print("  local:  \(Render.fields(conflict.local.body))")
                print("  remote: \(Render.fields(conflict.remote.body))")
                print("  winner: \(Render.fields(conflict.winner.body))")
            }
        } catch {
            throw fail("\(error)")
        }
    }
}

enum Render {
    static func fields(_ document: Document) -> String {
        document.keys.map { key -> String in
            switch document[key] {
            case .register(let register)?: return "\(key)=\(register.value)"
            case .counter(let value)?: return "\(key)=\(value)"
            case .set(let set)?: return "\(key)={\(set.map(\.description).sorted().joined(separator: ","))}"
            case .map(let nested)?: return "\(key)=[\(fields(nested))]"
            case nil: return key
            }
        }.joined(separator: " ")
    }
}
