import Logging
import Synchronization
import Weft
import WeftCRDT
import WeftWire

// Serving pages: the cursor checks, the long-poll and its waiters.
extension SyncService {
    /// Serves the page after `request.after`, waiting up to `request.waitMilliseconds` (at most
    /// ``maximumLongPoll``) for a change if there is none yet. A waiting pull ends with an empty
    /// page when its task is cancelled (its client went away) or the service shuts down
    /// (``beginShutdown()``).
    public func pull(database: String, _ request: PullRequest) async throws(SyncError) -> PullResponse {
        try await pull(database: database, request, readerStartsAfresh: false, readable: .all)
    }

    /// ``pull(database:_:)`` for a reader that may read only `readable`: its pages hold the
    /// documents in those channels (within its subscription), documents that left them, and
    /// the pages of a view change when what it may read or subscribes to changed. A client that
    /// does not handle channels (`PullRequest.handlesChannels` in WeftWire) is refused unless
    /// it may read every channel.
    public func pull(database: String, _ request: PullRequest, readable: ChannelGrant) async throws(SyncError)
        -> PullResponse
    {
        try await pull(database: database, request, readerStartsAfresh: false, readable: readable)
    }

    /// ``pull(database:_:)``; with `readerStartsAfresh`, a pull from 0 is served even when the
    /// database forgot tombstones: the reader (the document API's change feed) holds nothing yet,
    /// so the log from 0, which is the snapshot of every live document, is all it needs.
    func pull(
        database: String, _ request: PullRequest, readerStartsAfresh: Bool, readable: ChannelGrant = .all
    ) async throws(SyncError)
        -> PullResponse
    {
        try Self.checkRange(request.after, "after")
        guard request.handlesChannels || readable == .all else {
            throw SyncError(
                .rejected,
                "this token may read only some channels, and this client cannot take pages filtered by channel: upgrade Weft"
            )
        }
        // A cursor behind the tombstones this database forgot: the replica may hold documents
        // deleted since, and must resync (a pull that is part of a resync is let through).
        let collectedThrough: UInt64
        do {
            collectedThrough = try await store.collectedThrough(database: database)
        } catch {
            throw SyncError(.unavailable, "store: \(error)")
        }
        // A pull from 0 too: the replica may hold documents of its own the server deleted and
        // forgot (a file that lost its later commits looks new); its resync tells them apart.
        if request.resyncingFrom == nil, request.after < collectedThrough,
            !(readerStartsAfresh && request.after == 0)
        {
            guard request.handlesCollection else {
                throw SyncError(
                    .unavailable,
                    "this server forgot deleted documents after \(request.after) (tombstone_retention_ms); this client cannot resync for it: upgrade Weft"
                )
            }
            throw SyncError(
                .tooFarBehind,
                "this replica's cursor \(request.after) is behind the deletions the server forgot (through \(collectedThrough), tombstone_retention_ms): resync"
            )
        }
        // The cursor must name a change of this history: after a restore from a backup, the
        // same sequence may name another change, or none yet.
        if request.after > 0 && request.afterTag != 0 {
            let tag: UInt64?
            var served = false
            do {
                tag = try await store.tag(database: database, sequence: request.after)
                // Compaction removed the entry if its document changed again: then the cursor
                // must be one this store remembers serving (contract, rule 8), to this replica
                // or to any other (a replica that took a new identity), or one from before the
                // store remembered cursors.
                if tag == nil {
                    served = try await store.servedCursor(
                        database: database, sequence: request.after, tag: request.afterTag)
                }
            } catch {
                throw SyncError(.unavailable, "store: \(error)")
            }
            if let tag, tag == request.afterTag || tag == 0 {
                // The same change (or one logged before tags, which cannot be told apart).
            } else if served {
                // A cursor of this history whose entry was compacted away.
            } else {
                resyncsRequested += 1
                logger.warning(
                    "a pull's cursor names a change this server does not have (restored from a backup?); the replica resyncs",
                    metadata: ["database": "\(database)", "after": "\(request.after)"])
                throw SyncError(
                    .resync,
                    "the cursor \(request.after) names a change this server's history does not have (it was restored from a backup, or that part of its log is gone): pull everything again and push back what the server lacks"
                )
            }
        }
        // A reader limited to some channels: a view change first, if what it may see changed.
        var target = ChannelGrant.all
        var indexed: (any ChannelIndexedStore)?
        if request.handlesChannels {
            let (wanted, view) = try await channelTarget(request, database: database, readable: readable)
            target = wanted
            if target != .all { indexed = try channelStore() }
            if view != .settled(target) {
                return try await viewChangePage(
                    database: database, request, target: target, view: view, store: try channelStore())
            }
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(
            by: min(.milliseconds(Int64(request.waitMilliseconds)), maximumLongPoll))
        let limit = Int(min(request.maximumChanges, UInt32(limits.maximumChanges)))
        while true {
            var page: (changes: [LoggedChange], hasMore: Bool)
            // The documents that left the reader's channels, by their place in the page, and
            // where a channel page with nothing more ends: the log's head, which it has seen.
            var left = [Int: ChannelPage.Entry]()
            var head: (sequence: UInt64, tag: UInt64)?
            do {
                if let indexed, case .only(let channels) = target {
                    let read = try await indexed.channelChanges(
                        database: database, channels: channels, after: request.after, limit: limit,
                        maxBytes: Int(request.maximumBytes))
                    page = ([], read.hasMore)
                    for entry in read.entries {
                        switch entry {
                        case .change(let change): page.changes.append(change)
                        case .left(let key, let sequence, let tag):
                            left[page.changes.count] = entry
                            page.changes.append(
                                LoggedChange(
                                    sequence: sequence, key: key, record: Self.leftRecord, byteCount: 0,
                                    tag: tag))
                        }
                    }
                    if !read.hasMore, read.head.sequence > request.after { head = read.head }
                } else {
                    page = try await store.changes(
                        database: database, after: request.after, limit: limit,
                        maxBytes: Int(request.maximumBytes))
                }
            } catch {
                throw SyncError(.unavailable, "store: \(error)")
            }
            if !page.changes.isEmpty || clock.now >= deadline || closing || Task.isCancelled {
                // A channel page ends at the log's head when nothing more follows: every change
                // up to it the reader may see is in the page.
                let served =
                    head.map { ($0.sequence, $0.tag) } ?? page.changes.last.map { ($0.sequence, $0.tag) }
                if let served, served.0 > request.after {
                    do {
                        try await store.rememberPull(
                            database: database, replica: request.replica ?? RememberedCursors.unnamedReader,
                            after: request.after,
                            afterTag: request.afterTag, served: served.0, servedTag: served.1,
                            pulledAt: timeSource.currentMilliseconds())
                    } catch {
                        throw SyncError(.unavailable, "store: \(error)")
                    }
                }
                // A large document's small change goes as a delta to a client that takes deltas
                // and has probably applied the version it is over (its cursor is past that
                // version's entry); the client checks that its record is exactly that version (the
                // digest) and asks again without deltas if not. Only under policies that join
                // bodies.
                let declared = policies(database)
                // A page that reaches the end of the log ends at least at the last tombstone the
                // database forgot: every sequence up to it that the page does not hold was one,
                // and a replica caught up must not look behind them (its next pull would be
                // answered "too far behind" for ever). No change has that sequence: no tag.
                var end = (
                    cursor: page.changes.last?.sequence ?? request.after,
                    tag: page.changes.last?.tag ?? request.afterTag
                )
                if let head, head.sequence > end.cursor { end = (head.sequence, head.tag) }
                if !page.hasMore && end.cursor < collectedThrough { end = (collectedThrough, 0) }
                // A resync's page says what the replica needs to know of forgotten tombstones.
                var resync: PullResponse.ResyncAnswer?
                if let from = request.resyncingFrom {
                    resync = PullResponse.ResyncAnswer(
                        tooFarBehind: from < collectedThrough,
                        createdAgain: page.changes.indices.filter { page.changes[$0].bornAfter > from })
                }
                return PullResponse(
                    changes: page.changes.enumerated().map { index, change in
                        let key = WireKey(
                            collection: change.key.collection.rawValue, id: change.key.id.rawValue)
                        if left[index] == nil, request.acceptsDeltas, request.resyncingFrom == nil,
                            request.replica != nil, let delta = change.delta,
                            delta.baseSequence <= request.after,
                            declared.policy(for: change.key.collection).joinsBodies
                        {
                            return WireChange(
                                sequence: change.sequence, key: key, record: delta.record,
                                deltaBase: delta.baseDigest)
                        }
                        return WireChange(sequence: change.sequence, key: key, record: change.record)
                    },
                    cursor: end.cursor, cursorTag: end.tag, hasMore: page.hasMore, resync: resync,
                    channels: request.handlesChannels
                        ? .init(
                            view: try await seal(
                                .settled(target), database: database, replica: request.replica),
                            left: left.keys.sorted())
                        : nil)
            }
            // Long-poll: wait for a push to this database (or the store poll, or the deadline).
            await waitForPush(database, upTo: min(deadline - clock.now, storePollInterval))
            if Task.isCancelled {
                return PullResponse(
                    changes: [], cursor: request.after, cursorTag: request.afterTag, hasMore: false,
                    channels: request.handlesChannels
                        ? .init(
                            view: try await seal(
                                .settled(target), database: database, replica: request.replica)) : nil
                )
            }
        }
    }

    /// Answers every waiting pull at once (each with what the store has) and lets no new pull
    /// wait: a server shutting down gracefully need not wait for long-polls. It cannot be undone.
    public func beginShutdown() {
        closing = true
        for (_, waiting) in waiters { for continuation in waiting.values { continuation.finish() } }
        waiters.removeAll()
    }

    /// How many pulls are waiting for a change now.
    public var waitingPulls: Int { waiters.values.reduce(0) { $0 + $1.count } }

    /// Wakes every waiting pull, of every database.
    func wakeAllWaiters() {
        for database in Array(waiters.keys) { wakeWaiters(database) }
    }

    func wakeWaiters(_ database: String) {
        guard let waiting = waiters.removeValue(forKey: database) else { return }
        for continuation in waiting.values { continuation.yield() }
    }

    /// Suspends until a push to `database` commits, `timeout` passes or the task is cancelled.
    func waitForPush(_ database: String, upTo timeout: Duration) async {
        guard timeout > .zero, !closing, !Task.isCancelled else { return }
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = nextWaiter
        nextWaiter += 1
        waiters[database, default: [:]][id] = continuation
        let timer = Task {
            try? await Task.sleep(for: timeout)
            continuation.finish()
        }
        for await _ in stream { break }
        timer.cancel()
        waiters[database]?[id] = nil
        if waiters[database]?.isEmpty == true { waiters[database] = nil }
    }
}
