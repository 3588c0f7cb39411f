// A Standalone server (Hummingbird, SQLite central store) on a loopback port, in this process.

import Hummingbird
import Logging
import Weft
import WeftCRDT
import WeftServer
import WeftWire

struct BenchServer {
    static let token = "bench-write-token-0123456789abcdef"
    static let database = "bench"

    let port: Int
    let task: Task<Void, any Error>
    let store: any CentralStore
    var baseURL: String { "http://127.0.0.1:\(port)" }

    static func start(storePath: String, policy: ConflictPolicy, maxDocumentBytes: Int? = nil) async throws -> BenchServer {
        try await start(store: try SQLiteCentralStore(path: storePath), storePath: storePath, policy: policy, maxDocumentBytes: maxDocumentBytes)
    }

    static func start(
        store: any CentralStore, storePath: String = "", policy: ConflictPolicy, databases: [String] = [BenchServer.database],
        maxDocumentBytes: Int? = nil
    ) async throws -> BenchServer {
        var configuration = ServerConfiguration()
        if let maxDocumentBytes { configuration.limits.maxDocumentBytes = maxDocumentBytes }
        configuration.port = 0
        configuration.storePath = storePath
        configuration.tokens = [ServerToken(token: token, databases: databases, access: .readWrite)]
        let limits = configuration.limits
        let service = SyncService(
            store: store,
            limits: WireLimits(
                maximumFrameBytes: limits.maxRequestBytes, maximumDecompressedBytes: limits.maxDecompressedBytes,
                maximumChanges: limits.maxChangesPerBatch),
            policies: ServerPolicies(defaultPolicy: policy))
        var logger = Logger(label: "weft.bench.server")
        logger.logLevel = .critical
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let app = StandaloneServer.application(service: service, configuration: configuration, logger: logger) { port in
            continuation.yield(port)
        }
        let task = Task { try await app.runService(gracefulShutdownSignals: []) }
        var port = 0
        for await bound in ports {
            port = bound
            break
        }
        guard port > 0 else { throw BenchFailure("the server did not report a port") }
        return BenchServer(port: port, task: task, store: store)
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }
}
