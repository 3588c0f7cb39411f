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
    private nonisolated let identity: Mutex<ReplicaID>
    /// This session (this `Replica` value), for the handshake: random, never 0.
    public nonisolated let sessionEpoch: UInt64 = UInt64.random(in: 1...UInt64.max)
    /// The identity this session's edits are made with: a new random one until the server has
    /// confirmed that this file is the latest continuation of ``replicaID``'s history, then
    /// ``replicaID``. So no dot or stamp the file's lost history (a restored backup, a copy, the
    /// last commits before a power cut) used can be issued again.
    public private(set) var writerID: ReplicaID
    /// Whether the server confirmed this session (``confirmSession(_:)``).
    public private(set) var isVerified = false
    /// The settings in force.
    public nonisolated let configuration: ReplicaConfiguration
    /// The custom resolvers the configuration's `custom` policies name.
    public nonisolated let resolvers: ResolverRegistry
    let storage: any ReplicaStorage
    private var clock: HybridLogicalClock
    private let timeSource: any PhysicalTimeSource
    private var observers: [Int: AsyncStream<ReplicaChange>.Continuation] = [:]
    private var nextObserver = 0
    private let logger: Logger

    /// Opens a replica on `storage`.
    ///
    /// - Parameters:
    ///   - resolvers: the resolvers `custom` policies name; opening fails if one is missing.
    ///   - timeSource: physical time for the hybrid logical clock; inject one in tests.
    ///   - logger: where the replica logs; it never bootstraps logging itself.
    public init(
        storage: any ReplicaStorage,
        configuration: ReplicaConfiguration = ReplicaConfiguration(),
        resolvers: ResolverRegistry = ResolverRegistry(),
        timeSource: any PhysicalTimeSource = SystemTimeSource(),
        logger: Logger = Logger(label: "weft.replica")
    ) async throws(WeftError) {
        try configuration.validate()
        try resolvers.validate(configuration)
        self.resolvers = resolvers
        self.timeSource = timeSource
        let metadata = try await storage.metadata()
        self.storage = storage
        self.configuration = configuration
        self.identity = Mutex(metadata.replicaID)
        let writer = configuration.sessionIdentities ? ReplicaID.random() : metadata.replicaID
        self.writerID = writer
        self.logger = logger
        if let last = metadata.lastStamp {
            clock = HybridLogicalClock(
                replica: writer, resumingAfter: last, timeSource: timeSource, maximumForwardDrift: configuration.maximumClockDrift)
        } else {
            clock = HybridLogicalClock(replica: writer, timeSource: timeSource, maximumForwardDrift: configuration.maximumClockDrift)
        }
    }

    /// The conflict policy in force for `collection`: the one the server declared, once a sync
    /// has learned it, or else the configuration's.
    public nonisolated func policy(for collection: CollectionName) -> ConflictPolicy {
        learnedPolicies.withLock { $0?.policy(for: collection) } ?? configuration.policy(for: collection)
    }

    /// The policies the server declared (``ServerPolicies``), once learned.
    nonisolated let learnedPolicies = Mutex<ServerPolicies?>(nil)

    /// `body` as readers of `collection` see it: under field rules, each ruled register shows
    /// the write its rule chooses (``FieldRulesResolver/presenting(_:)``).
    public nonisolated func presenting(_ body: Document, in collection: CollectionName) -> Document {
        guard case .fields(let rules) = policy(for: collection) else { return body }
        return FieldRulesResolver(rules: rules).presenting(body)
    }

    /// `record` as readers see it: siblings resolved by this replica's resolver for the
    /// collection's policy, or joined if it has none. An ordinary record is returned as is.
    nonisolated func readable(_ record: DocumentRecord, in collection: CollectionName) throws(WeftError) -> DocumentRecord {
        guard record.holdsSiblings else { return record }
        return try record.resolvingSiblings(with: policy(for: collection).resolver(in: resolvers))
    }

    /// Whether document `key` holds siblings that wait for a resolver this replica does not
    /// have (reads show their join; a write resolves them by that join).
    public func holdsSiblings(_ key: DocumentKey) async throws(WeftError) -> Bool {
        try await storage.record(for: key)?.holdsSiblings ?? false
    }

    /// Resolves the siblings this replica holds in the collections whose policy it can now
    /// resolve with (a resolver registered since they arrived), as its own writes, queued to be
    /// pushed. Collections with a policy of their own in the configuration or from the server
    /// are looked at (every record of them is read once); siblings elsewhere are resolved when
    /// they are read-written or pulled. The sync engine runs this before its first round.
    /// - Returns: how many documents were resolved.
    @discardableResult
    public func resolveHeldSiblings() async throws(WeftError) -> Int {
        var names = Set(configuration.collectionPolicies.keys)
        if let learned = learnedPolicies.withLock({ $0 }) { names.formUnion(learned.collections.keys) }
        var resolved = 0
        for name in names.sorted() {
            guard let collection = try? CollectionName(name), case .custom = policy(for: collection),
                let resolver = policy(for: collection).resolver(in: resolvers)
            else { continue }
            let held = try await storage.records(in: collection, where: DocumentFilter(includeDeleted: true), limit: nil)
                .filter { $0.record.holdsSiblings }
                .map { DocumentKey(collection: collection, id: $0.id) }
            guard !held.isEmpty else { continue }
            let replicaID = writerID
            let count = LockedBox(0)
            try await exclusively { () async throws(WeftError) in
                _ = try await storage.commitLocalWrites(reading: held, maxQueueBytes: Int.max) { records throws(WeftError) in
                    var writes = [LocalWrite]()
                    for key in held {
                        guard let record = records[key], record.holdsSiblings else { continue }
                        let result = try record.resolvingSiblings(with: resolver)
                        var version = result.version
                        version.increment(replicaID)
                        writes.append(LocalWrite(key: key, record: DocumentRecord(body: result.body, deletion: result.deletion, version: version)))
                    }
                    count.set(writes.count)
                    return writes
                }
            }
            resolved += count.get()
        }
        if resolved > 0 { logger.notice("resolved siblings held since before their resolver was registered", metadata: ["documents": "\(resolved)"]) }
        return resolved
    }

    // MARK: Sessions and identity

    /// The handshake that opens this session with a server (``WeftWire/HelloRequest``).
    public func helloRequest() async throws(WeftError) -> HelloRequest {
        let metadata = try await storage.metadata()
        return HelloRequest(
            replica: replicaID, confirmedEpoch: metadata.confirmedEpoch, epoch: sessionEpoch,
            acknowledgedThrough: metadata.acknowledgedThrough)
    }

    /// The server confirmed this session: it is recorded as the file's confirmed session, later
    /// edits are made as ``replicaID``, and the database's policies govern merges from now on.
    public func confirmSession(_ policies: ServerPolicies) async throws(WeftError) {
        learnedPolicies.withLock { $0 = policies }
        guard !isVerified else { return }
        try await exclusively { () async throws(WeftError) in
            try await storage.saveConfirmedEpoch(sessionEpoch)
            isVerified = true
            if writerID != replicaID {
                writerID = replicaID
                clock = HybridLogicalClock(
                    replica: writerID, resumingAfter: clock.last, timeSource: timeSource,
                    maximumForwardDrift: configuration.maximumClockDrift)
            }
        }
        for (collection, declared) in policies.collections.sorted(by: { $0.key < $1.key }) {
            if let configured = configuration.collectionPolicies[collection], configured != declared {
                logger.warning(
                    "the server declares another policy for a collection than this replica's configuration; the server's applies",
                    metadata: ["collection": "\(collection)", "server": "\(declared)", "configured": "\(configured)"])
            }
        }
        let missing = policies.resolverNames.filter { resolvers[$0] == nil }
        if !missing.isEmpty {
            logger.error(
                "the server names custom resolvers this replica does not have: their siblings stay readable (as their join) and writable",
                metadata: ["resolvers": "\(missing.joined(separator: ", "))"])
        }
    }

    /// The server found this file forked: another copy of it (a backup it was restored from, a
    /// copy on another device) spoke to the server since its last confirmed session. The replica
    /// takes a new identity, so nothing it sends can be taken for the other copy's history; its
    /// queued changes go out under the new identity. Edits of this session were made with a
    /// session identity (``writerID``) and need nothing.
    public func takeNewIdentity() async throws(WeftError) {
        try await exclusively { () async throws(WeftError) in
            let old = replicaID
            let fresh = ReplicaID.random()
            try await storage.replaceIdentity(with: fresh)
            identity.withLock { $0 = fresh }
            isVerified = false
            logger.warning(
                "this replica's file is not the latest copy of its history (restored, copied, or its last commits lost): new identity",
                metadata: ["old": "\(old)", "new": "\(fresh)"])
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

    // MARK: Remote changes

    /// Applies changes pulled from the server: each is merged into the local record by
    /// ``DocumentMerge`` under its collection's policy, conflicts go to the conflict log, and the
    /// pull cursor moves to `cursor`, all in one transaction. Siblings this replica resolves
    /// (``MergeKind/resolved``) are queued, to be pushed like a local write. Observers see each change that did
    /// something, with origin ``ReplicaChange/Origin/remote``.
    ///
    /// Applying the same page twice changes nothing the second time.
    @discardableResult
    public func applyRemote(_ changes: [(key: DocumentKey, record: DocumentRecord)], through cursor: UInt64)
        async throws(WeftError) -> [AppliedRemoteChange]
    {
        let resolvers = resolvers
        let replicaID = writerID
        // The server's log holds its record after each change, each covering the one before, so
        // only a key's last change in the page matters (an earlier one may be stale siblings).
        var lastIndex = [DocumentKey: Int](minimumCapacity: changes.count)
        for (index, change) in changes.enumerated() { lastIndex[change.key] = index }
        let changes = lastIndex.count == changes.count ? changes : changes.indices.filter { lastIndex[changes[$0].key] == $0 }.map { changes[$0] }
        let applied = try await exclusively { () async throws(WeftError) -> [AppliedRemoteChange] in
            try await storage.applyRemoteChanges(changes, through: cursor) { local, key, remote throws(WeftError) in
                var result = try DocumentMerge.merge(
                    local: local, remote: remote, key: key, policy: self.policy(for: key.collection), resolvers: resolvers,
                    equalVersions: .takeRemote)
                if result.kind == .resolved {
                    // Resolving siblings is this replica's write: count it, so the result
                    // strictly follows every sibling and the server takes it as a fast-forward.
                    var version = result.record.version
                    version.increment(replicaID)
                    result.record = DocumentRecord(body: result.record.body, deletion: result.record.deletion, version: version)
                    result.conflict?.winner = result.record
                }
                return result
            }
        }
        for change in applied where change.record.holdsSiblings {
            logger.warning(
                "siblings wait for a resolver this replica does not have; reads show their join",
                metadata: ["key": "\(change.key)", "policy": "\(policy(for: change.key.collection))"])
        }
        for change in applied where change.kind == .repaired {
            logger.warning(
                "a pulled version had this replica's version vector but other contents; took the server's",
                metadata: ["key": "\(change.key)"])
        }
        for change in applied where change.kind != .unchanged {
            // Later local stamps must follow the stamps this replica has now seen.
            _ = try? clock.receive(max(change.record.lastStamp, change.record.body.greatestStamp ?? change.record.lastStamp))
            publish(ReplicaChange(key: change.key, origin: .remote, isDeleted: change.record.isDeleted, stamp: change.record.lastStamp))
        }
        return applied
    }

    /// The most recent conflicts this replica resolved, newest first.
    public func conflicts(limit: Int = 100) async throws(WeftError) -> [ConflictRecord] {
        try await storage.conflicts(limit: limit)
    }

    // MARK: Clock skew

    /// Repairs the queued writes a server refused because this replica's clock ran ahead
    /// (``SyncError/Kind/clockSkew``), once the device's clock is right again.
    ///
    /// If the physical clock still runs more than `bound` ahead of `serverTime`, nothing changes
    /// and it returns `false`: the replica stays refused. Otherwise every queued record's
    /// register stamps above `serverTime + bound` (the refused ones, which no one else has) take
    /// new stamps at `serverTime + bound`, and the replica's clock resumes after them, so later
    /// writes still order after every stored one. A fast clock thus wins conflicts for at most
    /// `bound` after it is fixed, never indefinitely.
    ///
    /// - Returns: whether the clock is right (and any refused writes were repaired).
    public func repairClockSkew(serverTimeMilliseconds serverTime: UInt64, bound: UInt64) async throws(WeftError) -> Bool {
        let physical = timeSource.currentMilliseconds()
        guard physical <= serverTime &+ bound else { return false }
        let limit = HLCTimestamp(wallMilliseconds: serverTime &+ bound, counter: UInt32.max, replica: ReplicaID(high: .max, low: .max))
        let entries = try await storage.entries()
        let skewed = entries.filter { $0.record.lastStamp > limit }.map(\.key)
        let replicaID = writerID
        let drift = configuration.maximumClockDrift
        try await exclusively { () async throws(WeftError) in
            // Stamps for the repaired writes: at the limit, counting up.
            var repairClock = HybridLogicalClock(
                replica: replicaID,
                resumingAfter: HLCTimestamp(wallMilliseconds: serverTime &+ bound, counter: 0, replica: replicaID),
                timeSource: FixedTimeSource(milliseconds: serverTime &+ bound), maximumForwardDrift: drift)
            let stamps = skewed.map { _ in repairClock.now() }
            if !skewed.isEmpty {
                _ = try await storage.commitLocalWrites(reading: skewed, maxQueueBytes: Int.max) { records throws(WeftError) in
                    zip(skewed, stamps).compactMap { key, stamp in
                        guard let record = records[key], record.lastStamp > limit else { return nil }
                        let deletion = record.deletion.stamp > limit ? LWWRegister(record.deletion.value, stamp: stamp) : record.deletion
                        return LocalWrite(
                            key: key,
                            record: DocumentRecord(body: record.body.restamped(above: limit, to: stamp), deletion: deletion, version: record.version))
                    }
                }
            }
            // The clock resumes after the repaired stamps (or at the limit), never above it.
            let resume = stamps.last ?? HLCTimestamp(wallMilliseconds: min(clock.last.wallMilliseconds, serverTime &+ bound), counter: 0, replica: replicaID)
            if clock.last > resume || !stamps.isEmpty {
                clock = HybridLogicalClock(replica: replicaID, resumingAfter: resume, timeSource: timeSource, maximumForwardDrift: drift)
                try await storage.saveLastStamp(resume)
            }
        }
        return true
    }

    /// Changes the server refused for good, newest first (see ``DeadLetter``).
    public func deadLetters(limit: Int = 100) async throws(WeftError) -> [DeadLetter] {
        try await storage.deadLetters(limit: limit)
    }

    /// The server sequence of the last pulled change applied.
    public func pullCursor() async throws(WeftError) -> UInt64 { try await storage.metadata().pullCursor }

    // MARK: Writing

    /// One write waiting to be committed.
    struct Operation: Sendable {
        let key: DocumentKey
        let expectation: Expectation
        let deleting: Bool
        let edit: @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    }

    enum Expectation: Sendable { case mustExist, mustNotExist, any }

    private var writing = false
    private var writeWaiters: [CheckedContinuation<Void, Never>] = []

    /// Runs `body` with no other write of this replica in progress, so each write reads the
    /// record the previous one committed (the actor alone would interleave at suspension points).
    private func exclusively<T>(_ body: () async throws(WeftError) -> T) async throws(WeftError) -> T {
        if writing {
            await withCheckedContinuation { writeWaiters.append($0) }
        } else {
            writing = true
        }
        defer {
            if writeWaiters.isEmpty {
                writing = false
            } else {
                writeWaiters.removeFirst().resume()
            }
        }
        return try await body()
    }

    /// Commits `operations` in one transaction: each reads the record the previous one left,
    /// edits it with its own stamp, and all records and queue entries are stored atomically.
    func commit(_ operations: [Operation]) async throws(WeftError) -> [DocumentRecord] {
        try await commitWrites(operations).writes.map(\.record)
    }

    /// ``commit(_:)``, with the record each write stored, the record before it and the sequence
    /// number of its queue entry.
    func commitReturningSequences(_ operations: [Operation]) async throws(WeftError)
        -> [(record: DocumentRecord, previous: DocumentRecord?, sequence: UInt64)]
    {
        let committed = try await commitWrites(operations)
        // The record before each write: the stored one for a key's first write in the batch,
        // the previous write's for the next ones.
        var previous = committed.before
        var result = [(record: DocumentRecord, previous: DocumentRecord?, sequence: UInt64)]()
        result.reserveCapacity(committed.writes.count)
        for (write, sequence) in zip(committed.writes, committed.sequences) {
            result.append((write.record, previous[write.key], sequence))
            previous[write.key] = write.record
        }
        return result
    }

    /// What one commit stored: the writes, the records they read, and their queue sequences.
    struct CommittedWrites: Sendable {
        var writes: [LocalWrite] = []
        var before: [DocumentKey: DocumentRecord] = [:]
        var sequences: [UInt64] = []
    }

    /// The commit itself; callers take from the result what they need.
    func commitWrites(_ operations: [Operation]) async throws(WeftError) -> CommittedWrites {
        guard !operations.isEmpty else { return CommittedWrites() }
        return try await exclusively { () async throws(WeftError) -> CommittedWrites in
            // Stamps come from the actor's clock now; the edits run inside the storage's
            // transaction, on the records it reads there.
            let stamps = operations.map { _ in clock.now() }
            let replicaID = writerID
            let policies = operations.map { policy(for: $0.key.collection) }
            let resolvers = resolvers
            let box = LockedBox(CommittedWrites())
            let sequences = try await storage.commitLocalWrites(
                reading: operations.map(\.key), maxQueueBytes: configuration.maxQueueBytes
            ) { records throws(WeftError) in
                let computed = try Self.apply(
                    operations, stamps: stamps, replicaID: replicaID, policies: policies, resolvers: resolvers, to: records)
                box.set(CommittedWrites(writes: computed, before: records))
                return computed
            }
            var committed = box.get()
            committed.sequences = sequences
            // The clock follows the stamps the writes used (a write may have ordered itself
            // after a record stamped ahead of the clock).
            var newest = clock.last
            // By index: a for-in loop would copy (retain and release) every record.
            for index in committed.writes.indices where committed.writes[index].record.lastStamp > newest {
                newest = committed.writes[index].record.lastStamp
            }
            if newest > clock.last { _ = try? clock.receive(newest) }
            if !observers.isEmpty {
                for write in committed.writes {
                    publish(
                        ReplicaChange(
                            key: write.key, origin: .local, isDeleted: write.record.isDeleted, stamp: write.record.lastStamp))
                }
            }
            return committed
        }
    }

    /// Undoes a write-through write the server did not confirm, if the document is still as
    /// that write left it: a compensating write stores the content from before it (or a
    /// tombstone if there was none) as a new version, made of new edits (new dots), so the undo also wins over the write on
    /// a server that applied it late. Returns `false` (changing nothing) if another write has
    /// changed the document since.
    func compensate(_ key: DocumentKey, written: DocumentRecord, previous: DocumentRecord?) async throws(WeftError) -> Bool {
        try await exclusively { () async throws(WeftError) -> Bool in
            let stamp = clock.now()
            let replicaID = writerID
            let undone = LockedBox(false)
            _ = try await storage.commitLocalWrites(reading: [key], maxQueueBytes: Int.max) { records throws(WeftError) in
                guard records[key] == written else { return [] }
                var version = written.version
                version.increment(replicaID)
                let deletion = written.deletion.merged(with: LWWRegister(previous?.isDeleted ?? true, stamp: stamp))
                // The earlier content, written again as new edits: restoring the earlier body
                // itself would restore its causal context too, and the next write would reuse
                // the undone write's dots.
                var body = written.body
                body.assign(matching: previous.map { $0.isDeleted ? Document() : $0.body } ?? Document(), at: stamp)
                undone.set(true)
                return [LocalWrite(key: key, record: DocumentRecord(body: body, deletion: deletion, version: version))]
            }
            if undone.get() {
                publish(ReplicaChange(key: key, origin: .local, isDeleted: previous?.isDeleted ?? true, stamp: stamp))
            }
            return undone.get()
        }
    }

    /// The writes `operations` make on `records`: a pure function, run inside the transaction.
    static func apply(
        _ operations: [Operation], stamps: [HLCTimestamp], replicaID: ReplicaID, policies: [ConflictPolicy] = [],
        resolvers: ResolverRegistry = ResolverRegistry(), to records: [DocumentKey: DocumentRecord]
    ) throws(WeftError) -> [LocalWrite] {
        // A key's first write edits the stored record; a later write to the same key in this
        // commit edits the record the one before it left (kept in `latest` by key number).
        var numbering = KeyNumbering(capacity: operations.count)
        let numbers = operations.map { numbering.number(of: $0.key) }
        let repeats = numbering.count < operations.count
        var latest = [Int: DocumentRecord]()
        var seen = 0
        var writes = [LocalWrite]()
        writes.reserveCapacity(operations.count)
        for (position, (operation, (clockStamp, number))) in zip(operations, zip(stamps, numbers)).enumerated() {
            let policy = position < policies.count ? policies[position] : .crdt
            var fieldRules = [String: FieldRule]()
            if case .fields(let rules) = policy { fieldRules = rules }
            let key = operation.key
            var current: DocumentRecord?
            if number == seen {
                current = records[key]
                seen += 1
            } else {
                current = latest[number]
            }
            if let held = current, held.holdsSiblings {
                // A write on siblings resolves them first: with the collection's resolver when
                // this replica has it, else by their join, which keeps every edit. The write's
                // version then covers every sibling, and the server takes it as a fast-forward.
                current = try held.resolvingSiblings(with: policy.resolver(in: resolvers))
            }
            // A write orders after the record it edits, even if that record carries a stamp
            // ahead of this replica's clock (received from a faster clock within the drift
            // bound): otherwise the replica's own later write would lose to it.
            var stamp = clockStamp
            if let last = current?.lastStamp, last >= stamp {
                guard let next = last.successor(for: replicaID) else {
                    throw .corrupt("\(key) carries the stamp \(last), at the end of representable time: no write can follow it")
                }
                stamp = next
            }
            let live = current.map { !$0.isDeleted } ?? false
            switch operation.expectation {
            case .mustExist where !live: throw .documentNotFound(key)
            case .mustNotExist where live: throw .documentExists(key)
            default: break
            }
            var editor: DocumentEditor
            if let body = current?.body {
                editor = DocumentEditor(document: body, stamp: stamp, rules: fieldRules)
            } else {
                // A new document: room for a typical record's fields, so the first writes do not
                // grow the field table step by step.
                var fresh = Document()
                fresh.reserveCapacity(8)
                editor = DocumentEditor(document: fresh, stamp: stamp, rules: fieldRules)
            }
            if operation.deleting || !live {
                // A delete clears the fields (the tombstone keeps only the flag and the version);
                // re-creating a deleted document starts it empty.
                for field in editor.document.keys { editor.removeField(field) }
            }
            if !operation.deleting { try operation.edit(&editor) }
            guard editor.document[DocumentRecord.siblingsField] == nil else {
                throw .invalidArgument("the field name \(DocumentRecord.siblingsField.debugDescription) is reserved for Weft (\(key))")
            }
            var version = current?.version ?? VersionVector()
            version.increment(replicaID)
            // The editor's document already is the old body joined with the edits' deltas (each
            // mutator's delta reproduces its result: a law the checkers test), so the record is
            // built from it directly rather than by joining a delta.
            let deletion = LWWRegister(operation.deleting, stamp: stamp)
            let record = DocumentRecord(
                body: editor.document, deletion: current.map { $0.deletion.merged(with: deletion) } ?? deletion,
                version: version)
            if repeats { latest[number] = record }
            writes.append(LocalWrite(key: key, record: record))
        }
        return writes
    }

    func write(
        _ key: DocumentKey, expectation: Expectation, deleting: Bool = false,
        _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) async throws(WeftError) -> DocumentRecord {
        let records = try await commit([Operation(key: key, expectation: expectation, deleting: deleting, edit: edit)])
        guard let record = records.first else { throw .storage("the write produced no record") }
        return record
    }

    /// Commits several writes, to any collections, in one transaction: all or none.
    ///
    /// ```swift
    /// try await replica.batch { batch in
    ///     for reading in readings {
    ///         try batch.upsert("readings", reading.id) { $0.set("celsius", to: .double(reading.value)) }
    ///     }
    /// }
    /// ```
    ///
    /// `build` runs once, at once. The edit closures it collects run inside the commit, **and
    /// may run more than once**: a storage may first run a batch as if none of its documents
    /// were stored (the SQLite storage does, for large batches while recent batches only
    /// created documents) and run it again with the stored documents if that was wrong. Only the
    /// last run is stored. So an edit closure should depend on nothing but the editor it gets,
    /// and an `upsert` closure must cope with an empty document (as it must anyway, to create
    /// one).
    ///
    /// - Throws: an error thrown by `build`, or the first ``WeftError`` of any write
    ///   (``WeftError/Kind/documentExists``, ``WeftError/Kind/queueFull``…); then nothing of the
    ///   batch was written.
    public func batch(_ build: (inout ReplicaBatch) throws -> Void) async throws {
        var batch = ReplicaBatch()
        try build(&batch)
        _ = try await commitWrites(batch.operations)
    }
}

/// Writes collected by ``Replica/batch(_:)`` and committed together.
///
/// Each edit closure runs inside the commit, possibly more than once (see
/// ``Replica/batch(_:)``): it should only edit the document it is given.
public struct ReplicaBatch: Sendable {
    var operations: [Replica.Operation] = []

    private func key(_ collection: String, _ id: String) throws(WeftError) -> DocumentKey {
        DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id))
    }

    /// Creates a document; the batch fails if it exists.
    public mutating func create(
        _ collection: String, _ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) throws(WeftError) {
        operations.append(.init(key: try key(collection, id), expectation: .mustNotExist, deleting: false, edit: edit))
    }

    /// Updates a document; the batch fails if it does not exist.
    public mutating func update(
        _ collection: String, _ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) throws(WeftError) {
        operations.append(.init(key: try key(collection, id), expectation: .mustExist, deleting: false, edit: edit))
    }

    /// Creates or updates a document.
    public mutating func upsert(
        _ collection: String, _ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) throws(WeftError) {
        operations.append(.init(key: try key(collection, id), expectation: .any, deleting: false, edit: edit))
    }

    /// Deletes a document; the batch fails if it does not exist.
    public mutating func delete(_ collection: String, _ id: String) throws(WeftError) {
        operations.append(.init(key: try key(collection, id), expectation: .mustExist, deleting: true, edit: { _ in }))
    }

    /// Stores a `Codable` value as a document, writing only the fields that differ.
    public mutating func put<T: Encodable & Sendable>(_ collection: String, _ id: String, _ value: T) throws(WeftError) {
        operations.append(
            .init(key: try key(collection, id), expectation: .any, deleting: false) { editor throws(WeftError) in
                try editor.replace(with: value)
            })
    }
}

/// A value handed out of a `@Sendable` closure that runs exactly once, synchronously.
final class LockedBox<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    func set(_ value: Value) { storage.withLock { $0 = value } }
    func get() -> Value { storage.withLock { $0 } }
}

/// A time source that always reads the same time.
struct FixedTimeSource: PhysicalTimeSource {
    let milliseconds: UInt64
    func currentMilliseconds() -> UInt64 { milliseconds }
}
