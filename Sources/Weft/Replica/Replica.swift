import Logging
import WeftCRDT

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
    /// The replica's identity.
    public nonisolated let replicaID: ReplicaID
    /// The settings in force.
    public nonisolated let configuration: ReplicaConfiguration
    let storage: any ReplicaStorage
    private var clock: HybridLogicalClock
    private var observers: [Int: AsyncStream<ReplicaChange>.Continuation] = [:]
    private var nextObserver = 0
    private let logger: Logger

    /// Opens a replica on `storage`.
    ///
    /// - Parameters:
    ///   - timeSource: physical time for the hybrid logical clock; inject one in tests.
    ///   - logger: where the replica logs; it never bootstraps logging itself.
    public init(
        storage: any ReplicaStorage,
        configuration: ReplicaConfiguration = ReplicaConfiguration(),
        timeSource: any PhysicalTimeSource = SystemTimeSource(),
        logger: Logger = Logger(label: "weft.replica")
    ) async throws(WeftError) {
        try configuration.validate()
        let metadata = try await storage.metadata()
        self.storage = storage
        self.configuration = configuration
        self.replicaID = metadata.replicaID
        self.logger = logger
        if let last = metadata.lastStamp {
            clock = HybridLogicalClock(
                replica: metadata.replicaID, resumingAfter: last, timeSource: timeSource,
                maximumForwardDrift: configuration.maximumClockDrift)
        } else {
            clock = HybridLogicalClock(
                replica: metadata.replicaID, timeSource: timeSource, maximumForwardDrift: configuration.maximumClockDrift)
        }
    }

    /// A handle on collection `name`.
    /// - Throws: ``WeftError/invalidArgument(_:)`` for an invalid name.
    public nonisolated func collection(_ name: String) throws(WeftError) -> ReplicaCollection {
        ReplicaCollection(replica: self, name: try CollectionName(name))
    }

    /// A stream of every change from now on: local writes and, once sync runs, remote changes.
    ///
    /// Each call returns a new stream; the stream ends when the task iterating it is cancelled.
    public func changes() -> AsyncStream<ReplicaChange> {
        let (stream, continuation) = AsyncStream<ReplicaChange>.makeStream(bufferingPolicy: .bufferingNewest(4096))
        let id = nextObserver
        nextObserver += 1
        observers[id] = continuation
        continuation.onTermination = { [weak self] _ in
            guard let self else { return }
            Task { await self.removeObserver(id) }
        }
        return stream
    }

    private func removeObserver(_ id: Int) { observers[id] = nil }

    func publish(_ change: ReplicaChange) {
        for continuation in observers.values { continuation.yield(change) }
    }

    /// The current record of `key`, tombstones included.
    public func record(_ key: DocumentKey) async throws(WeftError) -> DocumentRecord? {
        try await storage.record(for: key)
    }

    /// The offline queue's entries, oldest first.
    public func queuedChanges() async throws(WeftError) -> [QueueEntry] { try await storage.entries() }

    /// The offline queue's exact size in bytes.
    public func queuedBytes() async throws(WeftError) -> Int { try await storage.totalBytes() }

    /// Writes one document: reads its record, lets `edit` change it, and commits the new record
    /// and its delta together.
    ///
    /// - Parameter expectation: whether the document must exist (live), must not, or either.
    func write(
        _ key: DocumentKey, expectation: Expectation, deleting: Bool = false,
        _ edit: @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) async throws(WeftError) -> DocumentRecord {
        let current = try await storage.record(for: key)
        let live = current.map { !$0.isDeleted } ?? false
        switch expectation {
        case .mustExist where !live: throw .documentNotFound(key)
        case .mustNotExist where live: throw .documentExists(key)
        default: break
        }
        let stamp = clock.now()
        var editor = DocumentEditor(document: current?.body ?? Document(), stamp: stamp)
        if deleting || !live {
            // A delete clears the fields (the tombstone keeps only the flag and the version);
            // re-creating a deleted document starts it empty.
            for field in editor.document.keys { editor.removeField(field) }
        }
        if !deleting { try edit(&editor) }
        var version = current?.version ?? VersionVector()
        version.increment(replicaID)
        let delta = DocumentRecord(body: editor.delta, deletion: LWWRegister(deleting, stamp: stamp), version: version)
        var record = current ?? DocumentRecord(body: Document(), deletion: delta.deletion, version: VersionVector())
        record.merge(delta)
        _ = try await storage.commitLocalWrite(
            key: key, record: record, delta: delta, maxQueueBytes: configuration.maxQueueBytes)
        do {
            try await storage.saveLastStamp(stamp)
        } catch {
            logger.warning("could not persist the clock", metadata: ["error": "\(error)"])
        }
        publish(ReplicaChange(key: key, origin: .local, isDeleted: deleting, stamp: stamp))
        return record
    }

    enum Expectation { case mustExist, mustNotExist, any }
}
