import Weft

// The background passes: filling in projections, log compaction and tombstone collection.
extension SyncService {
    /// Runs one pass of background compaction over the store's log, in steps of at most `step`
    /// entries (each a short transaction of its own, so pushes and pulls go on between them),
    /// and answers how many entries it removed. Stores compact what they log as they log it; a
    /// pass removes what an older build left (see ``CentralStore/compactLog(limit:)``).
    public func compactLog(step: Int = 1_000) async throws(SyncError) -> Int {
        var removed = 0
        while !Task.isCancelled {
            let result: (removed: Int, passFinished: Bool)
            do {
                result = try await store.compactLog(limit: step)
            } catch {
                throw SyncError(.unavailable, "store: \(error)")
            }
            removed += result.removed
            if result.passFinished { break }
            // A step that removed nothing (or was skipped while a sequencer held the lock)
            // leaves the store alone for a moment.
            if result.removed == 0 { try? await Task.sleep(for: .milliseconds(10)) }
        }
        return removed
    }

    /// Runs one pass of tombstone collection (``TombstoneCollectingStore``), in steps of at most
    /// `step` documents: forgets the tombstones every replica that pulled within `retention`
    /// milliseconds has pulled past. Answers how many it forgot.
    public func collectTombstones(retention: UInt64, step: Int = 1_000) async throws(SyncError) -> Int {
        let now = timeSource.currentMilliseconds()
        let since = now > retention ? now - retention : 0
        var removed = 0
        while !Task.isCancelled {
            let result: (removed: Int, passFinished: Bool)
            do {
                result = try await store.collectTombstones(pulledSince: since, limit: step)
            } catch {
                throw SyncError(.unavailable, "store: \(error)")
            }
            removed += result.removed
            if result.passFinished { break }
        }
        return removed
    }

    /// Fills in the JSON projection of every row written before the store kept it (the
    /// migration to the projection, ``CentralStore/projectDocuments(limit:projector:)``), in
    /// steps of at most `step` rows, each a short transaction of its own. Answers how many rows
    /// it projected.
    public func projectDocuments(step: Int = 500) async throws(SyncError) -> Int {
        var projected = 0
        while !Task.isCancelled {
            let result: (projected: Int, passFinished: Bool)
            do {
                result = try await store.projectDocuments(limit: step, projector: projector)
            } catch {
                throw SyncError(.unavailable, "store: \(error)")
            }
            projected += result.projected
            if result.passFinished { break }
        }
        return projected
    }
}
