import ArgumentParser
import Foundation
import Weft
import WeftHTTP
import WeftSQLite

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
