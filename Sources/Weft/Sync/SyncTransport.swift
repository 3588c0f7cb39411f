import WeftWire

/// An error from a sync transport.
public struct SyncError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Kind: String, Hashable, Sendable {
        /// The remote could not be reached or did not answer in time: retry later.
        case unavailable
        /// The remote refused the credentials (HTTP 401) or the database (403).
        case unauthorized
        /// The remote refused the request as malformed or too large; retrying will not help.
        case rejected
        /// The remote's answer was malformed.
        case badResponse
        /// The server refused the push because this replica's stamps run further ahead of the
        /// server's clock than it allows (HTTP 409): fix the device's clock. The queue is kept.
        case clockSkew
        /// The server refused the push because its session is not the replica's current one
        /// (HTTP 409 with `Weft-Error: forked`): another copy of this replica's file spoke since.
        /// Nothing was applied; the engine says hello again and the replica takes a new identity.
        case forked
        /// The server's history does not hold the change the replica's pull cursor names (HTTP
        /// 410 with `Weft-Error: resync`): the server was restored from a backup (or dropped
        /// that part of its log). The engine resyncs: it pulls everything again and pushes back
        /// what the server lacks.
        case resync
        /// The server refused a push because a change in it is a delta over a record the server
        /// no longer holds exactly (HTTP 409 with `Weft-Error: delta-base`; another replica's
        /// change came in between). Nothing was applied; the engine pushes those documents
        /// whole.
        case deltaBaseUnknown
        /// The server forgot deletions (it collected their tombstones) that this replica has not
        /// pulled yet (HTTP 410 with `Weft-Error: too-far-behind`): its cursor, or the one its
        /// push names, is older than `tombstone_retention` allows. Nothing was applied; the engine
        /// resyncs, taking the server's documents in place of copies it cannot merge.
        case tooFarBehind
    }

    /// The kind of failure.
    public let kind: Kind
    /// What happened.
    public let message: String
    /// For ``Kind/clockSkew``: the server's clock when it refused, in milliseconds since 1970.
    public let serverTimeMilliseconds: UInt64?
    /// For ``Kind/clockSkew``: how far ahead of its clock the server accepts stamps.
    public let maximumClockSkewMilliseconds: UInt64?

    /// Creates an error.
    public init(
        _ kind: Kind, _ message: String, serverTimeMilliseconds: UInt64? = nil,
        maximumClockSkewMilliseconds: UInt64? = nil
    ) {
        self.kind = kind
        self.message = message
        self.serverTimeMilliseconds = serverTimeMilliseconds
        self.maximumClockSkewMilliseconds = maximumClockSkewMilliseconds
    }

    /// Whether retrying later may succeed.
    public var isTransient: Bool { kind == .unavailable }

    public var description: String { "\(kind.rawValue): \(message)" }

    /// Whether a push that failed with this error was certainly not applied: the server refused
    /// it before applying anything. A push that failed otherwise (no answer, or one that could
    /// not be read) may have been applied.
    var leavesServerUnchanged: Bool {
        switch kind {
        case .unauthorized, .rejected, .clockSkew, .forked, .deltaBaseUnknown, .tooFarBehind, .resync: true
        case .unavailable, .badResponse: false
        }
    }
}

/// How a replica talks to the central store: open a session, push a batch, pull a page after a
/// cursor.
///
/// ## Contract
///
/// 0. ``hello(_:)`` opens a session (see `HelloRequest` in WeftWire): the answer says whether the file is
///    the latest continuation of the replica's history, and declares the database's conflict
///    policies. Saying hello again with the same session is harmless.
/// 1. ``push(_:)`` returns only after the server has durably applied the batch. Pushing a batch
///    again (after a lost response) is safe: the server skips what it has already applied.
/// 2. ``pull(_:)`` returns the changes after the request's cursor, in server order, never
///    skipping or repeating one; with `waitMilliseconds` > 0 it may wait that long for a change.
/// 3. Transient failures throw ``SyncError/Kind/unavailable``; a request the server refuses for
///    good throws ``SyncError/Kind/rejected`` or ``SyncError/Kind/unauthorized``.
public protocol SyncTransport: Sendable {
    /// Opens a session.
    func hello(_ request: HelloRequest) async throws(SyncError) -> HelloResponse
    /// Pushes a batch of queued changes.
    func push(_ request: PushRequest) async throws(SyncError) -> PushResponse
    /// Pulls a page of changes after a cursor.
    func pull(_ request: PullRequest) async throws(SyncError) -> PullResponse
}

/// Where an HTTP transport gets the bearer token of each request: typically the app's auth SDK,
/// which hands out its current JSON Web Token and refreshes it before it expires. A token with
/// other claims takes effect with the next request: a replica whose channels changed pulls the
/// documents it gained and drops those it lost (call `SyncEngine.requestSync()` to have a
/// waiting live pull end at once). A source that throws fails the request as
/// ``SyncError/Kind/unavailable``: the sync loop tries again later.
public typealias BearerTokenSource = @Sendable () async throws -> String?
