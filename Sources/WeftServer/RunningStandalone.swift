import Hummingbird
import Logging
import ServiceLifecycle
import Weft

/// A Standalone server running in this process, with the port it listens on.
///
/// ``stop()`` shuts it down gracefully (stop accepting, let requests in progress finish), the
/// way SIGTERM does for `weft serve`.
public struct RunningStandalone: Sendable {
    /// The port the server listens on (useful when the configuration asked for port 0).
    public let port: Int
    /// The service behind it.
    public let service: SyncService
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts the server and returns once it is listening.
    public static func start(
        service: SyncService, configuration: ServerConfiguration, logger: Logger = Logger(label: "weft.server")
    ) async throws -> RunningStandalone {
        let (ports, ready) = AsyncStream<Int>.makeStream()
        var authenticator: JWTAuthenticator?
        if let jwt = configuration.jwt { authenticator = try await JWTAuthenticator.make(jwt) }
        let app = try StandaloneServer.application(service: service, configuration: configuration, authenticator: authenticator, logger: logger) {
            port in
            ready.yield(port)
            ready.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task { try await group.run() }
        var port: Int?
        for await bound in ports {
            port = bound
            break
        }
        guard let port else {
            _ = await task.result
            throw WeftError.storage("the server stopped before it was listening")
        }
        return RunningStandalone(port: port, service: service, group: group, task: task)
    }

    private init(port: Int, service: SyncService, group: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.service = service
        self.group = group
        self.task = task
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    public func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }
}
