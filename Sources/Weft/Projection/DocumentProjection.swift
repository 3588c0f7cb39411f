import WeftCRDT

/// The one JSON projection of a stored document: what the central store keeps beside each record
/// (`doc`), what the server's document API answers and what the CLI prints.
///
/// The projection is the document as readers of its collection see it
/// (`Document.jsonValue` in WeftCRDT), after the collection's policy has had its say: siblings are
/// resolved by the policy's resolver where the caller has it, or joined; field rules choose
/// what a ruled register shows (``ConflictPolicy/fields(_:)``). A deleted document has no
/// projection.
///
/// ## Laws
/// - A function of the record and the policy only: every server, store and tool gives the same
///   text for the same record.
/// - Replicas and the server that hold equal records show equal projections.
public enum DocumentProjection {
    /// The projection of `record` under `policy`, or `nil` if the record is deleted.
    /// - Complexity: O(*n* log *n*) in the record's fields and elements; resolving siblings adds
    ///   their join.
    public static func value(of record: DocumentRecord, policy: ConflictPolicy, resolvers: ResolverRegistry = ResolverRegistry()) -> JSONValue? {
        guard !record.isDeleted else { return nil }
        return body(of: record, policy: policy, resolvers: resolvers).jsonValue
    }

    /// ``value(of:policy:resolvers:)`` as JSON text (`JSONValue.text` in WeftCRDT), or `nil` if the record
    /// is deleted.
    public static func text(of record: DocumentRecord, policy: ConflictPolicy, resolvers: ResolverRegistry = ResolverRegistry()) -> String? {
        value(of: record, policy: policy, resolvers: resolvers)?.text
    }

    /// The body readers see: siblings resolved (or joined, if they do not decode or no resolver
    /// is at hand), then field rules applied.
    public static func body(of record: DocumentRecord, policy: ConflictPolicy, resolvers: ResolverRegistry = ResolverRegistry()) -> Document {
        var readable = record
        if record.holdsSiblings {
            readable = (try? record.resolvingSiblings(with: policy.resolver(in: resolvers)))
                ?? (try? record.resolvingSiblings(with: nil)) ?? record
        }
        var body = readable.body
        // Siblings that do not decode (a damaged record) are left out rather than shown as bytes.
        if readable.holdsSiblings { _ = body.removeField(DocumentRecord.siblingsField) }
        guard case .fields(let rules) = policy else { return body }
        return FieldRulesResolver(rules: rules).presenting(body)
    }
}
