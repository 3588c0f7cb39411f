import WeftCRDT

/// Custom conflict resolvers by name: the names `conflict_resolution = "custom"` and
/// `resolver = "…"` select in the configuration. Given a ``ReplicaConfiguration``
/// `configuration` whose policies name `inventoryLevels`:
///
/// ```swift
/// var resolvers = ResolverRegistry()
/// resolvers.register("inventoryLevels") { a, b in
///     // The larger stock wins whole; equal stocks are decided by the bodies' bytes, so the
///     // result does not depend on which version comes first (a join, see `ConflictResolver`).
///     let (x, y) = (a.body.int("stock") ?? 0, b.body.int("stock") ?? 0)
///     if x != y { return x > y ? a.body : b.body }
///     return a.body.encoded().lexicographicallyPrecedes(b.body.encoded()) ? b.body : a.body
/// }
/// let replica = try await Replica(storage: MemoryReplicaStorage(), configuration: configuration, resolvers: resolvers)
/// ```
///
/// A replica refuses to open with a configuration naming a resolver that is not registered. A
/// server without a collection's resolver keeps concurrent versions as siblings for a replica
/// that has it.
public struct ResolverRegistry: Sendable {
    private var resolvers: [String: any ConflictResolver] = [:]

    /// An empty registry.
    public init() {}

    /// Registers `resolver` under `name`, replacing any resolver of that name.
    public mutating func register(_ name: String, _ resolver: some ConflictResolver) { resolvers[name] = resolver }

    /// Registers a resolver function under `name`.
    public mutating func register(_ name: String, _ body: @escaping @Sendable (DocumentRecord, DocumentRecord) -> Document) {
        resolvers[name] = ResolverFunction(body)
    }

    /// The resolver registered under `name`.
    public subscript(name: String) -> (any ConflictResolver)? { resolvers[name] }

    /// The registered names, sorted.
    public var names: [String] { resolvers.keys.sorted() }

    /// Checks that every custom policy of `configuration` names a registered resolver.
    /// - Throws: ``WeftError/Kind/invalidArgument``, naming the collection and the resolver.
    public func validate(_ configuration: ReplicaConfiguration) throws(WeftError) {
        var policies = [("conflict_resolution", configuration.conflictResolution)]
        for (collection, policy) in configuration.collectionPolicies.sorted(by: { $0.key < $1.key }) {
            policies.append(("collection \(collection)", policy))
        }
        for (scope, policy) in policies {
            guard case .custom(let name) = policy, resolvers[name] == nil else { continue }
            let known = names.isEmpty ? "none is registered" : "registered: \(names.joined(separator: ", "))"
            throw .invalidArgument("\(scope) names the custom resolver \(name.debugDescription), which is not registered (\(known))")
        }
    }
}
