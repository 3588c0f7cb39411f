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
    /// - Complexity: the whole log is pulled, and each local document's version is compared with
    ///   the server's: O(*log* + *documents*).
    func resync() async throws(SyncError) -> (changes: Int, conflicts: Int, cursor: UInt64) {
        let replica = replica
        try await local { () async throws(WeftError) in try await replica.beginResync() }
        let from = try await local { () async throws(WeftError) in try await replica.storage.metadata().resyncFrom }
        // Every local document is judged at the end, those pulled during the resync included: a
        // store restored again while the resync pages (to a backup that still holds the cursor's
        // change) may have lost one of them since.
        var serverVersions = [DocumentKey: VersionVector]()
        var tooFarBehind = false
        let pulled = try await pullPages(resyncingFrom: from) { page, answer in
            for change in page { serverVersions[change.key] = change.record.version }
            if answer?.tooFarBehind == true { tooFarBehind = true }
        }
        let pushedBack = try await local { () async throws(WeftError) in
            try await replica.endResync(serverVersions: serverVersions, tooFarBehind: tooFarBehind)
        }
        resyncs += 1
        logger.warning(
            "resynced with the server: pulled its whole history and queued what it lacked",
            metadata: ["pulled": "\(pulled.changes)", "pushed back": "\(pushedBack)"])
        resolvedSiblings = true  // push what is queued in this round: pushes wait while a resync is under way
        return pulled
    }
}
