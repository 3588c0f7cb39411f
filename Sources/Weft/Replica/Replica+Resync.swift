import WeftCRDT

// The replica's side of a resync (SyncEngine.resync()).
extension Replica {
    /// The pull cursor and the tag of the change it names (0: unknown).
    public func pullPosition() async throws(WeftError) -> (cursor: UInt64, tag: UInt64) {
        let metadata = try await storage.metadata()
        return (metadata.pullCursor, metadata.pullCursorTag)
    }

    /// Whether a resync is under way (started and not finished, perhaps cut short by a crash).
    public func isResyncing() async throws(WeftError) -> Bool { try await storage.metadata().resyncPending }

    /// Starts a resync: the pull cursor goes back to the start of the server's log, and the
    /// resync is recorded until ``endResync(serverVersions:tooFarBehind:)``.
    public func beginResync() async throws(WeftError) {
        try await exclusively { () async throws(WeftError) in try await storage.beginResync() }
    }

    /// Ends a resync: queues every local document the server lacks or holds at an older
    /// version, judged by `serverVersions` (the version vector of the server's record of each
    /// document, from pulling its whole log), and clears the resync. Returns how many it queued.
    ///
    /// A document is pushed back unless the server's version covers the local one (equal or
    /// later), so a document the server holds as it is here costs nothing.
    ///
    /// If the server forgot deletions logged after the cursor the resync began from
    /// (`tooFarBehind`, `PullResponse.ResyncAnswer.tooFarBehind` in WeftWire), a document it
    /// lacks was deleted there meanwhile, unless this replica created it and the server never
    /// confirmed it: those are pushed as usual, and the others are forgotten, their unpushed
    /// writes set aside in the dead letters (pushed back, they would bring the deleted document
    /// back). The rule for such writes is therefore: the deletion wins, and the write stays
    /// readable in ``deadLetters(limit:)``.
    /// - Complexity: O(*n*) in the local documents.
    public func endResync(serverVersions: [DocumentKey: VersionVector], tooFarBehind: Bool = false) async throws(WeftError) -> Int {
        let (pushBack, missing) = try await exclusively { () async throws(WeftError) -> ([DocumentKey], [DocumentKey]) in
            let keys = try await storage.documentKeys()
            var pushBack = [DocumentKey]()
            var missing = [DocumentKey]()
            for start in stride(from: 0, to: keys.count, by: 500) {
                let chunk = Array(keys[start..<min(start + 500, keys.count)])
                for (key, record) in try await storage.records(for: chunk) {
                    if let server = serverVersions[key] {
                        switch record.version.compare(to: server) {
                        case .before, .equal: continue
                        case .after, .concurrent: break
                        }
                    } else if tooFarBehind {
                        missing.append(key)
                        continue
                    }
                    pushBack.append(key)
                }
            }
            return (pushBack, missing)
        }
        var queued = pushBack
        if !missing.isEmpty {
            let unconfirmed = try await storage.unconfirmedDocuments(among: missing)
            try await forgetDocuments(missing.filter { !unconfirmed.contains($0) }, reason: Self.forgottenWhileAway)
            queued += missing.filter { unconfirmed.contains($0) }
        }
        try await exclusively { () async throws(WeftError) in try await storage.endResync(pushingBack: queued) }
        return queued.count
    }
}
