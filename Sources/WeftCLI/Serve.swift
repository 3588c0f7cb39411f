import ArgumentParser
import Foundation
import Weft
import WeftPostgres
import WeftServer
import WeftSQLite

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
        var authenticator: JWTAuthenticator?
        do {
            if let url = server.storeURL {
                store = try await PostgresCentralStore(url: url)
            } else {
                store = try SQLiteCentralStore(path: server.storePath)
            }
            // The typed views the file declares, made (or dropped) as it says.
            try await store.declareViews(server.views)
            if let jwt = server.jwt { authenticator = try await JWTAuthenticator.make(jwt) }
        } catch {
            throw fail("\(error)")
        }
        // The conflict policies are the file's [persistence] ones (conflict_resolution and the
        // collections' policies), so a server and its replicas can share one file. Custom
        // resolvers are Swift code the command does not link: their conflicts become siblings.
        let persistence = file.persistence
        let service = SyncService(store: store, configuration: server, policies: persistence.declaredPolicies)
        do {
            let app = try StandaloneServer.application(service: service, configuration: server, authenticator: authenticator) { port in
                let scheme = server.tlsCertificateFile == nil ? "http" : "https"
                print("weft: serving \(scheme) on \(server.host):\(port), store \(server.storeURL.map { "PostgreSQL \($0.host ?? "")\($0.path)" } ?? server.storePath)")
            }
            // SIGINT and SIGTERM shut the server down gracefully (swift-service-lifecycle).
            try await app.runService()
        } catch let error as ConfigurationError {
            throw fail("\(error)")
        }
    }
}
