import Logging
import Synchronization
import WeftCRDT
import WeftWire

/// A local replica: documents an app reads and writes at local-disk speed, every write captured
/// for sync in the same atomic step.
///
/// Open one with `Replica.open(path:configuration:)` from `WeftSQLite`, or give it any
/// ``ReplicaStorage``:
///
/// ```swift
/// let replica = try await Replica(storage: MemoryReplicaStorage())
/// let orders = try replica.collection("workOrders")
/// try await orders.create("wo-1") { $0.set("title", to: "Replace valve") }
/// try await orders.update("wo-1") { $0.increment("visits") }
/// ```
///
/// Every write is one transaction that stores the new document and appends its delta to the
/// offline queue (or joins it into the document's pending entry). A write that throws changed
/// nothing.
public actor Replica {
    /// The replica's identity on the server: what its pushes and handshakes carry. It changes
    /// only when the server finds the file forked (``takeNewIdentity()``).
    public nonisolated var replicaID: ReplicaID { identity.withLock { $0 } }
    nonisolated let identity: Mutex<ReplicaID>
    /// The identities this file had before, oldest first: pushes carry them, so the server takes
    /// writes made under them as this replica's own.
    public nonisolated var formerIdentities: [ReplicaID] { formerIdentitiesBox.withLock { $0 } }
    nonisolated let formerIdentitiesBox: Mutex<[ReplicaID]>
    /// This session (this `Replica` value), for the handshake: random, never 0.
    public nonisolated let sessionEpoch: UInt64 = UInt64.random(in: 1...UInt64.max)
    /// The identity this session's edits are made with: a new random one until the server has
    /// confirmed that this file is the latest continuation of ``replicaID``'s history, then
    /// ``replicaID``. So no dot or stamp the file's lost history (a restored backup, a copy, the
    /// last commits before a power cut) used can be issued again.
    public internal(set) var writerID: ReplicaID
    /// Whether the server confirmed this session (``confirmSession(_:)``).
    public internal(set) var isVerified = false
    /// The settings in force.
    public nonisolated let configuration: ReplicaConfiguration
    /// The custom resolvers the configuration's `custom` policies name.
    public nonisolated let resolvers: ResolverRegistry
    let storage: any ReplicaStorage
    var clock: HybridLogicalClock
    let timeSource: any PhysicalTimeSource
    var observers: [Int: AsyncStream<ReplicaChange>.Continuation] = [:]
    var nextObserver = 0
    let logger: Logger

    /// Opens a replica on `storage`.
    ///
    /// - Parameters:
    ///   - storage: where the documents and the queue live: ``MemoryReplicaStorage``, or
    ///     `SQLiteReplicaStorage` from WeftSQLite (`Replica.open(path:)` opens one on a file).
    ///   - configuration: the replica's settings (durability, queue cap, policies, indexes).
    ///   - resolvers: the resolvers `custom` policies name; opening fails if one is missing.
    ///   - timeSource: physical time for the hybrid logical clock; inject one in tests.
    ///   - boot: the machine's current boot (``BootIdentifier/current()``); inject one in tests.
    ///     Under `durability = "normal"`, a file last opened under another boot may have lost
    ///     its last commits to a power cut, so the replica takes a new identity before it
    ///     writes (its former one is kept among ``formerIdentities``), and resyncs at its next
    ///     pull.
    ///   - logger: where the replica logs; it never bootstraps logging itself.
    public init(
        storage: any ReplicaStorage,
        configuration: ReplicaConfiguration = ReplicaConfiguration(),
        resolvers: ResolverRegistry = ResolverRegistry(),
        timeSource: any PhysicalTimeSource = SystemTimeSource(),
        boot: String? = BootIdentifier.current(),
        logger: Logger = Logger(label: "weft.replica")
    ) async throws(WeftError) {
        try configuration.validate()
        try resolvers.validate(configuration)
        self.resolvers = resolvers
        self.timeSource = timeSource
        var rebooted: ReplicaID?
        if configuration.durability == .normal, let boot {
            let recorded = try await storage.bootMarker()
            if recorded != boot {
                if recorded != nil {
                    // Its last commits may be gone while other replicas hold the writes they
                    // made: never issue that identity's dots again.
                    rebooted = try await storage.metadata().replicaID
                    try await storage.replaceIdentity(with: .random())
                    // The new identity forgets what the server acknowledged to the old one, so a
                    // handshake can no longer show that the server lost some of it (a store
                    // restored too): resync once, which pushes back whatever the server lacks.
                    try await storage.beginResync()
                }
                try await storage.saveBootMarker(boot)
            }
        }
        let metadata = try await storage.metadata()
        let floors = try await storage.counterFloors()
        self.storage = storage
        self.counterFloors = floors
        self.configuration = configuration
        self.identity = Mutex(metadata.replicaID)
        self.formerIdentitiesBox = Mutex(metadata.formerIdentities)
        let writer = configuration.sessionIdentities ? ReplicaID.random() : metadata.replicaID
        self.writerID = writer
        self.logger = logger
        if let rebooted {
            logger.notice(
                "the machine restarted since this file was last opened (durability normal: its last commits may be lost): new identity",
                metadata: ["old": "\(rebooted)", "new": "\(metadata.replicaID)"])
        }
        if let last = metadata.lastStamp {
            clock = HybridLogicalClock(
                replica: writer, resumingAfter: last, timeSource: timeSource, maximumForwardDrift: configuration.maximumClockDrift)
        } else {
            clock = HybridLogicalClock(replica: writer, timeSource: timeSource, maximumForwardDrift: configuration.maximumClockDrift)
        }
        try await declareIndexes()
    }

    /// The policies the server declared (``ServerPolicies``), once learned.
    nonisolated let learnedPolicies = Mutex<ServerPolicies?>(nil)
    /// The counter floors of collections whose tombstones this replica collected
    /// (``TombstoneCollecting``), as stored; changed only inside ``exclusively(_:)``.
    var counterFloors: [CollectionName: UInt64] = [:]
    var writing = false
    var writeWaiters: [CheckedContinuation<Void, Never>] = []

    /// A handle on collection `name`.
    /// - Throws: ``WeftError/invalidArgument(_:)`` for an invalid name.
    public nonisolated func collection(_ name: String) throws(WeftError) -> ReplicaCollection {
        ReplicaCollection(replica: self, name: try CollectionName(name))
    }

    /// A stream of every change from now on: local writes and, once sync runs, remote changes.
    ///
    /// Each call returns a new stream; the stream ends when the task iterating it is cancelled.
    public func changes() -> AsyncStream<ReplicaChange> { changes(bufferingPolicy: .bufferingNewest(4096)) }

    /// ``changes()`` with its buffering policy (live queries keep every change).
    func changes(bufferingPolicy: AsyncStream<ReplicaChange>.Continuation.BufferingPolicy) -> AsyncStream<ReplicaChange> {
        let (stream, continuation) = AsyncStream<ReplicaChange>.makeStream(bufferingPolicy: bufferingPolicy)
        let id = nextObserver
        nextObserver += 1
        observers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            Task { await self.removeObserver(id) }
        }
        return stream
    }

    func removeObserver(_ id: Int) { observers[id] = nil }

    /// The storage (for tests that look at what it keeps).
    package nonisolated var storageForTests: any ReplicaStorage { storage }

    /// How many change streams are open (for tests: a cancelled live query holds none).
    package var observerCount: Int { observers.count }

    func publish(_ change: ReplicaChange) {
        for continuation in observers.values { continuation.yield(change) }
    }

    /// The current record of `key`, tombstones included.
    ///
    /// It runs on the caller's executor, not the replica's: a read waits for no write.
    public nonisolated(nonsending) func record(_ key: DocumentKey) async throws(WeftError) -> DocumentRecord? {
        try await storage.record(for: key)
    }

    /// The offline queue's entries, oldest first.
    public func queuedChanges() async throws(WeftError) -> [QueueEntry] { try await storage.entries() }

    /// The offline queue's exact size in bytes.
    public func queuedBytes() async throws(WeftError) -> Int { try await storage.totalBytes() }

    /// Changes the server refused for good, newest first (see ``DeadLetter``).
    public func deadLetters(limit: Int = 100) async throws(WeftError) -> [DeadLetter] {
        try await storage.deadLetters(limit: limit)
    }

    /// The server sequence of the last pulled change applied.
    public func pullCursor() async throws(WeftError) -> UInt64 { try await storage.metadata().pullCursor }
}

/// A value handed out of a `@Sendable` closure that runs exactly once, synchronously.
final class LockedBox<Value: Sendable>: Sendable {
    let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    func set(_ value: Value) { storage.withLock { $0 = value } }
    func get() -> Value { storage.withLock { $0 } }
}

/// A time source that always reads the same time.
struct FixedTimeSource: PhysicalTimeSource {
    let milliseconds: UInt64
    func currentMilliseconds() -> UInt64 { milliseconds }
}
