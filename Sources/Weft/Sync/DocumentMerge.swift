import WeftCRDT

/// The one merge: every place that combines two versions of a document (a replica applying a
/// pulled change, the server applying a push, the PostgreSQL path) calls ``merge(local:remote:key:policy:resolvers:equalVersions:remoteClaimsLimited:joiningWhenDominated:)``.
///
/// Version vectors decide whether there is a conflict at all:
///
/// 1. `remote < local`: the remote version is already included; nothing changes. Equal
///    vectors with equal contents change nothing either; equal vectors with different
///    contents (``MergeKind/repaired``) keep the server's version (`equalVersions`).
/// 2. `local ≤ remote`: the remote version has seen everything local; it replaces the local one
///    (a fast-forward). Replacing rather than joining matters under last-writer-wins: the remote
///    version may be the result of a resolution that dropped a loser's fields on purpose.
///
///    A pushed record whose claims the server had to limit (`remoteClaimsLimited`, see
///    `DocumentRecord`'s `limitingClaims(about:to:includingContext:)` in WeftCRDT)
///    is not trusted to be dominated: unless it still dominates, the policy resolves it as
///    concurrent, so a write relayed after the server lost it (a restore) is not dropped. The
///    server's vector then counts fewer writes than its body holds, so the server
///    (`joiningWhenDominated`) joins a dominating version under a policy that joins bodies
///    (``ConflictPolicy/joinsBodies``) rather than replacing its own: for honest versions the
///    join is the dominating version; it differs (``MergeKind/joined``) only where the server's
///    body holds such a write, which it keeps. Replicas then take the server's record, whose
///    vector equals theirs, by the equal-vectors rule.
/// 3. Concurrent: the policy decides, every policy as a `ConflictResolver`
///    (``ConflictPolicy/resolver(in:)``, `DocumentRecord.resolved(with:by:)`):
///    ``ConflictPolicy/crdt`` joins the two bodies (registers by stamp, counters add, sets
///    merge); ``ConflictPolicy/lastWriterWins`` keeps the whole body whose last write has the
///    greater HLC stamp; ``ConflictPolicy/fields(_:)`` joins and lets the rules choose what
///    readers see; ``ConflictPolicy/custom(resolver:)`` calls the registered resolver, or, where
///    it is missing, keeps both versions as siblings. The result's version vector is the join of
///    both, so it dominates both and the conflict is resolved once.
///
/// ## Laws
/// For every policy the merge is commutative, idempotent and associative on versions made by
/// real replicas (whose stamps follow causality), so replicas and the server converge whatever
/// order they exchange versions in. `Tests/WeftTests/DocumentMergeTests.swift` checks this.
public enum DocumentMerge {
    /// Merges `remote` into `local`.
    ///
    /// - Throws: ``WeftError/Kind/invalidArgument`` for ``ConflictPolicy/custom(resolver:)`` when
    ///   `resolvers` has no resolver of that name.
    /// - Complexity: O(*v*) to compare version vectors, plus the size of the documents when they conflict.
    public static func merge(
        local: DocumentRecord?, remote: DocumentRecord, key: DocumentKey, policy: ConflictPolicy,
        resolvers: ResolverRegistry = ResolverRegistry(), equalVersions: EqualVersionsRule = .keepLocal,
        remoteClaimsLimited: Bool = false, joiningWhenDominated: Bool = false
    ) throws(WeftError) -> (record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?)
    {
        // Siblings are resolved by whoever can: the custom resolver where it is registered, or
        // the policy itself where the collection's policy is not custom (any more). Without
        // either they are kept, and readers see their join (`DocumentRecord.resolvingSiblings`).
        if let siblings = try remote.siblingVersions(), let resolver = policy.resolver(in: resolvers) {
            return try resolve(siblings: siblings, of: remote, local: local, key: key, policy: policy, resolver: resolver)
        }
        guard let local else { return (remote, .fastForward, nil) }
        var order = remote.version.compare(to: local.version)
        if remoteClaimsLimited && (order == .before || order == .equal) {
            // The remote version's vector was cut to what the server holds, so "already seen"
            // is not known: it may hold a write the server lost. The policy decides.
            order = .concurrent
        }
        switch order {
        case .before:
            return (local, .unchanged, nil)
        case .equal:
            // Equal vectors, different contents: two resolutions of the same versions that
            // disagree, or a reused identity. The server's version wins on both sides, so no
            // replica stays different from the server; the caller logs it.
            if local == remote { return (local, .unchanged, nil) }
            return (equalVersions == .keepLocal ? local : remote, .repaired, nil)
        case .after:
            guard joiningWhenDominated && policy.joinsBodies else { return (remote, .fastForward, nil) }
            let joined = remote.merged(with: local)
            return joined == remote ? (remote, .fastForward, nil) : (joined, .joined, nil)
        case .concurrent:
            let winner: DocumentRecord
            if let resolver = policy.resolver(in: resolvers) {
                winner = local.resolved(with: remote, by: resolver)
            } else {
                // A custom policy without its resolver (a server that does not link it): keep
                // both as siblings for a replica that has it.
                winner = try DocumentRecord.holding(siblings: [local, remote])
            }
            // A limited relay that added nothing is no conflict.
            if winner == local && remote.version.compare(to: local.version) != .concurrent { return (local, .unchanged, nil) }
            return (winner, .conflict, ConflictRecord(key: key, local: local, remote: remote, winner: winner, policy: policy))
        }
    }

    /// Resolves the siblings a server kept, with the local version when it adds something.
    static func resolve(
        siblings: [DocumentRecord], of remote: DocumentRecord, local: DocumentRecord?, key: DocumentKey,
        policy: ConflictPolicy, resolver: any ConflictResolver
    ) throws(WeftError) -> (record: DocumentRecord, kind: MergeKind, conflict: ConflictRecord?) {
        var candidates = siblings
        if let local {
            switch local.version.compare(to: remote.version) {
            case .after, .equal:
                // Resolved here already, yet the server still holds the siblings: the resolution
                // did not reach it (a store restored from a backup lost it, or it limited the
                // claims of a relay of it). Resolve again, as a new write of this replica (the
                // caller counts it), which the server takes as a fast-forward.
                guard !local.holdsSiblings else { return (local, .unchanged, nil) }
                return (local, .resolved, nil)
            case .concurrent: candidates.append(local)
            case .before: break  // every write of it is in some sibling
            }
        }
        let winner = DocumentRecord.resolving(candidates, with: resolver)
        return (winner, .resolved, ConflictRecord(key: key, local: local ?? remote, remote: remote, winner: winner, policy: policy))
    }
}
