import WeftCRDT
import WeftWire

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

extension ServerPolicies {
    /// The declaration as a hello answer carries it.
    public var wire: (defaultPolicy: WirePolicy, collections: [(name: String, policy: WirePolicy)]) {
        (Self.wire(defaultPolicy), collections.sorted { $0.key < $1.key }.map { ($0.key, Self.wire($0.value)) })
    }

    /// Reads a declaration from a hello answer.
    /// - Throws: ``WeftError/Kind/invalidArgument`` for a policy or rule this build does not know.
    public init(wire response: HelloResponse) throws(WeftError) {
        var collections = [String: ConflictPolicy]()
        for (name, policy) in response.collections { collections[name] = try Self.policy(policy) }
        self.init(defaultPolicy: try Self.policy(response.defaultPolicy), collections: collections)
    }

    static func wire(_ policy: ConflictPolicy) -> WirePolicy {
        switch policy {
        case .lastWriterWins: return WirePolicy(name: "lww")
        case .crdt: return WirePolicy(name: "crdt")
        case .custom(let resolver): return WirePolicy(name: "custom", resolver: resolver)
        case .fields(let rules): return WirePolicy(name: "fields", rules: rules.sorted { $0.key < $1.key }.map { ($0.key, $0.value.rawValue) })
        }
    }

    static func policy(_ wire: WirePolicy) throws(WeftError) -> ConflictPolicy {
        switch wire.name {
        case "lww": return .lastWriterWins
        case "crdt": return .crdt
        case "custom": return .custom(resolver: wire.resolver)
        case "fields":
            var rules = [String: FieldRule]()
            for (field, name) in wire.rules {
                guard let rule = FieldRule(rawValue: name) else { throw .invalidArgument("the server declares an unknown field rule \(name.debugDescription)") }
                rules[field] = rule
            }
            return .fields(rules)
        default: throw .invalidArgument("the server declares an unknown conflict policy \(wire.name.debugDescription)")
        }
    }
}
