/// What a record claims to have seen of other replicas' writes, and how a server limits those
/// claims to what it has seen itself.
///
/// A record says which writes it has seen in two places: its ``DocumentRecord/version`` (how
/// many writes of each replica) and its body's ``Document/context`` (which dots). Both decide
/// what survives a merge: a version that dominates another replaces it, and a dot the context
/// covers but the body lacks counts as removed. A record that claims more than its writer saw
/// (a bug, or a forgery) would therefore erase the other replica's later writes. A server
/// limits what a pushed record claims about other replicas to what it holds (see
/// ``limitingClaims(about:to:)``).
extension DocumentRecord {
    /// Every replica this record claims to have seen writes of: its version's entries and its
    /// body context's.
    /// - Complexity: O(*v* + *c*) in the version's entries and the context's size.
    public var claimedReplicas: Set<ReplicaID> {
        var replicas = Set(version.sortedEntries.map(\.replica))
        for entry in body.context.vector.sortedEntries { replicas.insert(entry.replica) }
        for dot in body.context.cloud { replicas.insert(dot.replica) }
        return replicas
    }

    /// This record with what it claims about `replicas` limited to what `witness` claims, or
    /// `nil` if it claims nothing more.
    ///
    /// For each replica *r* in `replicas`:
    /// - the version's entry for *r* is at most `witness`'s;
    /// - with `includingContext`, the body context keeps a dot of *r* only if `witness`'s
    ///   context has it or the body itself holds it (a write relayed with its content).
    ///
    /// The body's fields are unchanged, and every dot they hold stays covered by the context.
    /// Limit the context only where the witness's context grows monotonically, as it does
    /// under policies that join bodies; a policy that picks one whole body (last writer wins,
    /// most custom resolvers) may keep a smaller context than it once held, and never joins
    /// bodies, so a context claim cannot remove anything there.
    ///
    /// ## Laws
    /// - The result claims nothing about `replicas` beyond `witness` and its own content.
    /// - A record that claims no more than `witness` about `replicas` is returned as `nil`
    ///   (unchanged): limiting never touches an honest relay of what `witness` holds.
    /// - Entries of replicas not in `replicas` are kept as they are.
    ///
    /// - Complexity: O(*d*) in the dots of the body when a claim is limited; O(*v* + *c*)
    ///   otherwise.
    public func limitingClaims(about replicas: Set<ReplicaID>, to witness: DocumentRecord?, includingContext: Bool = true) -> DocumentRecord? {
        guard !replicas.isEmpty else { return nil }
        let seenVersion = witness?.version ?? VersionVector()
        let seenContext = witness?.body.context ?? CausalContext()
        let context = body.context
        // Which replicas the record claims more of than the witness.
        var overVersion = [ReplicaID]()
        for entry in version.sortedEntries where replicas.contains(entry.replica) && entry.counter > seenVersion[entry.replica] {
            overVersion.append(entry.replica)
        }
        var overContext = Set<ReplicaID>()
        for entry in context.vector.sortedEntries
        where includingContext && replicas.contains(entry.replica) && entry.counter > seenContext.vector[entry.replica] {
            // Beyond the witness's contiguous part; the witness's cloud may still hold them all.
            let beyond = (seenContext.vector[entry.replica] + 1)...entry.counter
            if beyond.count > seenContext.cloud.count || !beyond.allSatisfy({ seenContext.contains(Dot(replica: entry.replica, counter: $0)) }) {
                overContext.insert(entry.replica)
            }
        }
        for dot in context.cloud where includingContext && replicas.contains(dot.replica) && !seenContext.contains(dot) {
            overContext.insert(dot.replica)
        }
        guard !overVersion.isEmpty || !overContext.isEmpty else { return nil }

        var limited = self
        for replica in overVersion { limited.version[replica] = seenVersion[replica] }
        if !overContext.isEmpty {
            // The dots of those replicas the body holds: a claim the content backs stays.
            var held = Set<Dot>()
            body.forEachDot { if overContext.contains($0.replica) { held.insert($0) } }
            var vector = context.vector
            var cloud = Set<Dot>()
            for dot in context.cloud where !overContext.contains(dot.replica) { cloud.insert(dot) }
            for replica in overContext {
                let claimed = context.vector[replica]
                let seen = seenContext.vector[replica]
                vector[replica] = min(claimed, seen)
                // Beyond that: the dots both claimed and either seen by the witness or held.
                for dot in seenContext.cloud where dot.replica == replica && context.contains(dot) { cloud.insert(dot) }
                for dot in held where dot.replica == replica { cloud.insert(dot) }
                for dot in context.cloud where dot.replica == replica && dot.counter <= seen { cloud.insert(dot) }
            }
            limited.body.context = CausalContext(vector: vector, cloud: cloud)
        }
        return limited
    }
}

extension Document {
    /// Calls `body` with every dot the document's fields hold, nested fields included.
    func forEachDot(_ body: (Dot) -> Void) {
        for store in fields.values { store.forEachDot(body) }
    }
}
