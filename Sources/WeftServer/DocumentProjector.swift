import Weft
import WeftCRDT

/// What a central store needs to keep each document's JSON projection
/// (`DocumentProjection` in Weft): each database's policies and the server's resolvers, the same
/// the one merge uses, so the projection shows what replicas of the collection show.
///
/// Stores that keep the projection beside the record (the SQLite and PostgreSQL stores: the
/// `doc` and `deleted` columns) compute it with ``projection(database:key:record:)`` in the
/// transaction that writes the record.
public struct DocumentProjector: Sendable {
    let policies: @Sendable (String) -> ServerPolicies
    let resolvers: ResolverRegistry
    /// The channels each collection's documents are in (`[server.channels]`).
    public let channels: ServerChannels
    /// Whether stores keep the projection at all: off only to measure what keeping it costs
    /// (the benchmark's baseline); stores then write rows as unprojected (`deleted` NULL).
    @_spi(Measuring) public var keepsProjection = true

    /// A projector for databases whose policies `policies` gives, resolving siblings with
    /// `resolvers`.
    public init(
        policies: @escaping @Sendable (String) -> ServerPolicies,
        resolvers: ResolverRegistry = ResolverRegistry(), channels: ServerChannels = ServerChannels()
    ) {
        self.policies = policies
        self.resolvers = resolvers
        self.channels = channels
    }

    /// Whether documents are in channels at all (some collection has templates): otherwise
    /// stores keep no channels, and only readers of every channel see documents.
    public var tracksChannels: Bool { !channels.collections.isEmpty }

    /// The channels of `record`, stored as document `key` of `database`, sorted; `nil` if the
    /// record is deleted (it keeps the channels it had) or no collection has channels.
    /// - Complexity: that of the projection, plus the templates'.
    public func channels(database: String, key: DocumentKey, record: DocumentRecord) -> [String]? {
        guard tracksChannels, !record.isDeleted else { return nil }
        guard channels.collections[key.collection] != nil else { return [] }
        return channelSet(database: database, key: key, record: record).sorted()
    }

    /// The channels of a live `record` of `key`, or the empty set for a deleted one.
    public func channelSet(database: String, key: DocumentKey, record: DocumentRecord) -> Set<String> {
        guard channels.collections[key.collection] != nil, !record.isDeleted,
            let value = value(database: database, key: key, record: record)
        else { return [] }
        return channels.channels(of: key.collection, projection: value)
    }

    /// The projector for databases whose every collection merges by CRDT join and no resolver.
    public static let plain = DocumentProjector(policies: { _ in ServerPolicies(defaultPolicy: .crdt) })

    /// The policy in force for `collection` of `database`.
    public func policy(database: String, collection: CollectionName) -> ConflictPolicy {
        policies(database).policy(for: collection)
    }

    /// The projection of `record`, stored as document `key` of `database`: its JSON text, or `nil`
    /// if the record is deleted.
    /// - Complexity: that of `DocumentProjection.text(of:policy:resolvers:)` in Weft.
    public func projection(database: String, key: DocumentKey, record: DocumentRecord) -> String? {
        guard keepsProjection else { return nil }
        return DocumentProjection.text(
            of: record, policy: policy(database: database, collection: key.collection), resolvers: resolvers)
    }

    /// ``projection(database:key:record:)`` as a value.
    public func value(database: String, key: DocumentKey, record: DocumentRecord) -> JSONValue? {
        DocumentProjection.value(
            of: record, policy: policy(database: database, collection: key.collection), resolvers: resolvers)
    }
}
