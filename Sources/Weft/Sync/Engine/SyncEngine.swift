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
    /// The replica's acknowledgement mark after the round (``Replica/acknowledgedThrough()``):
    /// every write with a queue sequence at or below it is durable on the server, except the
    /// dead letters.
    public var acknowledgedThrough: UInt64 = 0
    /// Queue entries the server refused for good in this round (moved to the dead letters).
    public var deadLettered = 0
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
///    its cursor in one transaction (``Replica/applyRemote(_:through:tag:)``).
///
/// A crash anywhere resumes from the last confirmed position: unconfirmed entries are still
/// queued, and the pull cursor never passes a change that was not applied.
public actor SyncEngine {
    /// The replica being synced.
    public nonisolated let replica: Replica
    let transport: any SyncTransport
    let logger: Logger
    /// The most entries in one push.
    public var maximumBatchEntries = 500
    /// The most bytes in one push (a single larger entry still goes alone).
    public var maximumBatchBytes = 1 << 20
    /// The most changes asked for in one pull page.
    public var maximumPageChanges: UInt32 = 1_000
    /// Whether the last pull resolved siblings, whose results wait to be pushed.
    var resolvedSiblings = false
    /// How many times this engine resynced with a server that lost part of its history
    /// (``SyncError/Kind/resync``).
    public internal(set) var resyncs = 0
    /// The bandwidth limit on bytes sent and received, if any.
    public internal(set) var bandwidthLimit: BandwidthLimit?
    var bucket: TokenBucket?
    let throttleClock = ContinuousClock()
    let throttleEpoch = ContinuousClock.now
    var progressObservers: [Int: AsyncStream<SyncProgress>.Continuation] = [:]
    var nextProgressObserver = 0
    /// The policies the server declared at the last handshake (`nil` before one).
    public internal(set) var declaredPolicies: ServerPolicies?
    /// The custom resolvers the server's policies name that this replica does not have: the
    /// siblings of those collections stay readable (as their join) and writable here.
    public internal(set) var missingResolvers: [String] = []
    /// Whether the server accepted this session's handshake.
    var sessionOpen = false
    /// Whether the server said in this session's hello that it takes pushed deltas
    /// (``WeftWire/HelloResponse/acceptsDeltaPushes``).
    var serverTakesDeltaPushes = false
    /// Whether the server forgets tombstones and reads the pull's collection flags
    /// (`collectsTombstones` in WeftWire's `HelloResponse`).
    var serverCollectsTombstones = false
    /// Whether the server filters pages by channels and reads the pull's channel fields
    /// (`filtersChannels` in WeftWire's `HelloResponse`).
    var serverFiltersChannels = false
    /// The channels this replica subscribes to, among those its token may read (`nil`: all of
    /// them). ``subscribe(to:)`` changes it.
    public internal(set) var subscription: [String]?
    /// Documents this replica removed because they left what it may see (its channels, or its
    /// subscription), since the engine started.
    public internal(set) var leftView = 0
    /// Pushed deltas (`deltaBase` in WeftWire's `WireChange`) since the engine started, and pushes
    /// the server refused for a delta's base and that went again whole.
    public internal(set) var deltaPushes = (sent: 0, refused: 0)
    /// Large documents pushed since the last complete pull: their server bases are older than
    /// the server's records, so a batch holding one pulls a page first rather than send a delta
    /// the server would refuse.
    var pushedSincePull = Set<DocumentKey>()
    /// The highest high-water mark the server answered in the open session (its hello, then
    /// each push). Each push expects it (``WeftWire/PushRequest/expectedAppliedThrough``), so a
    /// store restored during the session refuses the push instead of confirming later
    /// sequences over the ones it lost.
    var confirmedMark: UInt64 = 0
    /// The links the session's pushes left on the server (``WeftWire/PushReceipt``), from the
    /// receipt its hello answered: what shows a push the server answered and then forgot.
    var receipts = ReceiptChain()
    /// How many times the receipts showed that the server forgot pushes it had answered (each
    /// time, the replica resynced).
    public internal(set) var forgottenPushesNoticed = 0

    /// Whether siblings held since before their resolver was registered were looked for.
    var heldSiblingsChecked = false
    /// When this engine last had the replica collect old tombstones (``tombstoneCollectionInterval``).
    var lastTombstoneCollection: ContinuousClock.Instant?
    /// How often a sync round also has the replica forget old tombstones
    /// (``Replica/collectTombstones(retention:step:)``): at the first round, then at most once
    /// per interval (by default an hour).
    public internal(set) var tombstoneCollectionInterval: Duration = .seconds(3_600)

    /// How many pushes may be on the wire at once. Two overlap the reading and encoding of the
    /// next batch, and the server's work on it, with the previous push's round trip.
    public var maximumPushesInFlight = 2

    var pushing = false
    var pushWaiters: [CheckedContinuation<Void, Never>] = []

    /// Whether write-behind keeps a pull waiting on the server between rounds (live sync, the
    /// default): a change another replica pushes is applied here as soon as the server has it,
    /// instead of at the next round. Pushes still go at the rounds (or at ``requestSync()``).
    public internal(set) var livePulls = true
    /// The longest one live pull waits on the server before it asks again (the server may cut
    /// it shorter: `max_long_poll_ms`).
    public internal(set) var livePullWait: Duration = .seconds(25)
    /// Live changes applied since the engine started (pulled between rounds).
    public internal(set) var livePulled = 0
    /// Wakes write-behind for a round now (``requestSync()``).
    nonisolated let wake = WakeSignal()

    /// How many entries were moved to the dead letters since the engine started.
    public internal(set) var deadLettered = 0

    /// Where the engine stands with the server, for the app to show.
    public internal(set) var connectionState: ConnectionState = .offline
    var stateObservers: [Int: AsyncStream<ConnectionState>.Continuation] = [:]
    var nextStateObserver = 0

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

    /// Sets how many changes one pull page asks for.
    public func setPageSize(_ changes: UInt32) { maximumPageChanges = max(1, changes) }

    /// Says hello (``openSession()``), pushes everything queued, then pulls until the server has
    /// nothing more.
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

    func syncRound() async throws(SyncError) -> SyncReport {
        var report = SyncReport()
        let deadLetteredBefore = deadLettered
        // Every round opens with the handshake, not only the first: a server restored from a
        // backup while this replica's session was open (it may have seen no failed request)
        // is noticed here, before the round pushes or pulls, by the mark it answers.
        sessionOpen = false
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
        try await collectTombstonesIfDue()
        if resolvedSiblings {
            // Siblings resolved here go back to the server in the same round.
            resolvedSiblings = false
            report.pushed += try await pushAll()
        }
        report.deadLettered = deadLettered - deadLetteredBefore
        let replica = replica
        report.acknowledgedThrough = try await local { () async throws(WeftError) in
            try await replica.acknowledgedThrough()
        }
        return report
    }

    func local<T>(_ body: () async throws(WeftError) -> T) async throws(SyncError) -> T {
        do {
            return try await body()
        } catch {
            throw SyncError(.rejected, "local storage: \(error)")
        }
    }

    /// Sets how many pushes may be on the wire at once (1 sends one batch at a time).
    public func setPushesInFlight(_ count: Int) { maximumPushesInFlight = max(1, count) }
}
