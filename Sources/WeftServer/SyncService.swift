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
    let policies: @Sendable (String) -> ServerPolicies
    let resolvers: ResolverRegistry
    /// Each document's JSON projection, under the policies and resolvers the service merges with.
    public nonisolated let projector: DocumentProjector
    /// The server's clock, for the clock-skew guard.
    let timeSource: any PhysicalTimeSource
    /// How far ahead of the server's clock (the `timeSource` the service was created with) a
    /// pushed write's stamp may be, in milliseconds.
    public nonisolated let maximumClockSkew: UInt64
    let limits: WireLimits
    /// Pulls waiting for a change, by database: a push wakes them at once.
    var waiters: [String: [Int: AsyncStream<Void>.Continuation]] = [:]
    var nextWaiter = 0
    /// How often a waiting pull looks at the store anyway: it also catches changes committed by
    /// another server on the same store, which this one is not told of.
    public let storePollInterval: Duration
    let logger: Logger
    /// How many pushed versions had the server's version vector but other contents
    /// (`MergeKind.repaired`): the server kept its own.
    public internal(set) var repairedVersions = 0
    /// How many pushed records claimed to have seen writes of other replicas that the server
    /// has not seen (a buggy or forged record): the claims were limited to what the server
    /// holds (`DocumentRecord.limitingClaims(about:to:includingContext:)`) before merging.
    public internal(set) var limitedClaims = 0
    /// How many pulls named a cursor this server's history does not hold (answered "resync").
    public internal(set) var resyncsRequested = 0
    /// The largest encoded record a push may carry (`max_document_bytes`); a larger one is
    /// refused on its own, in `PushResponse.rejected`, and the rest of the push is
    /// applied.
    public nonisolated let maximumDocumentBytes: Int
    /// The longest a pull waits for a change (`max_long_poll_ms`); a longer
    /// `PullRequest.waitMilliseconds` is cut to it.
    public nonisolated let maximumLongPoll: Duration
    /// The store's key for signing channel views, once read (``viewKey()``).
    var channelViewKey: [UInt8]?
    /// Set by ``beginShutdown()``: waiting pulls are answered at once, and new ones do not wait.
    var closing = false

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
            store: store, limits: limits, policiesByDatabase: { _ in policies }, resolvers: resolvers,
            storePollInterval: storePollInterval,
            maximumClockSkew: maximumClockSkew, timeSource: timeSource,
            maximumDocumentBytes: maximumDocumentBytes,
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
        logger: Logger = Logger(label: "weft.sync-service"),
        channels: ServerChannels = ServerChannels()
    ) {
        self.init(
            store: store, limits: limits, policiesByDatabase: policiesByDatabase, resolvers: resolvers,
            storePollInterval: storePollInterval,
            maximumClockSkew: maximumClockSkew, timeSource: timeSource,
            maximumDocumentBytes: maximumDocumentBytes,
            maximumLongPoll: maximumLongPoll, logger: logger, keepsProjection: true, channels: channels)
    }

    /// The designated initializer; `keepsProjection: false` has the store keep no projection
    /// (to measure what keeping it costs).
    @_spi(Measuring) public init(
        store: any CentralStore, limits: WireLimits,
        policiesByDatabase: @escaping @Sendable (String) -> ServerPolicies,
        resolvers: ResolverRegistry, storePollInterval: Duration, maximumClockSkew: UInt64,
        timeSource: any PhysicalTimeSource,
        maximumDocumentBytes: Int, maximumLongPoll: Duration, logger: Logger, keepsProjection: Bool,
        channels: ServerChannels = ServerChannels()
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
        var projector = DocumentProjector(
            policies: policiesByDatabase, resolvers: resolvers, channels: channels)
        projector.keepsProjection = keepsProjection
        self.projector = projector
    }

    /// Creates a service over `store` with every setting of a `[server]` section that concerns
    /// it (the limits, `max_clock_skew_ms`), and `policies`. `weft serve` uses it, so every
    /// documented server key takes effect.
    public init(
        store: any CentralStore, configuration: ServerConfiguration,
        policies: ServerPolicies = ServerPolicies(defaultPolicy: .crdt),
        resolvers: ResolverRegistry = ResolverRegistry(), logger: Logger = Logger(label: "weft.sync-service")
    ) {
        let limits = configuration.limits
        self.init(
            store: store,
            limits: limits.wireLimits,
            policiesByDatabase: { _ in policies }, resolvers: resolvers,
            maximumClockSkew: UInt64(max(0, limits.maxClockSkewMilliseconds)),
            maximumDocumentBytes: limits.maxDocumentBytes,
            maximumLongPoll: .milliseconds(max(0, limits.maxLongPollMilliseconds)),
            logger: logger, channels: configuration.channels)
    }

    /// Opens a session for a replica (see `HelloRequest`) and declares the
    /// database's policies.
    public func hello(database: String, _ request: HelloRequest) async throws(SyncError) -> HelloResponse {
        try Self.checkRange(request.acknowledgedThrough, "acknowledgedThrough")
        try Self.refuseServerWriter(request.replica)
        let outcome: (accepted: Bool, appliedThrough: UInt64, receipt: UInt64)
        do {
            outcome = try await store.hello(
                database: database, replica: request.replica, confirmedEpoch: request.confirmedEpoch,
                epoch: request.epoch,
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
            defaultPolicy: declared.defaultPolicy, collections: declared.collections,
            acceptsDeltaPushes: request.offersDeltaPushes,
            collectsTombstones: request.handlesCollection, receipt: outcome.receipt,
            filtersChannels: request.handlesChannels)
    }

    /// The largest sequence (and mark) a store can hold: both stores keep them as signed 64-bit
    /// integers.
    public static let maximumSequence = UInt64(Int64.max)

    /// Refuses a replica that names itself as the server's writer (``serverWriter``): its dots
    /// would collide with the server's own writes.
    static func refuseServerWriter(_ replica: ReplicaID) throws(SyncError) {
        guard replica != serverWriter else {
            throw SyncError(
                .rejected, "the replica identity \(replica) is the server's own writer: no replica may use it"
            )
        }
    }

    /// Refuses a client-supplied sequence the stores cannot represent, naming the field.
    static func checkRange(_ value: UInt64, _ field: String) throws(SyncError) {
        guard value <= maximumSequence else {
            throw SyncError(.rejected, "\(field) = \(value) is out of range (at most \(maximumSequence))")
        }
    }
}
