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

    /// Brings every document's channels in line with the server's `[server.channels]`
    /// (``ChannelIndexedStore/assignChannels(after:limit:onlyUnassigned:projector:)``), in steps
    /// of at most `step` documents: all of them when the templates changed since the last pass
    /// (their fingerprint differs from the one the store kept), else only those stored without
    /// channels. Documents whose channels change are logged again, so readers gain or drop
    /// them. Answers how many. A store without a channel index, or a server without channels,
    /// has nothing to do.
    public func assignChannels(step: Int = 500) async throws(SyncError) -> Int {
        guard let indexed = store as? any ChannelIndexedStore else { return 0 }
        let fingerprint = projector.channels.fingerprint
        var assigned = 0
        do {
            // Other writers of the store (replicas writing straight into PostgreSQL) take the
            // templates from it.
            if try await indexed.channelTemplates().map({ $0 != projector.channels }) ?? true {
                try await indexed.saveChannelTemplates(projector.channels)
            }
            let kept = try await indexed.channelFingerprint()
            // Without channels, nothing is assigned; the next templates, whatever they are, look
            // at every document.
            guard projector.tracksChannels else {
                if kept != 0 { try await indexed.saveChannelFingerprint(0) }
                return 0
            }
            let everything = kept != fingerprint
            var after: ChannelAssignmentPosition?
            while !Task.isCancelled {
                let result = try await indexed.assignChannels(
                    after: after, limit: step, onlyUnassigned: !everything, projector: projector)
                assigned += result.assigned
                guard let last = result.last else { break }
                after = last
            }
            if everything && !Task.isCancelled { try await indexed.saveChannelFingerprint(fingerprint) }
        } catch {
            throw SyncError(.unavailable, "store: \(error)")
        }
        if assigned > 0 { wakeAllWaiters() }
        return assigned
    }
}
