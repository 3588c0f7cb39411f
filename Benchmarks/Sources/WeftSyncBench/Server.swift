// A Standalone server (Hummingbird, SQLite central store) on a loopback port, in this process.

import Hummingbird
import Logging
import Weft
import WeftCRDT
@_spi(Measuring) import WeftServer
import WeftWire

struct BenchServer {
    static let token = "bench-write-token-0123456789abcdef"
    static let database = "bench"

    let port: Int
    let running: RunningStandalone
    let store: any CentralStore
    var baseURL: String { "http://127.0.0.1:\(port)" }

    static func start(storePath: String, policy: ConflictPolicy, maxDocumentBytes: Int? = nil) async throws -> BenchServer {
        try await start(store: try SQLiteCentralStore(path: storePath), storePath: storePath, policy: policy, maxDocumentBytes: maxDocumentBytes)
    }

    static func start(
        store: any CentralStore, storePath: String = "", policy: ConflictPolicy, databases: [String] = [BenchServer.database],
        maxDocumentBytes: Int? = nil, keepsProjection: Bool = true
    ) async throws -> BenchServer {
        var configuration = ServerConfiguration()
        if let maxDocumentBytes { configuration.limits.maxDocumentBytes = maxDocumentBytes }
        configuration.port = 0
        configuration.storePath = storePath
        configuration.tokens = [ServerToken(token: token, databases: databases, access: .readWrite)]
        let limits = configuration.limits
        var logger = Logger(label: "weft.bench.server")
        logger.logLevel = .critical
        let policies = ServerPolicies(defaultPolicy: policy)
        let service = SyncService(
            store: store,
            limits: WireLimits(
                maximumFrameBytes: limits.maxRequestBytes, maximumDecompressedBytes: limits.maxDecompressedBytes,
                maximumChanges: limits.maxChangesPerBatch),
            policiesByDatabase: { _ in policies }, resolvers: ResolverRegistry(), storePollInterval: .milliseconds(250),
            maximumClockSkew: 60_000, timeSource: SystemTimeSource(), maximumDocumentBytes: .max, maximumLongPoll: .seconds(30),
            logger: logger, keepsProjection: keepsProjection)
        // Started and stopped as `weft serve` is: stopping cancels nothing, it shuts down
        // gracefully (cancelling the serving task can trap in NIO when a connection was accepted
        // but not yet served: apple/swift-nio#3481).
        let running = try await RunningStandalone.start(service: service, configuration: configuration, logger: logger)
        return BenchServer(port: running.port, running: running, store: store)
    }

    func stop() async {
        await running.stop()
    }
}
