import Foundation
import Logging
import Synchronization
import WeftCRDT
import WeftWire

// Pulling pages after the cursor and applying each with its cursor.
extension SyncEngine {
    /// Pulls and applies pages until the server has nothing more after the cursor.
    ///
    /// If the server's history no longer holds the change the cursor names (``SyncError/Kind/resync``:
    /// the server was restored from a backup), or a resync is already under way, the engine
    /// resyncs first: it pulls the server's whole log again from the start, then queues and
    /// pushes every local document the server lacks or holds at an older version.
    public func pullAll() async throws(SyncError) -> (changes: Int, conflicts: Int, cursor: UInt64) {
        try await pullAll(waitingMilliseconds: 0)
    }

    /// ``pullAll()`` whose first request may wait on the server up to `wait` milliseconds for a
    /// change (the long-poll): a live pull.
    func pullAll(waitingMilliseconds wait: UInt32) async throws(SyncError) -> (
        changes: Int, conflicts: Int, cursor: UInt64
    ) {
        try await openSession()
        let replica = replica
        if try await local({ () async throws(WeftError) in try await replica.isResyncing() }) {
            return try await resync()
        }
        do {
            return try await pullPages(firstWait: wait) { _, _ in }
        } catch  where error.kind == .resync {
            logger.warning(
                "the server's history does not hold this replica's cursor (restored from a backup?): resyncing"
            )
            return try await resync()
        } catch  where error.kind == .tooFarBehind {
            logger.warning(
                "the server forgot deletions this replica has not pulled (it was away longer than tombstone_retention_ms): resyncing"
            )
            return try await resync()
        }
    }

    /// Pulls and applies pages from the cursor on (at most `maximumPages` of them), calling
    /// `observe` with each page's changes as the server sent them and its resync answer.
    ///
    /// In a resync (`resyncingFrom`: the cursor it began from), a page's documents the server
    /// created again since that cursor are forgotten here before the page is applied, their
    /// unpushed writes set aside: the copy held here is of a version the server deleted and
    /// forgot, and joining it into the new one would bring the deleted content back (unless
    /// this replica created it and the server never confirmed it: then it is no such copy).
    func pullPages(
        maximumPages: Int = .max, resyncingFrom: UInt64? = nil, firstWait: UInt32 = 0,
        observe: ([(key: DocumentKey, record: DocumentRecord)], PullResponse.ResyncAnswer?) -> Void
    ) async throws(SyncError)
        -> (changes: Int, conflicts: Int, cursor: UInt64)
    {
        var pages = 0
        let replica = replica
        var (cursor, tag) = try await local { () async throws(WeftError) in try await replica.pullPosition() }
        var view =
            serverFiltersChannels
            ? try await local { () async throws(WeftError) in try await replica.storage.metadata().channelView
            } : []
        var changes = 0
        var conflicts = 0
        // A replica that starts from 0 (a first sync, a resync) holds no base of any delta: it
        // takes whole records. Nor does a resync take deltas.
        let takesDeltas = cursor > 0 && resyncingFrom == nil
        // Only the first request waits: once a change came, the pages after it are asked at once.
        var wait = firstWait
        while true {
            var request = PullRequest(
                after: cursor, afterTag: tag, maximumChanges: maximumPageChanges, waitMilliseconds: wait,
                replica: replica.replicaID,
                acceptsDeltas: takesDeltas, handlesCollection: serverCollectsTombstones,
                resyncingFrom: serverCollectsTombstones ? resyncingFrom : nil,
                handlesChannels: serverFiltersChannels, view: view,
                subscription: subscription)
            wait = 0
            if let limit = bandwidthLimit {
                request.maximumBytes = UInt32(clamping: min(Int(request.maximumBytes), limit.burstBytes))
            }
            var page = try await transport.pull(request)
            if bandwidthLimit != nil { await throttle(WireMessage.encode(page).count) }
            // A delta joins only into exactly the record it is over; if we hold none, the page
            // comes again whole.
            if let rebuilt = try await rebuildingDeltas(of: page) {
                page = rebuilt
            } else {
                request.acceptsDeltas = false
                request.waitMilliseconds = 0
                page = try await transport.pull(request)
                if bandwidthLimit != nil { await throttle(WireMessage.encode(page).count) }
                guard !page.changes.contains(where: { $0.deltaBase != nil }) else {
                    throw SyncError(.badResponse, "the server sent deltas to a pull that takes none")
                }
            }
            let viewChange = page.channels?.isViewChange == true
            if page.changes.isEmpty && page.cursor <= cursor && !viewChange
                && page.channels.map({ $0.view == view }) ?? true
            {
                pushedSincePull.removeAll()
                return (changes, conflicts, cursor)
            }
            guard page.cursor >= cursor, !viewChange || page.cursor == cursor else {
                throw SyncError(
                    .badResponse,
                    "the server's cursor \(page.cursor) is not where a page may leave ours (\(cursor))")
            }
            var keys = [DocumentKey]()
            for change in page.changes {
                do {
                    keys.append(
                        DocumentKey(
                            collection: try CollectionName(change.key.collection),
                            id: try DocumentID(change.key.id)))
                } catch {
                    throw SyncError(.badResponse, "the server sent an invalid key \(change.key): \(error)")
                }
            }
            // Documents that left what this replica may see go first, before the page's cursor
            // is kept (a crash in between has the server send them again).
            let leaving = Set(page.channels?.left ?? [])
            if !leaving.isEmpty {
                let gone = leaving.sorted().map { keys[$0] }
                try await local { () async throws(WeftError) in
                    try await replica.forgetDocuments(gone, reason: Replica.leftView)
                }
                leftView += gone.count
            }
            let keyed = page.changes.indices.filter { !leaving.contains($0) }.map {
                (key: keys[$0], record: page.changes[$0].record)
            }
            observe(keyed, page.resync)
            if let answer = page.resync, !answer.createdAgain.isEmpty {
                let again = answer.createdAgain.filter { !leaving.contains($0) }.map { keys[$0] }
                try await local { () async throws(WeftError) in
                    // A document this replica created and the server never confirmed is no copy
                    // of the forgotten one: it merges with the new one as any concurrent creation.
                    let held = Array(try await replica.storage.records(for: again).keys)
                    let own = try await replica.storage.unconfirmedDocuments(among: held)
                    try await replica.forgetDocuments(
                        held.filter { !own.contains($0) }, reason: Replica.createdAgainWhileAway)
                }
            }
            let pageTag = page.cursorTag
            let applied = try await local { () async throws(WeftError) in
                try await replica.applyRemote(keyed, through: page.cursor, tag: pageTag)
            }
            // The view is kept after the page's documents: a crash in between has the server
            // send them again.
            if let answer = page.channels, answer.view != view {
                let next = answer.view
                try await local { () async throws(WeftError) in
                    try await replica.storage.saveChannelView(next)
                }
                view = next
            }
            changes += applied.count
            conflicts += applied.filter { $0.kind == .conflict || $0.kind == .resolved }.count
            if applied.contains(where: { $0.kind == .resolved }) { resolvedSiblings = true }
            if page.cursor > cursor { tag = page.cursorTag }
            cursor = page.cursor
            if !page.hasMore && !viewChange {
                // Every change committed before this pull began has now been applied, the
                // replica's own pushes included: the bases are the server's records again.
                pushedSincePull.removeAll()
                return (changes, conflicts, cursor)
            }
            pages += 1
            if pages >= maximumPages { return (changes, conflicts, cursor) }
        }
    }

    /// `page` with every delta replaced by the server's whole record, rebuilt by joining the
    /// delta into the record with exactly its base's digest (``WeftWire/WireChange/deltaBase``):
    /// the document's server base (``ReplicaStorage``, contract point 8), or else its local
    /// record, when that is unchanged since the last pull. `nil` if some delta's base is neither.
    func rebuildingDeltas(of page: PullResponse) async throws(SyncError) -> PullResponse? {
        var wanted = [(index: Int, key: DocumentKey, digest: UInt64)]()
        for (index, change) in page.changes.enumerated() {
            guard let digest = change.deltaBase else { continue }
            guard
                let key = try? DocumentKey(
                    collection: CollectionName(change.key.collection), id: DocumentID(change.key.id))
            else {
                throw SyncError(.badResponse, "the server sent an invalid key \(change.key)")
            }
            wanted.append((index, key, digest))
        }
        guard !wanted.isEmpty else { return page }
        let storage = replica.storage
        let keys = wanted.map(\.key)
        let (bases, records) = try await local { () async throws(WeftError) in
            let digests = try await storage.serverBaseDigests(for: keys)
            let matching = wanted.filter { digests[$0.key] == $0.digest }.map(\.key)
            let others = wanted.filter { digests[$0.key] != $0.digest }.map(\.key)
            return (try await storage.serverBases(for: matching), try await storage.records(for: others))
        }
        var rebuilt = page
        for (index, key, digest) in wanted {
            // A base counts only with the digest read with it (a pull may have replaced it
            // since the digests were looked up); the replica's own record, only by its digest.
            let base = bases[key].flatMap { $0.digest == digest ? $0.record : nil }
            guard var record = base ?? records[key], base != nil || record.digest == digest else {
                return nil
            }
            record.merge(page.changes[index].record)
            rebuilt.changes[index].record = record
            rebuilt.changes[index].deltaBase = nil
        }
        return rebuilt
    }
}
