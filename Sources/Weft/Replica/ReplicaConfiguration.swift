import WeftCRDT

/// How much a local commit promises about durability.
///
/// Weft keeps the local database in WAL mode. The two levels differ only in when SQLite
/// `fsync`s:
///
/// - ``normal`` (the default, `PRAGMA synchronous = NORMAL`): a write that returned survives
///   the app crashing or being killed, because it is in the WAL file the operating system
///   holds. After a power loss or kernel panic, the commits since the last checkpoint may be
///   lost, and only those: the database stays consistent, the writes that remain are exactly
///   the earliest ones, and a lost write takes its queue entry with it. A write the server
///   acknowledged is never lost with them: it is on the server. If the lost commits held the
///   replica's record of what the server acknowledged, the server finds the file forked at
///   the next handshake; the replica takes a new identity and pulls back what the server holds.
///   Opened after the machine restarted (``BootIdentifier``), the replica takes a new identity
///   anyway, so it never issues again the dots of writes it lost but others may hold, and
///   resyncs once, so writes the server acknowledged and then lost (a restored store) go back.
/// - ``full`` (`PRAGMA synchronous = FULL`): the WAL is `fsync`ed at every commit, so a write
///   that returned also survives a power loss. Commits cost one `fsync` each.
///
/// `PowerLossTests` and `PowerLossSyncTests` check exactly these promises, cutting power with a
/// VFS that drops whatever SQLite had not synced.
public enum Durability: String, Hashable, Sendable, CaseIterable {
    /// Survives app crashes; may lose the last writes on power loss.
    case normal
    /// Survives power loss; one `fsync` per commit.
    case full
}

/// What a write-through write does when the server cannot confirm it within the timeout.
public enum WriteThroughFallback: String, Hashable, Sendable, CaseIterable {
    /// Keep the write locally and queued, and report it as not yet confirmed (`"queue"`).
    case keepQueued = "queue"
    /// Undo the write locally and throw ``WeftError/Kind/writeNotConfirmed`` (`"rollback"`).
    case rollBack = "rollback"
}

/// The settings of a local replica.
public struct ReplicaConfiguration: Hashable, Sendable {
    /// The cap on the offline queue, in bytes (`max_queue_bytes`). A write that would pass it
    /// is refused with ``WeftError/Kind/queueFull``; nothing queued is ever dropped.
    public var maxQueueBytes: Int
    /// When a commit is durable; see ``Durability``.
    public var durability: Durability
    /// How far ahead of local time, in milliseconds, a received stamp may be.
    public var maximumClockDrift: UInt64
    /// The conflict policy of collections without one of their own (`conflict_resolution`).
    public var conflictResolution: ConflictPolicy = .lastWriterWins
    /// Per-collection conflict policies (`[persistence.collections.NAME]`).
    public var collectionPolicies: [String: ConflictPolicy] = [:]
    /// How writes reach the server (`mode`): write-behind (queued, pushed every
    /// `sync_interval_ms`) or write-through (a write waits for the server; see `SyncedCollection`).
    public var syncMode: SyncMode = .writeBehind
    /// Per-collection modes (`[persistence.collections.NAME] mode`).
    public var collectionModes: [String: SyncMode] = [:]
    /// How long a write-through write waits for the server (`write_through_timeout_ms`).
    public var writeThroughTimeoutMilliseconds: Int = 5_000
    /// What a write-through write does when the server cannot confirm it in time
    /// (`write_through_fallback`).
    public var writeThroughFallback: WriteThroughFallback = .keepQueued
    /// Whether edits made before the server confirms a session use a new identity of their own
    /// (the default). A file restored from a backup or copied to another device would otherwise
    /// reissue dots its lost history used, and the server would take the new edits for old ones.
    /// A replica that never syncs may turn it off: its identities never meet anyone else's, and
    /// each session would otherwise add one to the version vectors of what it writes.
    public var sessionIdentities = true
    /// Per-collection indexes (`[persistence.collections.NAME] indexes` and `set_indexes`):
    /// the fields queries on the collection find without reading every document
    /// (``ReplicaCollection/query(_:orderBy:limit:after:)``). A storage that keeps indexes
    /// (SQLite) builds them when the replica opens, again whenever the list changes, and keeps
    /// them in every write's transaction; others answer every query by reading documents.
    public var collectionIndexes: [String: [IndexedField]] = [:]
    /// Whether opening the replica declares ``collectionIndexes`` to the storage, which then
    /// builds, rebuilds and drops indexes to match (the default). A tool that opens an app's
    /// file to look into it (`weft status`, `weft query`) sets it to `false`: the file keeps the
    /// app's indexes, and queries use them.
    public var declaresIndexes = true
    /// How long a deleted document's tombstone is kept once nothing of it waits to be pushed
    /// (`tombstone_retention_ms`, by default 30 days); then the replica may forget it
    /// (``Replica/collectTombstones(retention:step:)``). A server restored from a backup taken before
    /// a deletion gets the deletion back from replicas that still hold its tombstone, so the
    /// retention should outlast the oldest backup a server may be restored from.
    public var tombstoneRetentionMilliseconds: UInt64 = TombstoneRetention.defaultMilliseconds

    /// The mode for `collection`.
    public func mode(for collection: CollectionName) -> SyncMode { collectionModes[collection.rawValue] ?? syncMode }

    /// The policy for `collection`.
    public func policy(for collection: CollectionName) -> ConflictPolicy {
        collectionPolicies[collection.rawValue] ?? conflictResolution
    }

    /// The configuration's policies as a declaration (for a replica that is its own server).
    public var declaredPolicies: ServerPolicies { ServerPolicies(defaultPolicy: conflictResolution, collections: collectionPolicies) }

    /// The default cap: 100 MiB.
    public static let defaultMaxQueueBytes = 100 * 1024 * 1024

    /// Creates a configuration.
    public init(
        maxQueueBytes: Int = ReplicaConfiguration.defaultMaxQueueBytes,
        durability: Durability = .normal,
        maximumClockDrift: UInt64 = HybridLogicalClock.defaultMaximumForwardDrift
    ) {
        self.maxQueueBytes = maxQueueBytes
        self.durability = durability
        self.maximumClockDrift = maximumClockDrift
    }

    /// Checks the values.
    /// - Throws: ``WeftError/invalidArgument(_:)`` for a non-positive queue cap.
    public func validate() throws(WeftError) {
        guard maxQueueBytes > 0 else {
            throw .invalidArgument("max_queue_bytes must be positive, got \(maxQueueBytes)")
        }
        guard writeThroughTimeoutMilliseconds > 0 else {
            throw .invalidArgument("write_through_timeout_ms must be positive, got \(writeThroughTimeoutMilliseconds)")
        }
        for (name, fields) in collectionIndexes {
            _ = try CollectionName(name)
            for field in fields { try field.path.validate() }
        }
    }
}
