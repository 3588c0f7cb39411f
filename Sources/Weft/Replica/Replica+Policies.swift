import Logging
import Synchronization
import WeftCRDT
import WeftWire

// The policies in force (the server's once learned), what readers see, and siblings.
extension Replica {
    /// The conflict policy in force for `collection`: the one the server declared, once a sync
    /// has learned it, or else the configuration's.
    public nonisolated func policy(for collection: CollectionName) -> ConflictPolicy {
        learnedPolicies.withLock { $0?.policy(for: collection) } ?? configuration.policy(for: collection)
    }


    /// `body` as readers of `collection` see it: under field rules, each ruled register shows
    /// the write its rule chooses (`FieldRulesResolver`'s `presenting(_:)`).
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
            let count = LockedBox(0)
            try await exclusively { () async throws(WeftError) in
                let replicaID = writerID
                let floor = counterFloor(for: collection)
                _ = try await storage.commitLocalWrites(reading: held, maxQueueBytes: Int.max) { records throws(WeftError) in
                    var writes = [LocalWrite]()
                    for key in held {
                        guard let record = records[key], record.holdsSiblings else { continue }
                        var result = try record.resolvingSiblings(with: resolver)
                        result.reserveCounters(of: replicaID, through: floor)
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
}
