import Foundation
import Logging
import Synchronization
import WeftCRDT
import WeftWire

/// What one sync round did.
public struct SyncReport: Hashable, Sendable {
    /// Queue entries the server confirmed.
    public var pushed = 0
    /// Pulled changes applied.
    public var pulled = 0
    /// Pulled changes that conflicted with local versions.
    public var conflicts = 0
    /// The pull cursor after the round.
    public var cursor: UInt64 = 0
}

/// Pushes a replica's queue to the server and pulls the server's changes back.
///
/// One round (``syncOnce()``):
/// 1. **Push**: hand out the oldest queue entries as a batch (marking them in flight), push the
///    documents' current records for them,
///    and only when the server confirms, drop the entries it applied — the push cursor. On any
///    failure the batch goes back to pending and is sent again next round: the server skips what
///    it already applied, so nothing is lost and nothing doubles.
/// 2. **Pull**: ask for the changes after the pull cursor, page by page, and apply each page with
///    its cursor in one transaction (``Replica/applyRemote(_:through:)``).
///
/// A crash anywhere resumes from the last confirmed position: unconfirmed entries are still
/// queued, and the pull cursor never passes a change that was not applied.
public actor SyncEngine {
    /// The replica being synced.
    public nonisolated let replica: Replica
    private let transport: any SyncTransport
    private let logger: Logger
    /// The most entries in one push.
    public var maximumBatchEntries = 500
    /// The most bytes in one push (a single larger entry still goes alone).
    public var maximumBatchBytes = 1 << 20
    /// The most changes asked for in one pull page.
    public var maximumPageChanges: UInt32 = 1_000
    /// Whether the last pull resolved siblings, whose results wait to be pushed.
    private var resolvedSiblings = false
    /// The bandwidth limit on bytes sent and received, if any.
    public private(set) var bandwidthLimit: BandwidthLimit?
    private var bucket: TokenBucket?
    private let throttleClock = ContinuousClock()
    private let throttleEpoch = ContinuousClock.now
    private var progressObservers: [Int: AsyncStream<SyncProgress>.Continuation] = [:]
    private var nextProgressObserver = 0

    /// Creates an engine.
    public init(replica: Replica, transport: any SyncTransport, logger: Logger = Logger(label: "weft.sync")) {
        self.replica = replica
        self.transport = transport
        self.logger = logger
    }

    /// Sets the most entries and bytes in one push.
    public func setBatchLimits(entries: Int, bytes: Int) {
        maximumBatchEntries = max(1, entries)
        maximumBatchBytes = max(1, bytes)
    }

    /// Limits the bytes sent and received (framed, as on the wire) with a token bucket; `nil` or a
    /// rate of 0 removes the limit. Under a limit, push batches and pull pages shrink to fit the
    /// burst.
    public func setBandwidthLimit(_ limit: BandwidthLimit?) {
        guard let limit, !limit.isUnlimited else {
            bandwidthLimit = nil
            bucket = nil
            return
        }
        bandwidthLimit = limit
        bucket = TokenBucket(limit: limit, now: throttleClock.now - throttleEpoch)
    }

    /// Waits until the bucket lets `bytes` through (at once without a limit).
    private func throttle(_ bytes: Int) async {
        guard var current = bucket else { return }
        let wait = current.take(bytes, at: throttleClock.now - throttleEpoch)
        bucket = current
        if wait > .zero { try? await Task.sleep(for: wait) }
    }

    /// A stream of progress events for every replay (``pushAll()``) from now on: one when it
    /// starts and one after each confirmed batch.
    public func progress() -> AsyncStream<SyncProgress> {
        let (stream, continuation) = AsyncStream<SyncProgress>.makeStream(bufferingPolicy: .bufferingNewest(256))
        let id = nextProgressObserver
        nextProgressObserver += 1
        progressObservers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            Task { await self.removeProgressObserver(id) }
        }
        return stream
    }

    private func removeProgressObserver(_ id: Int) { progressObservers[id] = nil }

    private func report(_ progress: SyncProgress) {
        for observer in progressObservers.values { observer.yield(progress) }
    }

    /// Sets how many changes one pull page asks for.
    public func setPageSize(_ changes: UInt32) { maximumPageChanges = max(1, changes) }

    /// Pushes everything queued, then pulls until the server has nothing more.
    @discardableResult
    public func syncOnce() async throws(SyncError) -> SyncReport {
        enter(.syncing)
        do {
            let report = try await syncRound()
            enter(.online)
            return report
        } catch {
            enter(.offline)
            throw error
        }
    }

    // MARK: The session

    /// The policies the server declared at the last handshake (`nil` before one).
    public private(set) var declaredPolicies: ServerPolicies?
    /// The custom resolvers the server's policies name that this replica does not have: the
    /// siblings of those collections stay readable (as their join) and writable here.
    public private(set) var missingResolvers: [String] = []
    /// Whether the server accepted this session's handshake.
    private var sessionOpen = false

    /// Opens the session with the server if it is not open (``SyncTransport/hello(_:)``): learns
    /// the database's policies, and on a fork gives the replica a new identity first.
    public func openSession() async throws(SyncError) {
        guard !sessionOpen else { return }
        let replica = replica
        for _ in 0..<2 {
            let request = try await local { () async throws(WeftError) in try await replica.helloRequest() }
            let response = try await transport.hello(request)
            switch response.status {
            case .accepted:
                let policies: ServerPolicies
                do {
                    policies = try ServerPolicies(wire: response)
                } catch {
                    throw SyncError(.badResponse, "hello: \(error)")
                }
                try await local { () async throws(WeftError) in try await replica.confirmSession(policies) }
                declaredPolicies = policies
                missingResolvers = policies.resolverNames.filter { replica.resolvers[$0] == nil }
                sessionOpen = true
                return
            case .forked:
                try await local { () async throws(WeftError) in try await replica.takeNewIdentity() }
            }
        }
        throw SyncError(.badResponse, "hello: the server called a new identity forked")
    }

    /// Whether siblings held since before their resolver was registered were looked for.
    private var heldSiblingsChecked = false

    private func syncRound() async throws(SyncError) -> SyncReport {
        var report = SyncReport()
        try await openSession()
        if !heldSiblingsChecked {
            let replica = replica
            _ = try await local { () async throws(WeftError) in try await replica.resolveHeldSiblings() }
            heldSiblingsChecked = true
        }
        report.pushed = try await pushAll()
        let (pulled, conflicts, cursor) = try await pullAll()
        report.pulled = pulled
        report.conflicts = conflicts
        report.cursor = cursor
        if resolvedSiblings {
            // Siblings resolved here go back to the server in the same round.
            resolvedSiblings = false
            report.pushed += try await pushAll()
        }
        return report
    }

    private func local<T>(_ body: () async throws(WeftError) -> T) async throws(SyncError) -> T {
        do {
            return try await body()
        } catch {
            throw SyncError(.rejected, "local storage: \(error)")
        }
    }

    /// How many pushes may be on the wire at once. Two overlap the reading and encoding of the
    /// next batch, and the server's work on it, with the previous push's round trip.
    public var maximumPushesInFlight = 2

    /// Sets how many pushes may be on the wire at once (1 sends one batch at a time).
    public func setPushesInFlight(_ count: Int) { maximumPushesInFlight = max(1, count) }

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
        } catch {
            // Another copy of this file spoke to the server since this session opened: say
            // hello again (and take a new identity) before the next push.
            if error.kind == .forked { sessionOpen = false }
            throw error
        }
    }

    private var pushing = false
    private var pushWaiters: [CheckedContinuation<Void, Never>] = []

    private func replay() async throws(SyncError) -> Int {
        let storage = replica.storage
        let transport = transport
        let replicaID = replica.replicaID
        let epoch = replica.sessionEpoch
        var confirmed = 0
        var inFlight: [(sequences: [UInt64], bytes: Int, answer: Task<PushResponse, any Error>)] = []
        var exhausted = false
        var skewRepairTried = false
        let batchBytes = bandwidthLimit.map { min(maximumBatchBytes, $0.burstBytes) } ?? maximumBatchBytes

        // Progress: the queue as it stands now is the replay's total.
        let started = ContinuousClock.now
        var progress = SyncProgress(entriesDone: 0, entriesTotal: 0, bytesDone: 0, bytesTotal: 0, elapsed: .zero)
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
            for push in inFlight { _ = try? await push.answer.value }
            inFlight.removeAll()
            try? await storage.releaseInFlight()
            throw error
        }

        while true {
            if !exhausted && inFlight.count < maximumPushesInFlight {
                let batch: [QueueEntry]
                do {
                    batch = try await storage.nextBatch(maxBytes: batchBytes, maxEntries: maximumBatchEntries)
                } catch {
                    try await settle(SyncError(.rejected, "local storage: \(error)"))
                }
                if !batch.isEmpty {
                    // Each change carries the document's whole current record (the queue entry
                    // stands for it): the server resolves conflicts between whole versions, and a
                    // fast-forward replaces its record.
                    let request = PushRequest(
                        replica: replicaID, epoch: epoch,
                        changes: batch.map { entry in
                            WireChange(
                                sequence: entry.sequence,
                                key: WireKey(collection: entry.key.collection.rawValue, id: entry.key.id.rawValue),
                                record: entry.record)
                        })
                    if bandwidthLimit != nil {
                        let size = WireMessage.encode(request).count
                        await throttle(size)
                        progress.wireBytesSent += size
                    }
                    inFlight.append((batch.map(\.sequence), batch.reduce(0) { $0 + $1.byteCount }, Task { try await transport.push(request) }))
                    continue
                }
                exhausted = true
            }
            guard !inFlight.isEmpty else { return confirmed }
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
                for other in inFlight { _ = try? await other.answer.value }
                inFlight.removeAll()
                exhausted = false
                try? await storage.releaseInFlight()
                let isolated = try await isolateRejected(entries: push.sequences.count, reason: error)
                confirmed += isolated
                advance(entries: push.sequences.count, bytes: push.bytes)
                continue
            } catch let error as SyncError where error.kind == .clockSkew {
                // The server refused our stamps as too far ahead. If the device's clock is right
                // again, repair the refused writes' stamps and go on; otherwise stay refused.
                if let serverTime = error.serverTimeMilliseconds, let bound = error.maximumClockSkewMilliseconds, !skewRepairTried {
                    for other in inFlight { _ = try? await other.answer.value }
                    inFlight.removeAll()
                    exhausted = false
                    try? await storage.releaseInFlight()
                    skewRepairTried = true
                    let repaired = (try? await replica.repairClockSkew(serverTimeMilliseconds: serverTime, bound: bound)) ?? false
                    if repaired {
                        logger.notice("the clock is right again; writes stamped ahead were repaired", metadata: ["server_time": "\(serverTime)"])
                        continue
                    }
                }
                logger.error("the server refuses this replica's clock", metadata: ["error": "\(error.message)"])
                try await settle(error)
            } catch let error as SyncError {
                try await settle(error)
            } catch {
                try await settle(SyncError(.unavailable, "\(error)"))
            }
            let last = push.sequences[push.sequences.count - 1]
            let through = min(response.appliedThrough, last)
            do {
                try await storage.acknowledge(through: through)
            } catch {
                try await settle(SyncError(.rejected, "local storage: \(error)"))
            }
            confirmed += push.sequences.filter { $0 <= through }.count
            advance(entries: push.sequences.filter { $0 <= through }.count, bytes: through == last ? push.bytes : 0)
            if through < last {
                // The server confirmed less than was sent: send the rest again later.
                for other in inFlight { _ = try? await other.answer.value }
                try? await storage.releaseInFlight()
                return confirmed
            }
        }
    }

    /// How many entries were moved to the dead letters since the engine started.
    public private(set) var deadLettered = 0

    /// Pushes the oldest `entries` entries one at a time after a batch was refused: each one the
    /// server refuses alone goes to the dead letters with the server's reason; the others are
    /// confirmed as usual. Returns the entries confirmed.
    private func isolateRejected(entries: Int, reason batchError: SyncError) async throws(SyncError) -> Int {
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
            let request = PushRequest(
                replica: replica.replicaID, epoch: replica.sessionEpoch,
                changes: [
                    WireChange(
                        sequence: entry.sequence, key: WireKey(collection: entry.key.collection.rawValue, id: entry.key.id.rawValue),
                        record: entry.record)
                ])
            let response: PushResponse
            do {
                response = try await transport.push(request)
            } catch where error.kind == .rejected {
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
        }
        return confirmed
    }

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

    // MARK: Connection state and the write-behind loop

    /// Where the engine stands with the server, for the app to show.
    public private(set) var connectionState: ConnectionState = .offline
    private var stateObservers: [Int: AsyncStream<ConnectionState>.Continuation] = [:]
    private var nextStateObserver = 0

    /// A stream of connection states: the current one first, then each change.
    public func connectionStates() -> AsyncStream<ConnectionState> {
        let (stream, continuation) = AsyncStream<ConnectionState>.makeStream(bufferingPolicy: .bufferingNewest(64))
        let id = nextStateObserver
        nextStateObserver += 1
        stateObservers[id] = continuation
        continuation.yield(connectionState)
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            Task { await self.removeStateObserver(id) }
        }
        return stream
    }

    private func removeStateObserver(_ id: Int) { stateObservers[id] = nil }

    private func enter(_ state: ConnectionState) {
        guard state != connectionState else { return }
        connectionState = state
        for observer in stateObservers.values { observer.yield(state) }
    }

    /// Write-behind: syncs now and then every `interval` (`sync_interval_ms`) until the task is
    /// cancelled.
    ///
    /// The connection state goes ``ConnectionState/syncing`` during a round,
    /// ``ConnectionState/online`` after one that succeeded, and ``ConnectionState/offline``
    /// after one that failed. After a failure the next round comes after `backoff`'s delay
    /// (exponential, jittered, capped) instead of the interval; the first success resets it and
    /// replays the queue in sequence order. Nothing queued is lost on a failed round.
    ///
    /// - Parameters:
    ///   - clock: the clock that paces the rounds; inject a test clock to drive it.
    ///   - onRound: called after each round with its report, or the error that ended it.
    public func runWriteBehind<C: Clock>(
        every interval: Duration, backoff: Backoff = Backoff(), clock: C,
        onRound: @Sendable (Result<SyncReport, SyncError>) async -> Void = { _ in }
    ) async where C.Duration == Duration {
        var failures = 0
        while !Task.isCancelled {
            let pause: Duration
            do {
                let report = try await syncOnce()
                failures = 0
                await onRound(.success(report))
                pause = interval
            } catch {
                failures += 1
                pause = backoff.delay(afterFailures: failures, random: Double.random(in: 0..<1))
                logger.info(
                    "sync round failed; retrying", metadata: ["error": "\(error)", "failures": "\(failures)", "retry_in": "\(pause)"])
                await onRound(.failure(error))
            }
            do {
                try await clock.sleep(for: pause)
            } catch {
                return  // cancelled
            }
        }
    }

    /// Write-behind on the continuous clock, every `milliseconds` (`sync_interval_ms`).
    public func runWriteBehind(everyMilliseconds milliseconds: Int, backoff: Backoff = Backoff()) async {
        await runWriteBehind(every: .milliseconds(max(1, milliseconds)), backoff: backoff, clock: ContinuousClock())
    }
}

/// How a sync engine stands with the server.
public enum ConnectionState: String, Hashable, Sendable {
    /// The last round failed (or none ran yet); the engine retries with backoff.
    case offline
    /// A round is in progress.
    case syncing
    /// The last round succeeded.
    case online
}

/// Exponential backoff with jitter and a cap, for retrying a server that cannot be reached.
///
/// After `n` failures in a row the delay is `initial × multiplierⁿ⁻¹`, capped at `maximum`,
/// then reduced by a random part of up to `jitter` of it: `delay × (1 − jitter × u)` for `u` in
/// `0..<1`. The jitter spreads the retries of many replicas that lost the same server at once.
public struct Backoff: Hashable, Sendable {
    /// The delay after the first failure.
    public var initial: Duration
    /// The growth per failure.
    public var multiplier: Double
    /// The cap.
    public var maximum: Duration
    /// The largest fraction of a delay taken off at random, from 0 (none) to 1.
    public var jitter: Double

    /// Creates a backoff; the defaults go 0.5 s, 1 s, 2 s … up to 60 s, with half jitter.
    public init(initial: Duration = .milliseconds(500), multiplier: Double = 2, maximum: Duration = .seconds(60), jitter: Double = 0.5) {
        self.initial = initial
        self.multiplier = max(1, multiplier)
        self.maximum = max(initial, maximum)
        self.jitter = min(1, max(0, jitter))
    }

    /// The delay after `failures` failures in a row, for a random `random` in `0..<1`.
    public func delay(afterFailures failures: Int, random: Double) -> Duration {
        let cap = maximum.inSeconds
        let base = min(cap, initial.inSeconds * pow(multiplier, Double(max(0, failures - 1))))
        let jittered = base * (1 - jitter * min(max(random, 0), 1))
        return .nanoseconds(Int64(min(cap, max(0, jittered)) * 1e9))
    }
}

// MARK: - Write-through

/// What a write through ``SyncedCollection`` did: the record stored locally and whether the
/// server confirmed it.
public struct WriteReceipt: Hashable, Sendable {
    /// The document written.
    public let key: DocumentKey
    /// The record stored locally by the write.
    public let record: DocumentRecord
    /// The sequence number of the write's queue entry.
    public let sequence: UInt64
    /// Whether the server durably applied the write before the call returned. Always `false`
    /// for a write-behind collection; `false` for a write-through one whose server could not
    /// be reached in time under the `queue` fallback (the write stays queued).
    public let confirmed: Bool
    /// Why the write is not confirmed, when it is not.
    public let pendingReason: String?
}

extension SyncEngine {
    /// A collection whose writes follow the configured sync mode (``ReplicaConfiguration/mode(for:)``).
    public nonisolated func collection(_ name: String) throws(WeftError) -> SyncedCollection {
        SyncedCollection(engine: self, collection: try replica.collection(name))
    }

    /// Pushes the queue now, for at most `timeout`; returns whether entry `sequence` is
    /// confirmed (neither queued nor set aside as a dead letter), or the error that stopped it.
    func confirm(_ sequence: UInt64, within timeout: Duration) async -> (confirmed: Bool, reason: String?) {
        let push = Task { @Sendable () async throws -> Int in try await self.pushAll() }
        // Wait for the replay or the timeout, whichever comes first. A replay queued behind
        // another one cannot be interrupted, so the answer does not wait for it: it goes on in
        // the background, and the entry stays queued until it is confirmed.
        let failure: String? = await firstOf(
            { () async -> String? in
                switch await push.result {
                case .success: return nil
                case .failure(let error): return "the server did not confirm it: \(error)"
                }
            }, orAfter: timeout, "the server did not confirm it within \(timeout)")
        if failure != nil { push.cancel() }
        // Whatever the replay said, the queue decides: a batch acknowledged before a later one
        // failed is confirmed.
        let storage = replica.storage
        do {
            let queued = try await storage.entries().contains { $0.sequence == sequence }
            if let refused = try await storage.deadLetters(limit: 1_000).first(where: { $0.sequence == sequence }) {
                return (false, "the server refused it: \(refused.reason)")
            }
            if queued { return (false, failure ?? "the server did not confirm it") }
            return (true, nil)
        } catch {
            return (false, "local storage: \(error)")
        }
    }
}

/// The result of `body`, or `timedOut` if `timeout` passes first (`body` then goes on alone).
func firstOf<T: Sendable>(_ body: @escaping @Sendable () async -> T, orAfter timeout: Duration, _ timedOut: T) async -> T {
    let once = ResumeOnce<T>()
    return await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
        once.set(continuation)
        Task { once.resume(await body()) }
        Task {
            try? await Task.sleep(for: timeout)
            once.resume(timedOut)
        }
    }
}

/// A continuation resumed by the first of several tasks.
final class ResumeOnce<T: Sendable>: Sendable {
    private let state = Mutex<CheckedContinuation<T, Never>?>(nil)
    func set(_ continuation: CheckedContinuation<T, Never>) { state.withLock { $0 = continuation } }
    func resume(_ value: T) {
        let continuation = state.withLock { current -> CheckedContinuation<T, Never>? in
            defer { current = nil }
            return current
        }
        continuation?.resume(returning: value)
    }
}

/// A collection of a replica synced by a ``SyncEngine``, whose writes follow the collection's
/// sync mode and return a ``WriteReceipt``.
///
/// - **Write-behind** (the default): the write is committed locally and queued, and the call
///   returns at once with an unconfirmed receipt; the engine's loop pushes it.
/// - **Write-through** (`mode = "write_through"`, for the replica or the collection): the write
///   is committed locally and queued, then the queue is pushed at once, and the call returns
///   when the server has durably applied it, with a confirmed receipt. If the server cannot
///   confirm it within `write_through_timeout_ms`, `write_through_fallback` decides: `queue`
///   keeps the write locally and queued and returns an unconfirmed receipt; `rollback` undoes
///   it locally and throws ``WeftError/Kind/writeNotConfirmed``.
///
/// Nothing is ever half-applied: locally the write is either stored and queued, or (after a
/// rollback) the document holds its earlier content again. A rollback is a compensating write,
/// so if the server did apply the write but its answer came too late, the undo still wins
/// there. A rollback that finds the document changed by another write since keeps the write
/// queued instead (undoing it would undo the other write too) and throws.
public struct SyncedCollection: Sendable {
    /// The engine that pushes the writes.
    public let engine: SyncEngine
    /// The underlying replica collection (reads go through it).
    public let collection: ReplicaCollection

    /// Creates document `id`.
    @discardableResult
    public func create(_ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void)
        async throws(WeftError) -> WriteReceipt
    {
        try await write(id, .mustNotExist, deleting: false, edit)
    }

    /// Updates document `id`.
    @discardableResult
    public func update(_ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void)
        async throws(WeftError) -> WriteReceipt
    {
        try await write(id, .mustExist, deleting: false, edit)
    }

    /// Creates or updates document `id`.
    @discardableResult
    public func upsert(_ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void)
        async throws(WeftError) -> WriteReceipt
    {
        try await write(id, .any, deleting: false, edit)
    }

    /// Deletes document `id`.
    @discardableResult
    public func delete(_ id: String) async throws(WeftError) -> WriteReceipt {
        try await write(id, .mustExist, deleting: true) { _ in }
    }

    /// The live document `id`, or `nil`.
    public func get(_ id: String) async throws(WeftError) -> Document? { try await collection.get(id) }

    private func write(
        _ id: String, _ expectation: Replica.Expectation, deleting: Bool,
        _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) async throws(WeftError) -> WriteReceipt {
        let replica = collection.replica
        let key = try collection.key(id)
        let committed = try await replica.commitReturningSequences([
            Replica.Operation(key: key, expectation: expectation, deleting: deleting, edit: edit)
        ])
        guard let written = committed.first else { throw .storage("the write produced no record") }
        let configuration = replica.configuration
        guard configuration.mode(for: key.collection) == .writeThrough else {
            return WriteReceipt(key: key, record: written.record, sequence: written.sequence, confirmed: false, pendingReason: "write-behind")
        }
        let timeout = Duration.milliseconds(configuration.writeThroughTimeoutMilliseconds)
        let (confirmed, reason) = await engine.confirm(written.sequence, within: timeout)
        if confirmed {
            return WriteReceipt(key: key, record: written.record, sequence: written.sequence, confirmed: true, pendingReason: nil)
        }
        switch configuration.writeThroughFallback {
        case .keepQueued:
            return WriteReceipt(key: key, record: written.record, sequence: written.sequence, confirmed: false, pendingReason: reason)
        case .rollBack:
            let undone = try await replica.compensate(key, written: written.record, previous: written.previous)
            throw .writeNotConfirmed(
                undone
                    ? "\(key) was rolled back: \(reason ?? "not confirmed")"
                    : "\(key) was changed by another write since, so this write stays queued: \(reason ?? "not confirmed")")
        }
    }
}
