import WeftCRDT

/// What a replica keeps about itself: its identity, its clock and its sync cursors.
public struct ReplicaMetadata: Hashable, Sendable {
    /// The replica's identity, created once when the storage was first opened.
    public var replicaID: ReplicaID
    /// A stamp at or above every stamp the replica committed, so a restarted clock stays ahead
    /// of them. Stores may keep a lease a little ahead of the newest stamp, to write it rarely.
    public var lastStamp: HLCTimestamp?
    /// The server sequence of the last pulled change applied (0: none).
    public var pullCursor: UInt64
    /// The session the server last confirmed for this file (`HelloRequest`; 0: none yet).
    public var confirmedEpoch: UInt64
    /// The highest queue sequence the server acknowledged to this file (0: none). A server that
    /// applied more than this has seen writes this file does not remember.
    public var acknowledgedThrough: UInt64 = 0
    /// The tag of the change at ``pullCursor``, as the server gave it (0: unknown). Pulls send it
    /// so the server can tell whether its history still holds that change.
    public var pullCursorTag: UInt64 = 0
    /// Whether a resync is under way (``ReplicaStorage/beginResync()``): the replica is pulling
    /// everything again and will push back what the server lacks.
    public var resyncPending = false
    /// While a resync is under way, the pull cursor the replica had when it began (0 if none):
    /// its records hold every change pulled up to it, and pulls of the resync name it
    /// (`resyncingFrom` in WeftWire's `PullRequest`) so the server can tell what it forgot since.
    public var resyncFrom: UInt64 = 0
    /// The identities this file had before ``DocumentStore/replaceIdentity(with:)`` gave it new ones, oldest
    /// first (at most 64 kept). Its records may hold writes made under them.
    public var formerIdentities: [ReplicaID] = []
    /// The channel view the server last gave this replica (`PullResponse.ChannelAnswer.view` in
    /// WeftWire; empty before the first): what its documents reflect, sent back with each pull.
    public var channelView: [UInt8] = []

    /// Creates metadata.
    public init(
        replicaID: ReplicaID, lastStamp: HLCTimestamp? = nil, pullCursor: UInt64 = 0,
        confirmedEpoch: UInt64 = 0
    ) {
        self.replicaID = replicaID
        self.lastStamp = lastStamp
        self.pullCursor = pullCursor
        self.confirmedEpoch = confirmedEpoch
    }
}

/// A simple filter for ``DocumentStore/records(in:where:limit:)``.
public struct DocumentFilter: Sendable {
    /// Whether deleted documents (tombstones) are included.
    public var includeDeleted: Bool
    /// Only documents whose top-level register `field` equals this scalar.
    public var fieldEquals: (field: String, value: Scalar)?
    /// Only documents whose id starts with this prefix.
    public var idPrefix: String?
    /// Only documents whose id comes after this one (in the order of ids: their UTF-8 bytes),
    /// to read a collection page by page: pass the last id of the previous page.
    public var after: DocumentID?

    /// Creates a filter; the default matches every live document.
    public init(
        includeDeleted: Bool = false, fieldEquals: (field: String, value: Scalar)? = nil,
        idPrefix: String? = nil, after: DocumentID? = nil
    ) {
        self.includeDeleted = includeDeleted
        self.fieldEquals = fieldEquals
        self.idPrefix = idPrefix
        self.after = after
    }

    /// Every live document.
    public static var all: DocumentFilter { DocumentFilter() }

    /// Whether `record` with `id` passes the filter.
    public func matches(_ id: DocumentID, _ record: DocumentRecord) -> Bool {
        if !includeDeleted && record.isDeleted { return false }
        if let idPrefix, !id.rawValue.hasPrefix(idPrefix) { return false }
        if let after, !(after < id) { return false }
        if let fieldEquals, record.body.scalar(fieldEquals.field) != fieldEquals.value { return false }
        return true
    }
}

/// Versioned CRDT documents by collection and id, plus the replica's metadata and cursors.
///
/// ## Contract
///
/// Every implementation, in memory or on disk, must behave as follows; the suite in
/// `Tests/WeftTests/StorageContractTests.swift` checks each point against every implementation.
///
/// 1. ``metadata()`` returns the same ``ReplicaMetadata/replicaID`` for the life of the store,
///    across restarts for persistent stores; it is created on first open, and changes only
///    through ``replaceIdentity(with:)``, which also resets the confirmed epoch to 0.
/// 2. ``record(for:)`` returns the last record stored for the key, tombstones included, or `nil`;
///    ``records(for:)`` does the same for many keys in one consistent read.
/// 3. ``records(in:where:limit:)`` returns the matching records of one collection ordered by id
///    (the UTF-8 bytes of ids, which is also SQLite's order of text), at most `limit` of them,
///    reading no more than it returns and skips: its memory follows `limit`, not the collection.
/// 4. ``saveLastStamp(_:)``, ``setPullCursor(_:)``, ``saveConfirmedEpoch(_:)`` and
///    ``replaceIdentity(with:)`` persist before they return; the pull cursor only moves forward
///    (a smaller value is ignored).
/// 5. A method that throws has changed nothing.
/// 6. Stores are safe to call from any task (they are actors or lock internally).
///
/// Users may conform their own stores; run the contract suite against them.
public protocol DocumentStore: Sendable {
    /// The replica's identity, clock and cursors.
    func metadata() async throws(WeftError) -> ReplicaMetadata
    /// Persists the last stamp issued or observed.
    func saveLastStamp(_ stamp: HLCTimestamp) async throws(WeftError)
    /// Keeps the channel view the server gave (``ReplicaMetadata/channelView``).
    func saveChannelView(_ view: [UInt8]) async throws(WeftError)
    /// Moves the pull cursor forward (never back).
    func setPullCursor(_ cursor: UInt64) async throws(WeftError)
    /// Records the session the server confirmed for this file.
    func saveConfirmedEpoch(_ epoch: UInt64) async throws(WeftError)
    /// Gives the replica a new identity (its old one was forked: another copy of the file
    /// spoke to the server since this one's last session), remembers the old one among the
    /// former identities, and forgets the confirmed epoch and the acknowledged sequence (both
    /// belonged to the old identity).
    func replaceIdentity(with replica: ReplicaID) async throws(WeftError)
    /// The boot of the machine (``BootIdentifier``) the file was last opened under, if recorded.
    func bootMarker() async throws(WeftError) -> String?
    /// Records the boot the file is opened under.
    func saveBootMarker(_ marker: String) async throws(WeftError)
    /// The stored record for `key`, tombstones included.
    ///
    /// It runs on the caller's executor (`nonisolated(nonsending)`): a point read costs no hop
    /// to another executor and back, which is most of what it would cost.
    nonisolated(nonsending) func record(for key: DocumentKey) async throws(WeftError) -> DocumentRecord?
    /// The stored records for `keys` that exist, tombstones included, in one read.
    func records(for keys: [DocumentKey]) async throws(WeftError) -> [DocumentKey: DocumentRecord]
    /// Every document's key, tombstones included, in no particular order.
    func documentKeys() async throws(WeftError) -> [DocumentKey]
    /// The records of `collection` that pass `filter`, ordered by id.
    func records(in collection: CollectionName, where filter: DocumentFilter, limit: Int?)
        async throws(WeftError)
        -> [(id: DocumentID, record: DocumentRecord)]
}

extension DocumentStore {
    /// A store that does not record boots: a replica on it cannot tell restarts apart.
    public func bootMarker() async throws(WeftError) -> String? { nil }
    /// A store that does not record boots ignores it.
    public func saveBootMarker(_ marker: String) async throws(WeftError) {}
}
