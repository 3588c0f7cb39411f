import Logging
import Synchronization
import Weft
import WeftCRDT
import WeftWire

/// The store-agnostic heart of the Standalone server: applies pushes idempotently with the one
/// merge and serves pull pages, with a long-poll wait.
public actor SyncService {
    /// The central store.
    public nonisolated let store: any CentralStore
    private let policies: @Sendable (String) -> ServerPolicies
    private let resolvers: ResolverRegistry
    /// The server's clock, for the clock-skew guard.
    private let timeSource: any PhysicalTimeSource
    /// How far ahead of ``timeSource`` a pushed write's stamp may be, in milliseconds.
    public nonisolated let maximumClockSkew: UInt64
    private let limits: WireLimits
    /// Pulls waiting for a change, by database: a push wakes them at once.
    private var waiters: [String: [Int: AsyncStream<Void>.Continuation]] = [:]
    private var nextWaiter = 0
    /// How often a waiting pull looks at the store anyway: it also catches changes committed by
    /// another server on the same store, which this one is not told of.
    public let storePollInterval: Duration
    private let logger: Logger
    /// How many pushed versions had the server's version vector but other contents
    /// (``MergeKind/repaired``): the server kept its own.
    public private(set) var repairedVersions = 0
    /// How many pushed records claimed to have seen writes of other replicas that the server
    /// has not seen (a buggy or forged record): the claims were limited to what the server
    /// holds (``WeftCRDT/DocumentRecord/limitingClaims(about:to:includingContext:)``) before merging.
    public private(set) var limitedClaims = 0
    /// How many pulls named a cursor this server's history does not hold (answered "resync").
    public private(set) var resyncsRequested = 0
    /// The largest encoded record a push may carry (`max_document_bytes`); a larger one is
    /// refused on its own, in ``WeftWire/PushResponse/rejected``, and the rest of the push is
    /// applied.
    public nonisolated let maximumDocumentBytes: Int
    /// The longest a pull waits for a change (`max_long_poll_ms`); a longer
    /// ``WeftWire/PullRequest/waitMilliseconds`` is cut to it.
    public nonisolated let maximumLongPoll: Duration
    /// Set by ``beginShutdown()``: waiting pulls are answered at once, and new ones do not wait.
    private var closing = false

    /// Creates a service over `store` whose databases all have `policies`.
    ///
    /// The service is the authority on policies: it merges under them, and declares them to
    /// every replica in the handshake, so replicas merge pulled changes the same way.
    ///
    /// A waiting pull (long-poll) wakes as soon as a push to its database commits through this
    /// service, and looks at the store every `storePollInterval` for changes other servers made.
    public init(
        store: any CentralStore, limits: WireLimits = .default,
        policies: ServerPolicies = ServerPolicies(defaultPolicy: .crdt),
        resolvers: ResolverRegistry = ResolverRegistry(),
        storePollInterval: Duration = .milliseconds(250),
        maximumClockSkew: UInt64 = 60_000,
        timeSource: any PhysicalTimeSource = SystemTimeSource(),
        maximumDocumentBytes: Int = .max,
        maximumLongPoll: Duration = .seconds(30),
        logger: Logger = Logger(label: "weft.sync-service")
    ) {
        self.init(
            store: store, limits: limits, policiesByDatabase: { _ in policies }, resolvers: resolvers, storePollInterval: storePollInterval,
            maximumClockSkew: maximumClockSkew, timeSource: timeSource, maximumDocumentBytes: maximumDocumentBytes,
            maximumLongPoll: maximumLongPoll, logger: logger)
    }

    /// Creates a service over `store`; `policiesByDatabase` gives each database its policies.
    public init(
        store: any CentralStore, limits: WireLimits = .default,
        policiesByDatabase: @escaping @Sendable (String) -> ServerPolicies,
        resolvers: ResolverRegistry = ResolverRegistry(),
        storePollInterval: Duration = .milliseconds(250),
        maximumClockSkew: UInt64 = 60_000,
        timeSource: any PhysicalTimeSource = SystemTimeSource(),
        maximumDocumentBytes: Int = .max,
        maximumLongPoll: Duration = .seconds(30),
        logger: Logger = Logger(label: "weft.sync-service")
    ) {
        self.maximumDocumentBytes = maximumDocumentBytes
        self.maximumLongPoll = maximumLongPoll
        self.logger = logger
        self.resolvers = resolvers
        self.maximumClockSkew = maximumClockSkew
        self.timeSource = timeSource
        self.storePollInterval = storePollInterval
        self.store = store
        self.limits = limits
        self.policies = policiesByDatabase
    }

    /// Creates a service over `store` with every setting of a `[server]` section that concerns
    /// it (the limits, `max_clock_skew_ms`), and `policies`. `weft serve` uses it, so every
    /// documented server key takes effect.
    public init(
        store: any CentralStore, configuration: ServerConfiguration, policies: ServerPolicies = ServerPolicies(defaultPolicy: .crdt),
        resolvers: ResolverRegistry = ResolverRegistry(), logger: Logger = Logger(label: "weft.sync-service")
    ) {
        let limits = configuration.limits
        self.init(
            store: store,
            limits: limits.wireLimits,
            policies: policies, resolvers: resolvers, maximumClockSkew: UInt64(max(0, limits.maxClockSkewMilliseconds)),
            maximumDocumentBytes: limits.maxDocumentBytes, maximumLongPoll: .milliseconds(max(0, limits.maxLongPollMilliseconds)),
            logger: logger)
    }

    /// Opens a session for a replica (see ``WeftWire/HelloRequest``) and declares the
    /// database's policies.
    public func hello(database: String, _ request: HelloRequest) async throws(SyncError) -> HelloResponse {
        try Self.checkRange(request.acknowledgedThrough, "acknowledgedThrough")
        let outcome: (accepted: Bool, appliedThrough: UInt64)
        do {
            outcome = try await store.hello(
                database: database, replica: request.replica, confirmedEpoch: request.confirmedEpoch, epoch: request.epoch,
                acknowledgedThrough: request.acknowledgedThrough)
        } catch {
            throw SyncError(.unavailable, "store: \(error)")
        }
        if !outcome.accepted {
            logger.warning(
                "a replica's file is not the latest copy of its history; it must take a new identity",
                metadata: ["database": "\(database)", "replica": "\(request.replica)"])
        }
        let declared = policies(database).wire
        return HelloResponse(
            status: outcome.accepted ? .accepted : .forked, appliedThrough: outcome.appliedThrough,
            defaultPolicy: declared.defaultPolicy, collections: declared.collections, acceptsDeltaPushes: request.offersDeltaPushes,
            collectsTombstones: request.handlesCollection)
    }

    /// Applies a push for `database`; answers only after the store committed it.
    ///
    /// A change whose record encodes to more than `maximumDocumentBytes` (by default the
    /// service's ``maximumDocumentBytes``) is refused on its own: it is listed in
    /// ``WeftWire/PushResponse/rejected`` and the others are applied.
    ///
    /// A change that is a delta (``WeftWire/WireChange/deltaBase``) is first rebuilt into the
    /// replica's whole record by joining it into the stored record, which must have exactly the
    /// digest it names; then everything below treats it as the whole record. If any delta's
    /// base is not the stored record (another change came in between), the push fails with
    /// ``Weft/SyncError/Kind/deltaBaseUnknown`` before anything is applied.
    public func push(database: String, _ request: PushRequest, maximumDocumentBytes: Int? = nil) async throws(SyncError) -> PushResponse {
        guard request.changes.count <= limits.maximumChanges else {
            throw SyncError(.rejected, "\(request.changes.count) changes in one push, over the limit of \(limits.maximumChanges)")
        }
        for (index, change) in request.changes.enumerated() { try Self.checkRange(change.sequence, "changes[\(index)].sequence") }
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
        if let ahead = request.changes.map({ $0.record.greatestStamp.wallMilliseconds }).max(), !overflow, ahead > bound {
            throw SyncError(
                .clockSkew,
                "replica \(request.replica) writes \(ahead - now) ms ahead of the server's clock (the bound is \(maximumClockSkew) ms); fix the device's clock",
                serverTimeMilliseconds: now, maximumClockSkewMilliseconds: maximumClockSkew)
        }
        // Siblings are made only by servers; a pushed record that holds the reserved field is
        // refused for good (the replica sets it aside) rather than stored.
        if let bad = request.changes.first(where: { $0.record.holdsSiblings }) {
            throw SyncError(.rejected, "\(bad.key) uses the reserved field \(DocumentRecord.siblingsField.debugDescription)")
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
                            reason: "document \(change.key.collection)/\(change.key.id) is \(size) bytes, over max_document_bytes = \(documentLimit)"))
                    continue
                }
            }
            do {
                let key = DocumentKey(collection: try CollectionName(change.key.collection), id: try DocumentID(change.key.id))
                changes.append((change.sequence, key, change.record))
            } catch {
                throw SyncError(.rejected, "invalid key \(change.key): \(error)")
            }
        }
        let declared = policies(database)
        let resolvers = resolvers
        let repaired = Mutex<[DocumentKey]>([])
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
            let mark = try await store.applyPush(
                database: database, replica: request.replica, epoch: request.epoch, expectedMark: request.expectedAppliedThrough,
                pulledThrough: request.pulledThrough, changes: changes
            ) {
                local, key, pushed throws(WeftError) in
                var remote = pushed
                let policy = declared.policy(for: key.collection)
                let narrowed = pushed.limitingClaims(about: known, to: local, includingContext: policy.joinsBodies)
                if let narrowed {
                    remote = narrowed
                    limited.withLock { $0.append(key) }
                }
                let result = try DocumentMerge.merge(
                    local: local, remote: remote, key: key, policy: policy, resolvers: resolvers, equalVersions: .keepLocal,
                    remoteClaimsLimited: narrowed != nil, joiningWhenDominated: true)
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
            wakeWaiters(database)
            return PushResponse(appliedThrough: mark, rejected: rejections)
        } catch {
            switch error.kind {
            case .invalidArgument: throw SyncError(.rejected, "store: \(error)")
            case .forked: throw SyncError(.forked, "\(error.message): say hello again")
            // A client that does not say what it pulled cannot resync for it: it is asked to
            // upgrade, and keeps its queue (a transient refusal).
            case .tooFarBehind: throw SyncError(request.pulledThrough == nil ? .unavailable : .tooFarBehind, error.message)
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
                keys[index] = DocumentKey(collection: try CollectionName(wire.collection), id: try DocumentID(wire.id))
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
                    .rejected, "the records the push's deltas rebuild pass \(limits.maximumDecompressedBytes) bytes: push fewer at a time")
            }
            guard var rebuilt = stored, DocumentRecord.digest(ofEncoding: bytes) == base else {
                throw SyncError(
                    .deltaBaseUnknown, "this server no longer holds the version the delta of \(key) is over: push it whole")
            }
            rebuilt.merge(request.changes[index].record)
            request.changes[index].record = rebuilt
            request.changes[index].deltaBase = nil
        }
    }

    /// Serves the page after `request.after`, waiting up to `request.waitMilliseconds` (at most
    /// ``maximumLongPoll``) for a change if there is none yet. A waiting pull ends with an empty
    /// page when its task is cancelled (its client went away) or the service shuts down
    /// (``beginShutdown()``).
    public func pull(database: String, _ request: PullRequest) async throws(SyncError) -> PullResponse {
        try Self.checkRange(request.after, "after")
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
        if request.resyncingFrom == nil, request.after < collectedThrough {
            guard request.handlesCollection else {
                throw SyncError(
                    .unavailable,
                    "this server forgot deleted documents after \(request.after) (tombstone_retention_ms); this client cannot resync for it: upgrade Weft")
            }
            throw SyncError(
                .tooFarBehind,
                "this replica's cursor \(request.after) is behind the deletions the server forgot (through \(collectedThrough), tombstone_retention_ms): resync")
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
                    served = try await store.servedCursor(database: database, sequence: request.after, tag: request.afterTag)
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
                    "the cursor \(request.after) names a change this server's history does not have (it was restored from a backup, or that part of its log is gone): pull everything again and push back what the server lacks")
            }
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: min(.milliseconds(Int64(request.waitMilliseconds)), maximumLongPoll))
        while true {
            let page: (changes: [LoggedChange], hasMore: Bool)
            do {
                page = try await store.changes(
                    database: database, after: request.after, limit: Int(min(request.maximumChanges, UInt32(limits.maximumChanges))),
                    maxBytes: Int(request.maximumBytes))
            } catch {
                throw SyncError(.unavailable, "store: \(error)")
            }
            if !page.changes.isEmpty || clock.now >= deadline || closing || Task.isCancelled {
                if let last = page.changes.last {
                    do {
                        try await store.rememberPull(
                            database: database, replica: request.replica ?? RememberedCursors.unnamedReader, after: request.after,
                            afterTag: request.afterTag, served: last.sequence, servedTag: last.tag, pulledAt: timeSource.currentMilliseconds())
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
                // A resync's page says what the replica needs to know of forgotten tombstones.
                var resync: PullResponse.ResyncAnswer?
                if let from = request.resyncingFrom {
                    resync = PullResponse.ResyncAnswer(
                        tooFarBehind: from < collectedThrough, createdAgain: page.changes.indices.filter { page.changes[$0].bornAfter > from })
                }
                return PullResponse(
                    changes: page.changes.map { change in
                        let key = WireKey(collection: change.key.collection.rawValue, id: change.key.id.rawValue)
                        if request.acceptsDeltas, request.resyncingFrom == nil, request.replica != nil, let delta = change.delta,
                            delta.baseSequence <= request.after,
                            declared.policy(for: change.key.collection).joinsBodies
                        {
                            return WireChange(sequence: change.sequence, key: key, record: delta.record, deltaBase: delta.baseDigest)
                        }
                        return WireChange(sequence: change.sequence, key: key, record: change.record)
                    },
                    cursor: page.changes.last?.sequence ?? request.after, cursorTag: page.changes.last?.tag ?? request.afterTag,
                    hasMore: page.hasMore, resync: resync)
            }
            // Long-poll: wait for a push to this database (or the store poll, or the deadline).
            await waitForPush(database, upTo: min(deadline - clock.now, storePollInterval))
            if Task.isCancelled { return PullResponse(changes: [], cursor: request.after, cursorTag: request.afterTag, hasMore: false) }
        }
    }

    /// Runs one pass of background compaction over the store's log, in steps of at most `step`
    /// entries (each a short transaction of its own, so pushes and pulls go on between them),
    /// and answers how many entries it removed. Stores compact what they log as they log it; a
    /// pass removes what an older build left (see ``CentralStore/compactLog(limit:)``).
    public func compactLog(step: Int = 1_000) async throws(SyncError) -> Int {
        var removed = 0
        while !Task.isCancelled {
            let result: (removed: Int, passFinished: Bool)
            do {
                result = try await store.compactLog(limit: step)
            } catch {
                throw SyncError(.unavailable, "store: \(error)")
            }
            removed += result.removed
            if result.passFinished { break }
            // A step that removed nothing (or was skipped while a sequencer held the lock)
            // leaves the store alone for a moment.
            if result.removed == 0 { try? await Task.sleep(for: .milliseconds(10)) }
        }
        return removed
    }

    /// Runs one pass of tombstone collection (``TombstoneCollectingStore``), in steps of at most
    /// `step` documents: forgets the tombstones every replica that pulled within `retention`
    /// milliseconds has pulled past. Answers how many it forgot.
    public func collectTombstones(retention: UInt64, step: Int = 1_000) async throws(SyncError) -> Int {
        let now = timeSource.currentMilliseconds()
        let since = now > retention ? now - retention : 0
        var removed = 0
        while !Task.isCancelled {
            let result: (removed: Int, passFinished: Bool)
            do {
                result = try await store.collectTombstones(pulledSince: since, limit: step)
            } catch {
                throw SyncError(.unavailable, "store: \(error)")
            }
            removed += result.removed
            if result.passFinished { break }
        }
        return removed
    }

    /// The largest sequence (and mark) a store can hold: both stores keep them as signed 64-bit
    /// integers.
    public static let maximumSequence = UInt64(Int64.max)

    /// Refuses a client-supplied sequence the stores cannot represent, naming the field.
    static func checkRange(_ value: UInt64, _ field: String) throws(SyncError) {
        guard value <= maximumSequence else {
            throw SyncError(.rejected, "\(field) = \(value) is out of range (at most \(maximumSequence))")
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

    private func wakeWaiters(_ database: String) {
        guard let waiting = waiters.removeValue(forKey: database) else { return }
        for continuation in waiting.values { continuation.yield() }
    }

    /// Suspends until a push to `database` commits, `timeout` passes or the task is cancelled.
    private func waitForPush(_ database: String, upTo timeout: Duration) async {
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
