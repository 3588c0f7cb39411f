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
    /// resyncs first (``resync()``).
    public func pullAll() async throws(SyncError) -> (changes: Int, conflicts: Int, cursor: UInt64) {
        try await openSession()
        let replica = replica
        if try await local({ () async throws(WeftError) in try await replica.isResyncing() }) {
            return try await resync()
        }
        do {
            return try await pullPages { _ in }
        } catch where error.kind == .resync {
            logger.warning("the server's history does not hold this replica's cursor (restored from a backup?): resyncing")
            return try await resync()
        }
    }

    /// Pulls and applies pages from the cursor on, calling `observe` with each page's changes as
    /// the server sent them.
    func pullPages(observe: ([(key: DocumentKey, record: DocumentRecord)]) -> Void) async throws(SyncError)
        -> (changes: Int, conflicts: Int, cursor: UInt64)
    {
        let replica = replica
        var (cursor, tag) = try await local { () async throws(WeftError) in try await replica.pullPosition() }
        var changes = 0
        var conflicts = 0
        // A replica that starts from 0 (a first sync, a resync) holds no base of any delta: it
        // takes whole records.
        let takesDeltas = cursor > 0
        while true {
            var request = PullRequest(
                after: cursor, afterTag: tag, maximumChanges: maximumPageChanges, replica: replica.replicaID, acceptsDeltas: takesDeltas)
            if let limit = bandwidthLimit { request.maximumBytes = UInt32(clamping: min(Int(request.maximumBytes), limit.burstBytes)) }
            var page = try await transport.pull(request)
            if bandwidthLimit != nil { await throttle(WireMessage.encode(page).count) }
            // A delta joins only into exactly the record it is over; if one of ours is not, the
            // page comes again whole.
            if try await !holdsBases(of: page) {
                request.acceptsDeltas = false
                page = try await transport.pull(request)
                if bandwidthLimit != nil { await throttle(WireMessage.encode(page).count) }
            }
            if page.changes.isEmpty && page.cursor <= cursor { return (changes, conflicts, cursor) }
            guard page.cursor >= cursor else {
                throw SyncError(.badResponse, "the server's cursor \(page.cursor) is behind ours (\(cursor))")
            }
            var keyed = [(key: DocumentKey, record: DocumentRecord)]()
            for change in page.changes {
                do {
                    let key = DocumentKey(collection: try CollectionName(change.key.collection), id: try DocumentID(change.key.id))
                    keyed.append((key, change.record))
                } catch {
                    throw SyncError(.badResponse, "the server sent an invalid key \(change.key): \(error)")
                }
            }
            observe(keyed)
            let pageTag = page.cursorTag
            let deltas = Set(page.changes.indices.filter { page.changes[$0].deltaBase != nil }.map { keyed[$0].key })
            let applied = try await local { () async throws(WeftError) in
                try await replica.applyRemote(keyed, deltas: deltas, through: page.cursor, tag: pageTag)
            }
            changes += applied.count
            conflicts += applied.filter { $0.kind == .conflict || $0.kind == .resolved }.count
            if applied.contains(where: { $0.kind == .resolved }) { resolvedSiblings = true }
            if page.cursor > cursor { tag = page.cursorTag }
            cursor = page.cursor
            if !page.hasMore { return (changes, conflicts, cursor) }
        }
    }

    /// Whether every delta of `page` is over exactly the record this replica holds of its
    /// document (``WeftWire/WireChange/deltaBase``: the base's digest). A record with edits of its
    /// own not yet pushed, or one that differs in any other way, takes the page whole.
    func holdsBases(of page: PullResponse) async throws(SyncError) -> Bool {
        let bases = page.changes.compactMap { change -> (key: DocumentKey, digest: UInt64)? in
            guard let base = change.deltaBase,
                let key = try? DocumentKey(collection: CollectionName(change.key.collection), id: DocumentID(change.key.id))
            else { return nil }
            return (key, base)
        }
        guard !bases.isEmpty else { return true }
        let replica = replica
        let records = try await local { () async throws(WeftError) in try await replica.storage.records(for: bases.map(\.key)) }
        return bases.allSatisfy { base in records[base.key]?.digest == base.digest }
    }
}
