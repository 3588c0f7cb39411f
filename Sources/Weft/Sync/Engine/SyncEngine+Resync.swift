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
        var serverVersions = [DocumentKey: VersionVector]()
        let pulled = try await pullPages { page in
            for change in page { serverVersions[change.key] = change.record.version }
        }
        let pushedBack = try await local { () async throws(WeftError) in try await replica.endResync(serverVersions: serverVersions) }
        resyncs += 1
        logger.warning(
            "resynced with the server: pulled its whole history and queued what it lacked",
            metadata: ["pulled": "\(pulled.changes)", "pushed back": "\(pushedBack)"])
        if pushedBack > 0 { resolvedSiblings = true }  // push them in this round
        return pulled
    }
}
