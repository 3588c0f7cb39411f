import ArgumentParser
import AsyncHTTPClient
import Foundation
import Weft
import WeftHTTP
import WeftPostgres
import WeftSQLite

struct SyncReplica: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract:
            "Sync the replica a configuration names with its remote_endpoint once, with a progress bar, or keep it live."
    )

    @Option(
        name: .long,
        help: "A TOML file with a [persistence] section (database_path, remote_endpoint, auth_token).")
    var config: String

    @Flag(
        help:
            "Keep syncing in the foreground: write-behind every sync_interval_ms, changes from others as they come."
    )
    var follow = false

    func run() async throws {
        let persistence: PersistenceConfiguration
        do {
            persistence = try WeftConfiguration.load(path: config).persistence
        } catch {
            throw fail("\(error)")
        }
        guard let endpoint = persistence.remoteEndpoint else {
            throw fail("\(config) sets no persistence.remote_endpoint")
        }
        let replica: Replica
        let transport: any SyncTransport
        // A client of its own when the configuration names an authority; shut down before the
        // command returns.
        var ownClient: HTTPClient?
        do {
            // Custom resolvers are Swift code this command does not link, so a configuration
            // naming one is refused here (ResolverRegistry's check): sync it from the app.
            replica = try await Replica.open(
                path: persistence.databasePath, configuration: persistence.replicaConfiguration)
            switch endpoint {
            case .http:
                ownClient = try persistence.tlsCAFile.map { caFile throws(ConfigurationError) in
                    try HTTPTransport.client(trustingAuthoritiesIn: caFile)
                }
                guard
                    let http = HTTPTransport(
                        endpoint: endpoint, token: persistence.authToken,
                        client: ownClient ?? HTTPTransport.defaultClient)
                else {
                    throw WeftError.invalidArgument("\(endpoint) is not a usable http(s) endpoint")
                }
                transport = http
            case .postgres(let url):
                // As written: straight into PostgreSQL, with the replica's own policies.
                transport = try await PostgresEndpoint.connect(
                    url, configuration: persistence.replicaConfiguration
                ).transport
            }
        } catch {
            try? await ownClient?.shutdown()
            throw fail("\(error)")
        }
        let engine = SyncEngine(replica: replica, transport: transport)
        await engine.setBandwidthLimit(persistence.bandwidth)
        if let channels = persistence.channels { await engine.subscribe(to: channels) }
        if follow {
            Self.say(
                "following \(endpoint) every \(persistence.syncIntervalMilliseconds) ms (Ctrl-C stops; nothing queued is lost)"
            )
            await engine.runWriteBehind(
                every: .milliseconds(persistence.syncIntervalMilliseconds), clock: ContinuousClock()
            ) { result in
                switch result {
                case .success(let report):
                    if report.pushed > 0 || report.pulled > 0 {
                        Self.say(
                            "pushed \(report.pushed), pulled \(report.pulled), conflicts \(report.conflicts), cursor \(report.cursor)"
                        )
                    }
                case .failure(let error):
                    Self.say(
                        "sync failed (\(error.kind.rawValue)): \(error.message); retrying, the queue is kept")
                }
            }
            try? await ownClient?.shutdown()
            return
        }
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
            try? await ownClient?.shutdown()
            print(
                "pushed \(report.pushed), pulled \(report.pulled), conflicts \(report.conflicts), cursor \(report.cursor)"
            )
            let letters = await engine.deadLettered
            if letters > 0 {
                print("\(letters) changes refused by the server were set aside (weft status shows them)")
            }
        } catch {
            drawing.cancel()
            try? await ownClient?.shutdown()
            throw fail("sync failed (\(error.kind.rawValue)): \(error.message); the queue is kept")
        }
    }

    /// Prints a line at once (standard output to a pipe is buffered until exit otherwise).
    static func say(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}
