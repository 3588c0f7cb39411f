import Logging
import Synchronization
import WeftCRDT
import WeftWire

// Applying what a pull brought.
extension Replica {
    // MARK: Remote changes

    /// Applies changes pulled from the server: each is merged into the local record by
    /// ``DocumentMerge`` under its collection's policy, conflicts go to the conflict log, and the
    /// pull cursor moves to `cursor`, all in one transaction. Siblings this replica resolves
    /// (``MergeKind/resolved``) are queued, to be pushed like a local write. Observers see each change that did
    /// something, with origin ``ReplicaChange/Origin/remote``.
    ///
    /// Each record is the server's whole record (a delta from the wire is rebuilt first, see
    /// ``SyncEngine``). A large one is kept as the document's server base
    /// (``ReplicaStorage``, contract point 8).
    ///
    /// Applying the same page twice changes nothing the second time.
    @discardableResult
    public func applyRemote(
        _ changes: [(key: DocumentKey, record: DocumentRecord)], through cursor: UInt64, tag: UInt64 = 0
    )
        async throws(WeftError) -> [AppliedRemoteChange]
    {
        let resolvers = resolvers
        let replicaID = writerID
        // The server's log holds its record after each change, each covering the one before, so
        // only a key's last change in the page matters (an earlier one may be stale siblings).
        var lastIndex = [DocumentKey: Int](minimumCapacity: changes.count)
        for (index, change) in changes.enumerated() { lastIndex[change.key] = index }
        let changes = lastIndex.count == changes.count ? changes : changes.indices.filter { lastIndex[changes[$0].key] == $0 }.map { changes[$0] }
        let applied = try await exclusively { () async throws(WeftError) -> [AppliedRemoteChange] in
            // Resolving siblings is a write: it counts on from the collection's floor.
            var floors = [CollectionName: UInt64]()
            for change in changes where floors[change.key.collection] == nil {
                floors[change.key.collection] = counterFloor(for: change.key.collection)
            }
            let collectionFloors = floors
            return try await storage.applyRemoteChanges(changes, through: cursor, tag: tag) { local, key, remote throws(WeftError) in
                var result = try DocumentMerge.merge(
                    local: local, remote: remote, key: key, policy: self.policy(for: key.collection), resolvers: resolvers,
                    equalVersions: .takeRemote)
                if result.kind == .resolved {
                    // Resolving siblings is this replica's write: count it, so the result
                    // strictly follows every sibling and the server takes it as a fast-forward.
                    var resolved = result.record
                    resolved.reserveCounters(of: replicaID, through: collectionFloors[key.collection] ?? 0)
                    var version = resolved.version
                    version.increment(replicaID)
                    result.record = DocumentRecord(body: resolved.body, deletion: resolved.deletion, version: version)
                    result.conflict?.winner = result.record
                }
                return result
            }
        }
        for change in applied where change.record.holdsSiblings {
            logger.warning(
                "siblings wait for a resolver this replica does not have; reads show their join",
                metadata: ["key": "\(change.key)", "policy": "\(policy(for: change.key.collection))"])
        }
        for change in applied where change.kind == .repaired {
            logger.warning(
                "a pulled version had this replica's version vector but other contents; took the server's",
                metadata: ["key": "\(change.key)"])
        }
        for change in applied where change.kind != .unchanged {
            // Later local stamps must follow the stamps this replica has now seen.
            _ = try? clock.receive(max(change.record.lastStamp, change.record.body.greatestStamp ?? change.record.lastStamp))
            publish(ReplicaChange(key: change.key, origin: .remote, isDeleted: change.record.isDeleted, stamp: change.record.lastStamp))
        }
        return applied
    }

    /// The most recent conflicts this replica resolved, newest first.
    public func conflicts(limit: Int = 100) async throws(WeftError) -> [ConflictRecord] {
        try await storage.conflicts(limit: limit)
    }
}
