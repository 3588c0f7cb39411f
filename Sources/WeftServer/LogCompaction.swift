import Logging
import ServiceLifecycle
import Weft

/// The server's background compaction: a pass over the central store's log when the server
/// starts, then one every ``interval``, each in bounded steps (``SyncService/compactLog(step:)``).
/// Each pass first brings documents' channels in line with `[server.channels]`
/// (``SyncService/assignChannels(step:)``: every document once after the templates change, else
/// only those stored without channels), then fills in the projection of documents stored before
/// the store kept it (``SyncService/projectDocuments(step:)``): after the migration, once.
///
/// Entries this build logs are compacted as they are logged; a pass removes what an older build
/// or a server of an older version left, so once every server runs this build, a pass finds
/// nothing and costs one read of the log per ``interval``.
struct LogCompaction: Service {
    let service: SyncService
    var interval: Duration = .seconds(600)
    /// `tombstone_retention_ms`: each pass also forgets the tombstones every replica that pulled
    /// within it has pulled past.
    var tombstoneRetention: UInt64 = TombstoneRetention.defaultMilliseconds
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Each pass on its own: a record that does not decode stops the projection's pass
                // (logged at each try), not compaction or collection.
                do {
                    let assigned = try await service.assignChannels()
                    if assigned > 0 {
                        logger.info(
                            "brought documents' channels in line with [server.channels]",
                            metadata: ["documents": "\(assigned)"])
                    }
                } catch {
                    logger.error(
                        "assigning channels failed; it tries again later", metadata: ["error": "\(error)"])
                }
                do {
                    let projected = try await service.projectDocuments()
                    if projected > 0 {
                        logger.info(
                            "filled in the JSON projection of documents stored before it",
                            metadata: ["documents": "\(projected)"])
                    }
                } catch {
                    logger.error(
                        "filling in the JSON projection failed; it tries again later",
                        metadata: ["error": "\(error)"])
                }
                do {
                    let removed = try await service.compactLog()
                    if removed > 0 {
                        logger.info("compacted the change log", metadata: ["removed": "\(removed)"])
                    }
                    let forgotten = try await service.collectTombstones(retention: tombstoneRetention)
                    if forgotten > 0 {
                        logger.info(
                            "forgot tombstones every replica has pulled",
                            metadata: ["tombstones": "\(forgotten)"])
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
