import Foundation
import Weft
import WeftCRDT
import WeftServer

/// `remote_endpoint = "postgres://user:password@host:port/database"`, as written: the replica
/// syncs straight into PostgreSQL, with the same central store and the same merge as a
/// Standalone server, and no server in between. Given a `replica`, the `configuration` and
/// `resolvers` it was opened with, and the database's `url`:
///
/// ```swift
/// let direct = try await PostgresEndpoint.connect(url, configuration: configuration, resolvers: resolvers)
/// let engine = SyncEngine(replica: replica, transport: direct.transport)
/// try await engine.syncOnce()
/// ```
///
/// The tenant (the Weft database inside PostgreSQL) is the `tenant` query parameter, or else the
/// PostgreSQL database's name. TLS options (`sslmode`, `sslrootcert`) pass through to
/// postgres-nio. Conflicts resolve with the replica's own policies and resolvers, exactly as a
/// server configured like it would.
public struct PostgresEndpoint: Sendable {
    /// The central store the replica writes into.
    public let store: PostgresCentralStore
    /// The service in front of it, in this process.
    public let service: SyncService
    /// The transport to give a `SyncEngine`.
    public let transport: InProcessTransport
    /// The tenant synced.
    public let tenant: String

    /// Connects to the PostgreSQL database `url` names (migrating its schema if needed).
    public static func connect(
        _ url: URL, configuration: ReplicaConfiguration = ReplicaConfiguration(),
        resolvers: ResolverRegistry = ResolverRegistry(),
        operationTimeout: Duration = .seconds(10)
    ) async throws(WeftError) -> PostgresEndpoint {
        let tenant = try Self.tenantName(url)
        let store = try await PostgresCentralStore(url: url, operationTimeout: operationTimeout)
        // A `postgres://` replica is its own server: its configuration's policies are the ones
        // it declares (replicas sharing one database share one configuration).
        // The channels are the servers': a database with channels keeps their templates, so this
        // writer puts documents in the channels the servers would.
        let channels = try await store.channelTemplates() ?? ServerChannels()
        let policies = configuration.declaredPolicies
        let service = SyncService(
            store: store, policiesByDatabase: { _ in policies }, resolvers: resolvers, channels: channels)
        return PostgresEndpoint(
            store: store, service: service, transport: InProcessTransport(service: service, database: tenant),
            tenant: tenant)
    }

    /// The tenant a URL names: its `tenant` query parameter, or else the database's name.
    /// - Throws: `WeftError.Kind.invalidArgument` if that is not a valid Weft database name.
    public static func tenantName(_ url: URL) throws(WeftError) -> String {
        let components = URLComponents(url: url, resolvingAgainstBaseURL: false)
        let name =
            components?.queryItems?.first { $0.name == "tenant" }?.value
            ?? String((components?.path ?? "").drop(while: { $0 == "/" }))
        guard DatabaseName.isValid(name) else {
            throw .invalidArgument(
                "the tenant \(name.debugDescription) is not a valid Weft database name (1–64 of A–Z, a–z, 0–9, '_', '-'); set ?tenant="
            )
        }
        return name
    }
}
