import WeftCRDT

/// What happened when a remote version of a document met the local one.
public enum MergeKind: String, Hashable, Sendable {
    /// The remote version had nothing the local one lacked.
    case unchanged
    /// The remote version had seen everything local: it replaces the local one.
    case fastForward
    /// Neither had seen all of the other: resolved by the collection's policy.
    case conflict
    /// The remote record held siblings (a server without the collection's resolver kept
    /// concurrent versions) and this replica resolved them: the result must be pushed.
    case resolved
    /// Both versions have the same version vector but different contents: two resolutions of
    /// the same concurrent versions that disagree (a resolver that is not a join), or a
    /// replica that reused its identity. The authority's version (the server's) is taken; the
    /// caller logs it.
    case repaired
    /// The remote version's vector dominated, yet the local version held writes it lacked: a
    /// server's record that took a relayed write its vector could not count (see
    /// `remoteClaimsLimited`). Under a policy that joins bodies the two were joined, so no write
    /// is dropped on a vector's word.
    case joined
    /// The server refused the change (the pusher may not write the document's channels): the
    /// stored record stays as it was, and the push answers the change as rejected. Only a
    /// server's merge closure gives it; stores store nothing for it.
    case refused
}

/// Which version wins when both have the same version vector but different contents (see
/// ``MergeKind/repaired``): the server's, always.
public enum EqualVersionsRule: Hashable, Sendable {
    /// Keep the local version: the caller is the server.
    case keepLocal
    /// Take the remote version: the caller is a replica, the remote version the server's.
    case takeRemote
}

/// A resolved conflict, kept in the conflict log on the replica and on the server.
public struct ConflictRecord: Hashable, Sendable {
    /// The document.
    public var key: DocumentKey
    /// The local version.
    public var local: DocumentRecord
    /// The remote version.
    public var remote: DocumentRecord
    /// The result.
    public var winner: DocumentRecord
    /// The policy that resolved it.
    public var policy: ConflictPolicy

    /// Creates a record.
    public init(
        key: DocumentKey, local: DocumentRecord, remote: DocumentRecord, winner: DocumentRecord,
        policy: ConflictPolicy
    ) {
        self.key = key
        self.local = local
        self.remote = remote
        self.winner = winner
        self.policy = policy
    }
}
