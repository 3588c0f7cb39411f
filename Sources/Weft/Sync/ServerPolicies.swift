import WeftCRDT

/// The conflict policies a server declares for one database: the policy of collections without
/// one of their own, and each named collection's.
///
/// The server is the authority on policies: a replica learns them when it connects
/// (``SyncTransport/hello(_:)``) and merges pulled changes under them, so every replica and the
/// server resolve the same versions the same way whatever each one's own configuration says.
public struct ServerPolicies: Hashable, Sendable {
    /// The policy of collections not named in ``collections``.
    public var defaultPolicy: ConflictPolicy
    /// Per-collection policies, by collection name.
    public var collections: [String: ConflictPolicy]

    /// Creates a declaration.
    public init(defaultPolicy: ConflictPolicy, collections: [String: ConflictPolicy] = [:]) {
        self.defaultPolicy = defaultPolicy
        self.collections = collections
    }

    /// The policy of `collection`.
    public func policy(for collection: CollectionName) -> ConflictPolicy { collections[collection.rawValue] ?? defaultPolicy }

    /// The custom resolvers the policies name, sorted.
    public var resolverNames: [String] {
        var names = Set<String>()
        for policy in [defaultPolicy] + Array(collections.values) {
            if case .custom(let name) = policy { names.insert(name) }
        }
        return names.sorted()
    }
}
