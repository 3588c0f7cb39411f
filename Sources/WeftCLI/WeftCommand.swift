import ArgumentParser
import Foundation
import Weft
import WeftCRDT
import WeftHTTP
import WeftServer
import WeftPostgres
import WeftSQLite

@main
struct WeftCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "Weft: local-first replicas of CRDT documents, synced with a central server.",
        subcommands: [Serve.self, Demo.self, SyncReplica.self, Status.self, Conflicts.self, Query.self])
}

extension AsyncParsableCommand {
    /// The configuration of a command that looks into an app's file: it keeps the file's indexes.
    static var lookingIn: ReplicaConfiguration {
        var configuration = ReplicaConfiguration()
        configuration.declaresIndexes = false
        return configuration
    }
}

/// Prints to standard error and exits with a failure status.
func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data("weft: \(message)\n".utf8))
    return ExitCode.failure
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the Standalone server on its embedded SQLite store.")

    @Option(name: .long, help: "A TOML file with a [server] section.")
    var config: String

    func run() async throws {
        let file: WeftConfiguration
        do {
            file = try WeftConfiguration.load(path: config)
        } catch {
            throw fail("\(error)")
        }
        guard let server = file.server else { throw fail("\(config) has no [server] section") }
        let store: any CentralStore
        do {
            if let url = server.storeURL {
                store = try await PostgresCentralStore(url: url)
            } else {
                store = try SQLiteCentralStore(path: server.storePath)
            }
        } catch {
            throw fail("\(error)")
        }
        // The conflict policies are the file's [persistence] ones (conflict_resolution and the
        // collections' policies), so a server and its replicas can share one file. Custom
        // resolvers are Swift code the command does not link: their conflicts become siblings.
        let persistence = file.persistence
        let service = SyncService(store: store, configuration: server, policies: persistence.declaredPolicies)
        let app = StandaloneServer.application(service: service, configuration: server) { port in
            print("weft: serving on \(server.host):\(port), store \(server.storeURL.map { "PostgreSQL \($0.host ?? "")\($0.path)" } ?? server.storePath)")
        }
        // SIGINT and SIGTERM shut the server down gracefully (swift-service-lifecycle).
        try await app.runService()
    }
}

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

struct SyncReplica: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Sync the replica a configuration names with its remote_endpoint once, with a progress bar.")

    @Option(name: .long, help: "A TOML file with a [persistence] section (database_path, remote_endpoint, auth_token).")
    var config: String

    func run() async throws {
        let persistence: PersistenceConfiguration
        do {
            persistence = try WeftConfiguration.load(path: config).persistence
        } catch {
            throw fail("\(error)")
        }
        guard let endpoint = persistence.remoteEndpoint else { throw fail("\(config) sets no persistence.remote_endpoint") }
        guard let transport = HTTPTransport(endpoint: endpoint, token: persistence.authToken) else {
            throw fail("weft sync speaks HTTP; \(endpoint) is not an http(s) endpoint")
        }
        let replica: Replica
        do {
            // Custom resolvers are Swift code this command does not link, so a configuration
            // naming one is refused here (ResolverRegistry's check): sync it from the app.
            replica = try await Replica.open(path: persistence.databasePath, configuration: persistence.replicaConfiguration)
        } catch {
            throw fail("\(error)")
        }
        let engine = SyncEngine(replica: replica, transport: transport)
        await engine.setBandwidthLimit(persistence.bandwidth)
        let events = await engine.progress()
        let drawing = Task {
            var bar = ProgressBar()
            for await event in events {
                bar.draw(event)
                if event.entriesDone >= event.entriesTotal { break }
            }
        }
        do {
            let report = try await engine.syncOnce()
            drawing.cancel()
            print("pushed \(report.pushed), pulled \(report.pulled), conflicts \(report.conflicts), cursor \(report.cursor)")
            let letters = await engine.deadLettered
            if letters > 0 { print("\(letters) changes refused by the server were set aside (weft status shows them)") }
        } catch {
            drawing.cancel()
            throw fail("sync failed (\(error.kind.rawValue)): \(error.message); the queue is kept")
        }
    }
}

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
