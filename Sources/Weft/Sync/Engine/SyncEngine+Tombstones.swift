// Forgetting old tombstones as part of sync.
extension SyncEngine {
    /// Sets how often a sync round has the replica collect old tombstones.
    public func setTombstoneCollectionInterval(_ interval: Duration) {
        tombstoneCollectionInterval = max(.zero, interval)
    }

    /// After a round's pull: has the replica forget the tombstones past its retention, if
    /// ``tombstoneCollectionInterval`` has passed since the last time (or this is the first).
    func collectTombstonesIfDue() async throws(SyncError) {
        let now = ContinuousClock.now
        if let last = lastTombstoneCollection, now - last < tombstoneCollectionInterval { return }
        lastTombstoneCollection = now
        let replica = replica
        let collected = try await local { () async throws(WeftError) in try await replica.collectTombstones()
        }
        if collected > 0 { logger.info("forgot old tombstones", metadata: ["documents": "\(collected)"]) }
    }
}
