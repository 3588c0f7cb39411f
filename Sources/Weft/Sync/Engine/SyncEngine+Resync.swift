import Logging
import WeftCRDT
import WeftWire

// Resyncing with a server whose history is not the one this replica's cursors came from.
extension SyncEngine {
    /// Resyncs with a server that lost part of its history (restored from a backup): pulls the
    /// server's whole log again from the start, merging every change (a merge of what is already
    /// here changes nothing), then queues every local document the server lacks or holds at an
    /// older version, and pushes them in this sync round.
    ///
    /// It starts when a pull's cursor names a change the server's history does not hold
    /// (``SyncError/Kind/resync``), or when the handshake shows the server applied less of this
    /// replica's queue than it had acknowledged. The replica records the resync before it starts
    /// and clears it only with the push-backs queued, so a crash in between starts it over.
    ///
    /// - Complexity: the whole log is pulled, and each document held before the resync has its
    ///   version compared with the server's: O(*log* + *documents*).
    func resync() async throws(SyncError) -> (changes: Int, conflicts: Int, cursor: UInt64) {
        let replica = replica
        try await local { () async throws(WeftError) in try await replica.beginResync() }
        let (from, held) = try await local { () async throws(WeftError) in
            (try await replica.storage.metadata().resyncFrom, Set(try await replica.storage.documentKeys()))
        }
        // Only the documents held before the resync can lack anything on the server: one pulled
        // during it is the server's (or queued, if written since). A replica joining a server
        // that forgot tombstones resyncs after its first page, and holds little.
        var serverVersions = [DocumentKey: VersionVector]()
        var tooFarBehind = false
        let pulled = try await pullPages(resyncingFrom: from) { page, answer in
            for change in page where held.contains(change.key) { serverVersions[change.key] = change.record.version }
            if answer?.tooFarBehind == true { tooFarBehind = true }
        }
        let pushedBack = try await local { () async throws(WeftError) in
            try await replica.endResync(serverVersions: serverVersions, tooFarBehind: tooFarBehind, among: held)
        }
        resyncs += 1
        logger.warning(
            "resynced with the server: pulled its whole history and queued what it lacked",
            metadata: ["pulled": "\(pulled.changes)", "pushed back": "\(pushedBack)"])
        resolvedSiblings = true  // push what is queued in this round: pushes wait while a resync is under way
        return pulled
    }
}
