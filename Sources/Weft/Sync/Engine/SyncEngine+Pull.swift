import Foundation
import Logging
import Synchronization
import WeftCRDT
import WeftWire

// Pulling pages after the cursor and applying each with its cursor.
extension SyncEngine {
    /// Pulls and applies pages until the server has nothing more after the cursor.
    public func pullAll() async throws(SyncError) -> (changes: Int, conflicts: Int, cursor: UInt64) {
        try await openSession()
        var cursor = try await local { () async throws(WeftError) in try await replica.pullCursor() }
        var changes = 0
        var conflicts = 0
        while true {
            var request = PullRequest(after: cursor, maximumChanges: maximumPageChanges)
            if let limit = bandwidthLimit { request.maximumBytes = UInt32(clamping: min(Int(request.maximumBytes), limit.burstBytes)) }
            let page = try await transport.pull(request)
            if bandwidthLimit != nil { await throttle(WireMessage.encode(page).count) }
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
            let applied = try await local { () async throws(WeftError) in try await replica.applyRemote(keyed, through: page.cursor) }
            changes += applied.count
            conflicts += applied.filter { $0.kind == .conflict || $0.kind == .resolved }.count
            if applied.contains(where: { $0.kind == .resolved }) { resolvedSiblings = true }
            cursor = page.cursor
            if !page.hasMore { return (changes, conflicts, cursor) }
        }
    }
}
