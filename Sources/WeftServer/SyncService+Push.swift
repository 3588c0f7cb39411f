import Logging
import Synchronization
import Weft
import WeftCRDT
import WeftWire

// Applying pushes: delta rebuilding, the guards, and the one merge through the store.
extension SyncService {
    /// Applies a push for `database`; answers only after the store committed it.
    ///
    /// A change whose record encodes to more than `maximumDocumentBytes` (by default the
    /// service's ``maximumDocumentBytes``) is refused on its own: it is listed in
    /// `PushResponse.rejected` and the others are applied.
    ///
    /// A change that is a delta (`WireChange.deltaBase`) is first rebuilt into the
    /// replica's whole record by joining it into the stored record, which must have exactly the
    /// digest it names; then everything below treats it as the whole record. If any delta's
    /// base is not the stored record (another change came in between), the push fails with
    /// `SyncError.Kind.deltaBaseUnknown` before anything is applied.
    ///
    /// A pusher limited to `writable` channels may change only documents in a channel it may
    /// write, before and after the change (a deletion needs the first only): any other change
    /// is refused on its own, listed in `PushResponse.rejected` with the reason and withdrawn
    /// (the replica drops its copy), and stores nothing; the store logs its version again,
    /// once, if the pusher may read it, so that the pusher pulls it back. A pusher limited to
    /// `readable` channels that sends a document it may not read without changing it (a resync
    /// pushing back what it holds) is told the same way to drop its copy, and nothing is logged.
    public func push(
        database: String, _ request: PushRequest, maximumDocumentBytes: Int? = nil,
        readable: ChannelGrant = .all,
        writable: ChannelGrant = .all
    ) async throws(SyncError) -> PushResponse {
        guard request.changes.count <= limits.maximumChanges else {
            throw SyncError(
                .rejected,
                "\(request.changes.count) changes in one push, over the limit of \(limits.maximumChanges)")
        }
        try Self.refuseServerWriter(request.replica)
        for (index, change) in request.changes.enumerated() {
            try Self.checkRange(change.sequence, "changes[\(index)].sequence")
        }
        try Self.checkRange(request.expectedAppliedThrough, "expectedAppliedThrough")
        var request = request
        try await rebuildDeltas(database: database, &request)
        // The clock-skew guard: a write stamped further ahead of this server's clock than the
        // bound is refused, whole push and all, so no replica with a fast clock can win every
        // last-writer-wins conflict. Nothing is applied; the replica keeps its queue.
        let now = timeSource.currentMilliseconds()
        // Every stamp counts, nested registers included: a record's last stamp alone could hide
        // a far-future write inside it.
        let (bound, overflow) = now.addingReportingOverflow(maximumClockSkew)
        if let ahead = request.changes.map({ $0.record.greatestStamp.wallMilliseconds }).max(), !overflow,
            ahead > bound
        {
            throw SyncError(
                .clockSkew,
                "replica \(request.replica) writes \(ahead - now) ms ahead of the server's clock (the bound is \(maximumClockSkew) ms); fix the device's clock",
                serverTimeMilliseconds: now, maximumClockSkewMilliseconds: maximumClockSkew)
        }
        // Siblings are made only by servers; a pushed record that holds the reserved field is
        // refused for good (the replica sets it aside) rather than stored.
        if let bad = request.changes.first(where: { $0.record.holdsSiblings }) {
            throw SyncError(
                .rejected,
                "\(bad.key) uses the reserved field \(DocumentRecord.siblingsField.debugDescription)")
        }
        let documentLimit = min(maximumDocumentBytes ?? self.maximumDocumentBytes, self.maximumDocumentBytes)
        var rejections = [PushResponse.Rejection]()
        var changes = [(sequence: UInt64, key: DocumentKey, delta: DocumentRecord)]()
        changes.reserveCapacity(request.changes.count)
        for change in request.changes {
            if documentLimit < .max {
                let size = change.record.encoded().count
                if size > documentLimit {
                    rejections.append(
                        .init(
                            sequence: change.sequence,
                            reason:
                                "document \(change.key.collection)/\(change.key.id) is \(size) bytes, over max_document_bytes = \(documentLimit)"
                        ))
                    continue
                }
            }
            do {
                let key = DocumentKey(
                    collection: try CollectionName(change.key.collection), id: try DocumentID(change.key.id))
                changes.append((change.sequence, key, change.record))
            } catch {
                throw SyncError(.rejected, "invalid key \(change.key): \(error)")
            }
        }
        let declared = policies(database)
        let resolvers = resolvers
        let repaired = Mutex<[DocumentKey]>([])
        let refused = Mutex<Set<DocumentKey>>([])
        let unreadable = Mutex<Set<DocumentKey>>([])
        let limited = Mutex<[DocumentKey]>([])
        do {
            // What a record claims about other replicas that have spoken to this database is
            // limited to what the server holds: no push can make the server take another
            // replica's write as seen before the server has seen it. (Writers that never spoke
            // to the server, such as a replica's unconfirmed session identities, cannot be
            // targeted: nobody else knows them. The pusher's former identities are its own.)
            var others = Set<ReplicaID>()
            for change in changes { others.formUnion(change.delta.claimedReplicas) }
            others.remove(request.replica)
            others.subtract(request.formerIdentities)
            let known = others.isEmpty ? [] : try await store.knownReplicas(database: database, among: others)
            let receipt = request.receipt.flatMap { $0 == 0 ? nil : $0 } ?? PushReceipt.draw()
            let (mark, link) = try await store.applyPush(
                database: database, replica: request.replica, epoch: request.epoch,
                expectedMark: request.expectedAppliedThrough,
                pulledThrough: request.pulledThrough, receipt: receipt, changes: changes, projector: projector
            ) {
                local, key, pushed throws(WeftError) in
                var remote = pushed
                let policy = declared.policy(for: key.collection)
                let narrowed = pushed.limitingClaims(
                    about: known, to: local, includingContext: policy.joinsBodies)
                if let narrowed {
                    remote = narrowed
                    limited.withLock { $0.append(key) }
                }
                let result = try DocumentMerge.merge(
                    local: local, remote: remote, key: key, policy: policy, resolvers: resolvers,
                    equalVersions: .keepLocal,
                    remoteClaimsLimited: narrowed != nil, joiningWhenDominated: true)
                let before =
                    local.map { self.projector.channelSet(database: database, key: key, record: $0.asLive) }
                    ?? []
                if readable != .all, let local, result.record == local, !local.isDeleted,
                    !readable.covers(before)
                {
                    unreadable.withLock { _ = $0.insert(key) }
                    return (local, .unchanged, nil)
                }
                if !self.mayWrite(writable, database: database, key: key, local: local, merged: result.record)
                {
                    // The store logs the document again only once per push, and only for a
                    // pusher that may read it (it pulls it back).
                    let first = refused.withLock { $0.insert(key).inserted }
                    let relog = first && local.map { !$0.isDeleted } == true && readable.covers(before)
                    // A store keeps nothing of a refused change, and logs a live document again;
                    // an unchanged answer keeps the document as it is, logging nothing.
                    guard let local, !relog else { return (local ?? result.record, .refused, nil) }
                    return (local, .unchanged, nil)
                }
                if result.kind == .repaired { repaired.withLock { $0.append(key) } }
                return result
            }
            for key in repaired.withLock({ $0 }) {
                repairedVersions += 1
                logger.warning(
                    "a pushed version had the server's version vector but other contents; kept the server's",
                    metadata: ["database": "\(database)", "key": "\(key)", "replica": "\(request.replica)"])
            }
            for key in Set(limited.withLock({ $0 })) {
                limitedClaims += 1
                logger.warning(
                    "a pushed version claimed writes of other replicas this server has not seen; the claims were limited to what it holds",
                    metadata: ["database": "\(database)", "key": "\(key)", "replica": "\(request.replica)"])
            }
            let outside = refused.withLock { $0 }
            let unseen = unreadable.withLock { $0 }
            for change in changes where unseen.contains(change.key) {
                rejections.append(
                    .init(sequence: change.sequence, reason: Self.notReadable(change.key), withdrawn: true))
            }
            if !outside.isEmpty || !unseen.isEmpty {
                for change in changes where outside.contains(change.key) && !unseen.contains(change.key) {
                    rejections.append(
                        .init(
                            sequence: change.sequence, reason: Self.outsideChannels(change.key),
                            withdrawn: true))
                }
                rejections.sort { $0.sequence < $1.sequence }
                logger.notice(
                    "a push changed documents outside the channels its token may write; those changes were refused",
                    metadata: [
                        "database": "\(database)", "replica": "\(request.replica)",
                        "refused": "\(outside.count)",
                    ])
            }
            wakeWaiters(database)
            return PushResponse(
                appliedThrough: mark, rejected: rejections, receipt: link)
        } catch {
            switch error.kind {
            case .invalidArgument: throw SyncError(.rejected, "store: \(error)")
            case .forked: throw SyncError(.forked, "\(error.message): say hello again")
            // A client that does not say what it pulled cannot resync for it: it is asked to
            // upgrade, and keeps its queue (a transient refusal).
            case .tooFarBehind:
                throw SyncError(request.pulledThrough == nil ? .unavailable : .tooFarBehind, error.message)
            default: throw SyncError(.unavailable, "store: \(error)")
            }
        }
    }

    /// Replaces every delta of `request` by the whole record it stands for: the stored record
    /// joined with the delta, when the stored record's digest is the delta's base. That is the
    /// replica's record exactly, whatever commits before the push's own transaction: the push
    /// then merges it as it would the record sent whole.
    ///
    /// Each delta is rebuilt on its own against the record stored before the push, so a
    /// document named twice is rebuilt twice, each time into that change's exact record. A
    /// hostile push cannot make it work for long: the first unknown base ends the pass, and the
    /// records read to rebuild count against the push's decompressed-size limit, as records
    /// sent whole would. It runs off the service's actor, which other requests keep using
    /// meanwhile.
    /// - Throws: ``Weft/SyncError/Kind/deltaBaseUnknown`` at the first base that is not the
    ///   stored record (or names none); ``Weft/SyncError/Kind/rejected`` if the records read
    ///   pass the size limit.
    /// - Complexity: one store read, digest and join per delta, each O(*n*) in its record.
    nonisolated func rebuildDeltas(database: String, _ request: inout PushRequest) async throws(SyncError) {
        var keys = [DocumentKey?](repeating: nil, count: request.changes.count)
        for index in request.changes.indices where request.changes[index].deltaBase != nil {
            let wire = request.changes[index].key
            do {
                keys[index] = DocumentKey(
                    collection: try CollectionName(wire.collection), id: try DocumentID(wire.id))
            } catch {
                throw SyncError(.rejected, "invalid key \(wire): \(error)")
            }
        }
        var budget = limits.maximumDecompressedBytes
        for index in request.changes.indices {
            guard let base = request.changes[index].deltaBase, let key = keys[index] else { continue }
            let stored: DocumentRecord?
            do {
                stored = try await store.record(database: database, key: key)
            } catch {
                throw SyncError(.unavailable, "store: \(error)")
            }
            let bytes = stored?.encoded() ?? []
            budget -= bytes.count
            guard budget >= 0 else {
                throw SyncError(
                    .rejected,
                    "the records the push's deltas rebuild pass \(limits.maximumDecompressedBytes) bytes: push fewer at a time"
                )
            }
            guard var rebuilt = stored, DocumentRecord.digest(ofEncoding: bytes) == base else {
                throw SyncError(
                    .deltaBaseUnknown,
                    "this server no longer holds the version the delta of \(key) is over: push it whole")
            }
            rebuilt.merge(request.changes[index].record)
            request.changes[index].record = rebuilt
            request.changes[index].deltaBase = nil
        }
    }
}
