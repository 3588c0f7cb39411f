import WeftCRDT

extension ConflictPolicy {
    /// Whether concurrent versions are resolved by joining their bodies (``crdt`` and
    /// ``fields(_:)``), so a document's causal context only grows.
    public var joinsBodies: Bool {
        switch self {
        case .crdt, .fields: return true
        case .lastWriterWins, .custom: return false
        }
    }

    /// The resolver this policy resolves siblings with: the registered one for `custom` (`nil`
    /// if it is missing), or the policy's own rule as a resolver.
    public func resolver(in resolvers: ResolverRegistry) -> (any ConflictResolver)? {
        switch self {
        case .custom(let name): return resolvers[name]
        case .crdt: return JoinResolver()
        case .fields(let rules): return FieldRulesResolver(rules: rules)
        case .lastWriterWins: return LatestVersionResolver()
        }
    }
}

/// The `crdt` policy as a resolver: the join of the bodies.
struct JoinResolver: ConflictResolver {
    func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document { a.body.merged(with: b.body) }
}

/// The `lww` policy as a resolver: the body of the version whose last write is later (equal
/// stamps, which only misuse makes, by the bodies' bytes).
struct LatestVersionResolver: ConflictResolver {
    func resolve(_ a: DocumentRecord, _ b: DocumentRecord) -> Document {
        if a.lastStamp != b.lastStamp { return a.lastStamp > b.lastStamp ? a.body : b.body }
        return a.body.encoded().lexicographicallyPrecedes(b.body.encoded()) ? b.body : a.body
    }
}
