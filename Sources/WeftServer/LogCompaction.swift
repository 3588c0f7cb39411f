import Logging
import ServiceLifecycle
import Weft

/// The server's background compaction: a pass over the central store's log when the server
/// starts, then one every ``interval``, each in bounded steps (``SyncService/compactLog(step:)``).
///
/// Entries this build logs are compacted as they are logged; a pass removes what an older build
/// or a server of an older version left, so once every server runs this build, a pass finds
/// nothing and costs one read of the log per ``interval``.
struct LogCompaction: Service {
    let service: SyncService
    var interval: Duration = .seconds(600)
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let removed = try await service.compactLog()
                    if removed > 0 {
                        logger.info("compacted the change log", metadata: ["removed": "\(removed)"])
                    }
                } catch {
                    logger.warning(
                        "log compaction failed; it tries again later", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
