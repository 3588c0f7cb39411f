import Foundation
import Logging
import Synchronization
import WeftCRDT
import WeftWire

// Pushing the queue: batches on the wire in order, acknowledgements, dead letters, clock-skew repair.
extension SyncEngine {

    /// Pushes the queue in batches until it is empty; returns the entries confirmed.
    ///
    /// Up to ``maximumPushesInFlight`` batches are on the wire at once, but their answers are
    /// taken in order: a batch is acknowledged only after every earlier batch was. On the first
    /// failure the batches still out are awaited, nothing after the last confirmed batch is
    /// acknowledged, and everything unconfirmed goes back to pending (the server may have applied
    /// some of it; applying it again is a no-op).
    public func pushAll() async throws(SyncError) -> Int {
        try await openSession()
        // One replay at a time: two would acknowledge each other's batches out of order.
        if pushing {
            await withCheckedContinuation { pushWaiters.append($0) }
        } else {
            pushing = true
        }
        defer {
            if pushWaiters.isEmpty { pushing = false } else { pushWaiters.removeFirst().resume() }
        }
        do {
            return try await replay()
        } catch  where error.kind == .tooFarBehind {
            // The server forgot deletions this replica has not pulled: its records may hold
            // documents deleted since. Nothing was applied; resync (the round's pull does), and
            // push what remains queued after it.
            logger.warning(
                "the server forgot deletions this replica has not pulled: resyncing before pushing")
            let replica = replica
            try await local { () async throws(WeftError) in try await replica.beginResync() }
            return 0
        } catch  where error.kind == .forked {
            // The server does not hold this session any more: another copy of this file spoke
            // to it since (then the hello gives the replica a new identity), or the server was
            // restored from a backup older than the session. Say hello again and push once more.
            sessionOpen = false
            try await openSession()
            do {
                return try await replay()
            } catch {
                if error.kind == .forked { sessionOpen = false }
                throw error
            }
        }
    }

    func replay() async throws(SyncError) -> Int {
        let storage = replica.storage
        let transport = transport
        let replicaID = replica.replicaID
        let epoch = replica.sessionEpoch
        var confirmed = 0
        var inFlight:
            [(
                sequences: [UInt64], keys: [UInt64: DocumentKey], bytes: Int, deltaKeys: [DocumentKey],
                answer: Task<PushResponse, any Error>
            )] = []
        var exhausted = false
        var skewRepairTried = false
        let batchBytes = bandwidthLimit.map { min(maximumBatchBytes, $0.burstBytes) } ?? maximumBatchBytes
        // Progress: the queue as it stands now is the replay's total.
        let started = ContinuousClock.now
        var progress = SyncProgress(
            entriesDone: 0, entriesTotal: 0, bytesDone: 0, bytesTotal: 0, elapsed: .zero)
        if !progressObservers.isEmpty {
            progress.entriesTotal = (try? await storage.count()) ?? 0
            progress.bytesTotal = (try? await storage.totalBytes()) ?? 0
            if progress.entriesTotal > 0 { report(progress) }
        }
        func advance(entries: Int, bytes: Int) {
            guard !progressObservers.isEmpty else { return }
            progress.entriesDone += entries
            progress.bytesDone += bytes
            progress.entriesTotal = max(progress.entriesTotal, progress.entriesDone)
            progress.bytesTotal = max(progress.bytesTotal, progress.bytesDone)
            progress.elapsed = ContinuousClock.now - started
            report(progress)
        }

        func settle(_ error: SyncError) async throws(SyncError) -> Never {
            // A cancelled replay (a write-through timeout) stops waiting for the server.
            if Task.isCancelled { for push in inFlight { push.answer.cancel() } }
            await drain(inFlight.map(\.answer))
            inFlight.removeAll()
            try? await storage.releaseInFlight()
            // The failed push may have been applied: check what is known, and forget the head.
            receipts.forget()
            try await checkReceipts()
            throw error
        }

        while true {
            if !exhausted && inFlight.count < maximumPushesInFlight {
                let batch: [QueueEntry]
                // The cursor the batch's records hold every pulled change up to, read before
                // them (during a resync, the one it began from): a server that forgot deletions
                // after it refuses the batch.
                let pulledThrough: UInt64
                do {
                    let metadata = try await storage.metadata()
                    pulledThrough = metadata.resyncPending ? metadata.resyncFrom : metadata.pullCursor
                    batch = try await storage.nextBatch(maxBytes: batchBytes, maxEntries: maximumBatchEntries)
                } catch {
                    try await settle(SyncError(.rejected, "local storage: \(error)"))
                }
                if !batch.isEmpty {
                    // A large document pushed since the last pull (write-through writes in a
                    // row) has a base older than the server's record: with nothing in flight,
                    // pull one page first, which usually brings that change back and refreshes
                    // the base, rather than send a delta the server would refuse. A failed or
                    // partial pull only means the document may go whole.
                    if serverTakesDeltaPushes && inFlight.isEmpty
                        && batch.contains(where: { pushedSincePull.contains($0.key) })
                    {
                        await pullOnePageBeforePushing()
                    }
                    // Each change stands for the document's whole current record (the queue entry
                    // stands for it): the server resolves conflicts between whole versions, and a
                    // fast-forward replaces its record. A large document's goes as a delta over
                    // the record the server last sent for it, if the server takes deltas.
                    let changes: [WireChange]
                    do {
                        changes = try await pushedChanges(batch)
                    } catch {
                        try await settle(SyncError(.rejected, "local storage: \(error)"))
                    }
                    let deltaKeys = zip(batch, changes).filter { $0.1.deltaBase != nil }.map(\.0.key)
                    deltaPushes.sent += deltaKeys.count
                    if serverTakesDeltaPushes {
                        for entry in batch where entry.byteCount >= ServerBase.minimumRecordBytes {
                            pushedSincePull.insert(entry.key)
                        }
                    }
                    var request = PushRequest(
                        replica: replicaID, epoch: epoch, formerIdentities: replica.formerIdentities,
                        changes: changes)
                    // The server must still hold what it confirmed in this session.
                    request.expectedAppliedThrough = confirmedMark
                    request.pulledThrough = pulledThrough
                    request.receipt = PushReceipt.draw()
                    if bandwidthLimit != nil {
                        let size = WireMessage.encode(request).count
                        await throttle(size)
                        progress.wireBytesSent += size
                    }
                    inFlight.append(
                        (
                            batch.map(\.sequence),
                            Dictionary(batch.map { ($0.sequence, $0.key) }, uniquingKeysWith: { a, _ in a }),
                            batch.reduce(0) { $0 + $1.byteCount }, deltaKeys,
                            Task { try await transport.push(request) }
                        ))
                    continue
                }
                exhausted = true
            }
            guard !inFlight.isEmpty else {
                try await checkReceipts()
                return confirmed
            }
            let push = inFlight.removeFirst()
            let response: PushResponse
            do {
                let answer = push.answer
                response = try await withTaskCancellationHandler {
                    try await answer.value
                } onCancel: {
                    answer.cancel()
                }
            } catch let error as SyncError where error.kind == .rejected {
                // Refused for good: find the entries the server refuses on their own and move
                // them to the dead letters, so they never block the rest of the queue.
                await drain(inFlight.map(\.answer))
                inFlight.removeAll()
                exhausted = false
                try? await storage.releaseInFlight()
                let isolated = try await isolateRejected(entries: push.sequences.count, reason: error)
                confirmed += isolated
                if let mark = try? await replica.acknowledgedThrough() {
                    progress.acknowledgedThrough = max(progress.acknowledgedThrough, mark)
                }
                advance(entries: push.sequences.count, bytes: push.bytes)
                continue
            } catch let error as SyncError where error.kind == .deltaBaseUnknown && !push.deltaKeys.isEmpty {
                // The server no longer holds the version a delta is over (another replica's
                // change came in between). Nothing of the batch was applied: forget those bases,
                // so the documents go whole, and send the batch again.
                logger.info(
                    "the server no longer holds a pushed delta's base; pushing those documents whole",
                    metadata: ["documents": "\(push.deltaKeys.count)"])
                await drain(inFlight.map(\.answer))
                inFlight.removeAll()
                exhausted = false
                try? await storage.releaseInFlight()
                deltaPushes.refused += 1
                do {
                    try await storage.forgetServerBases(push.deltaKeys)
                } catch {
                    try await settle(SyncError(.rejected, "local storage: \(error)"))
                }
                continue
            } catch let error as SyncError where error.kind == .clockSkew {
                // The server refused our stamps as too far ahead. If the device's clock is right
                // again, repair the refused writes' stamps and go on; otherwise stay refused.
                if let serverTime = error.serverTimeMilliseconds,
                    let bound = error.maximumClockSkewMilliseconds, !skewRepairTried
                {
                    await drain(inFlight.map(\.answer))
                    inFlight.removeAll()
                    exhausted = false
                    try? await storage.releaseInFlight()
                    skewRepairTried = true
                    let repaired =
                        (try? await replica.repairClockSkew(serverTimeMilliseconds: serverTime, bound: bound))
                        ?? false
                    if repaired {
                        logger.notice(
                            "the clock is right again; writes stamped ahead were repaired",
                            metadata: ["server_time": "\(serverTime)"])
                        continue
                    }
                }
                logger.error(
                    "the server refuses this replica's clock", metadata: ["error": "\(error.message)"])
                try await settle(error)
            } catch let error as SyncError {
                try await settle(error)
            } catch {
                try await settle(SyncError(.unavailable, "\(error)"))
            }
            // Changes the server refused on their own (a document over its size limit): to the
            // dead letters, with the server's reason, before the rest is acknowledged.
            let refused = Set(response.rejected.map(\.sequence)).intersection(push.sequences)
            for rejection in response.rejected where refused.contains(rejection.sequence) {
                logger.warning(
                    "the server refused a change for good; it moves to the dead letters",
                    metadata: ["sequence": "\(rejection.sequence)", "reason": "\(rejection.reason)"])
                do {
                    try await storage.moveToDeadLetter(sequence: rejection.sequence, reason: rejection.reason)
                } catch {
                    try await settle(SyncError(.rejected, "local storage: \(error)"))
                }
                deadLettered += 1
            }
            // A change refused because of who may write its document: the copy here holds a
            // write the server will never take, so it goes (its other unpushed writes to the
            // dead letters too); the server's version comes with the next pull if this replica
            // may read it.
            let withdrawn = Set(
                response.rejected.filter { $0.withdrawn && refused.contains($0.sequence) }.compactMap {
                    rejection in
                    push.keys[rejection.sequence]
                })
            if !withdrawn.isEmpty {
                do {
                    try await replica.forgetDocuments(Array(withdrawn), reason: Replica.refusedForChannels)
                } catch {
                    try await settle(SyncError(.rejected, "local storage: \(error)"))
                }
            }
            if let receipt = response.receipt { receipts.add(receipt) }
            let last = push.sequences[push.sequences.count - 1]
            let through = min(response.appliedThrough, last)
            confirmedMark = max(confirmedMark, response.appliedThrough)
            do {
                try await storage.acknowledge(through: through)
            } catch {
                try await settle(SyncError(.rejected, "local storage: \(error)"))
            }
            // Refused changes are not counted as pushed (they went to the dead letters).
            confirmed += push.sequences.filter { $0 <= through && !refused.contains($0) }.count
            progress.acknowledgedThrough = max(progress.acknowledgedThrough, through)
            advance(
                entries: push.sequences.filter { $0 <= through }.count,
                bytes: through == last ? push.bytes : 0)
            if through < last {
                // The server confirmed less than was sent: send the rest again later.
                await drain(inFlight.map(\.answer))
                try? await storage.releaseInFlight()
                try await checkReceipts()
                return confirmed
            }
        }
    }

    /// Pushes the oldest `entries` entries one at a time after a batch was refused: each one the
    /// server refuses alone goes to the dead letters with the server's reason; the others are
    /// confirmed as usual. Returns the entries confirmed.
    func isolateRejected(entries: Int, reason batchError: SyncError) async throws(SyncError) -> Int {
        let storage = replica.storage
        var confirmed = 0
        for _ in 0..<entries {
            let next: [QueueEntry]
            do {
                next = try await storage.nextBatch(maxBytes: Int.max, maxEntries: 1)
            } catch {
                throw SyncError(.rejected, "local storage: \(error)")
            }
            guard let entry = next.first else { break }
            var request = PushRequest(
                replica: replica.replicaID, epoch: replica.sessionEpoch,
                formerIdentities: replica.formerIdentities,
                changes: [
                    WireChange(
                        sequence: entry.sequence,
                        key: WireKey(collection: entry.key.collection.rawValue, id: entry.key.id.rawValue),
                        record: Self.pushable(entry.record))
                ])
            let response: PushResponse
            do {
                request.expectedAppliedThrough = confirmedMark
                request.receipt = PushReceipt.draw()
                response = try await transport.push(request)
                confirmedMark = max(confirmedMark, response.appliedThrough)
                if let receipt = response.receipt { receipts.add(receipt) }
            } catch  where error.kind == .rejected {
                logger.warning(
                    "the server refused a change for good; it moves to the dead letters",
                    metadata: ["document": "\(entry.key)", "reason": "\(error.message)"])
                // Set aside while it is still in flight (a write to the document meanwhile went
                // to a new entry, which stays queued), then release.
                try await local { () async throws(WeftError) in
                    try await storage.moveToDeadLetter(sequence: entry.sequence, reason: error.message)
                    try await storage.releaseInFlight()
                }
                deadLettered += 1
                continue
            } catch {
                try? await storage.releaseInFlight()
                if !error.leavesServerUnchanged {
                    receipts.forget()
                    try await checkReceipts()
                }
                throw error
            }
            // The server applied it: a local failure here is not the server's refusal.
            do {
                try await storage.acknowledge(through: min(response.appliedThrough, entry.sequence))
            } catch {
                try? await storage.releaseInFlight()
                throw SyncError(.unavailable, "local storage: \(error)")
            }
            confirmed += response.appliedThrough >= entry.sequence ? 1 : 0
            try await checkReceipts()
        }
        return confirmed
    }

    /// Awaits pushes still on the wire whose answers are no longer needed, keeping the links of
    /// those the server applied; one that failed in a way that may have applied it makes the
    /// chain forget its head.
    func drain(_ answers: [Task<PushResponse, any Error>]) async {
        for answer in answers {
            do {
                if let receipt = try await answer.value.receipt { receipts.add(receipt) }
            } catch let error as SyncError where error.leavesServerUnchanged {
                continue
            } catch {
                receipts.forget()
            }
        }
    }

    /// Checks the links of the pushes answered so far (``ReceiptChain``). If they show that
    /// the server forgot a push it had answered (it was restored from a backup between two
    /// pushes on the wire at once), the replica resyncs, which pushes back what the server
    /// lacks; the round's pull does it.
    func checkReceipts() async throws(SyncError) {
        guard !receipts.check() else { return }
        forgottenPushesNoticed += 1
        logger.warning("the server forgot a push it had answered (restored from a backup?): resyncing")
        let replica = replica
        try await local { () async throws(WeftError) in try await replica.beginResync() }
    }

    /// Pulls one page (not while a resync is under way: the next `pullAll` finishes that);
    /// failures are only logged.
    func pullOnePageBeforePushing() async {
        do {
            let replica = replica
            if try await !local({ () async throws(WeftError) in try await replica.isResyncing() }) {
                _ = try await pullPages(maximumPages: 1) { _, _ in }
            }
        } catch {
            logger.debug(
                "a pull before pushing failed; large documents may go whole", metadata: ["error": "\(error)"])
        }
    }

    /// The changes a batch pushes: each entry's record (``pushable(_:)``), or for a large
    /// document, when the server takes deltas, a delta over the document's server base
    /// (``ReplicaStorage``, contract point 8) if that is at most a quarter of the record.
    func pushedChanges(_ batch: [QueueEntry]) async throws(WeftError) -> [WireChange] {
        var changes = batch.map { entry in
            WireChange(
                sequence: entry.sequence,
                key: WireKey(collection: entry.key.collection.rawValue, id: entry.key.id.rawValue),
                record: Self.pushable(entry.record))
        }
        guard serverTakesDeltaPushes else { return changes }
        let large = batch.indices.filter { batch[$0].byteCount >= ServerBase.minimumRecordBytes }
        guard !large.isEmpty else { return changes }
        let storage = replica.storage
        let keys = large.map { batch[$0].key }
        let bases = try await storage.serverBases(for: keys)
        for index in large {
            let entry = batch[index]
            guard let base = bases[entry.key], let delta = changes[index].record.delta(since: base.record),
                delta.encoded().count * 4 <= entry.byteCount
            else { continue }
            changes[index].record = delta
            changes[index].deltaBase = base.digest
        }
        return changes
    }

    /// The record a queue entry pushes. An entry stands for its document's current record, which
    /// holds siblings when this replica, lacking the collection's resolver, pulled them while
    /// its own write was pending (the write is one of them). Servers refuse the reserved field,
    /// so the entry goes out as the siblings' join, as a write on siblings would: its version
    /// covers every sibling, and the server takes it as a fast-forward.
    static func pushable(_ record: DocumentRecord) -> DocumentRecord {
        guard record.holdsSiblings, let joined = try? record.resolvingSiblings(with: nil) else {
            return record
        }
        return joined
    }
}
