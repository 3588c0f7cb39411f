import WeftCRDT

/// One key of a query's order: a field, ascending or descending.
///
/// Values sort in ``QueryValue``'s order; null (an absent field) comes first ascending and last
/// descending. Documents equal on every key come in the order of their ids, so the order is
/// total and a ``QueryCursor`` always knows where it stands.
public struct SortKey: Sendable, Hashable, CustomStringConvertible {
    /// The field.
    public let path: FieldPath
    /// Whether greater values come first.
    public let descending: Bool

    /// A key on `path`.
    public init(_ path: FieldPath, descending: Bool = false) {
        self.path = path
        self.descending = descending
    }

    /// Ascending by `path`.
    public static func ascending(_ path: FieldPath) -> SortKey { SortKey(path, descending: false) }
    /// Descending by `path`.
    public static func descending(_ path: FieldPath) -> SortKey { SortKey(path, descending: true) }

    public var description: String { descending ? "\(path) descending" : "\(path)" }
}

/// Where a page of a query ended: the sort values and id of its last document. Pass it as the
/// next query's `after` (with the same order) to read on.
public struct QueryCursor: Sendable, Equatable, CustomStringConvertible {
    /// The last document's values for the query's sort keys, in order.
    public let values: [QueryValue]
    /// The last document's id.
    public let id: DocumentID

    /// A cursor after the document `id` with sort values `values`.
    public init(values: [QueryValue], id: DocumentID) {
        self.values = values
        self.id = id
    }

    public var description: String { "after \(values.map(\.description)) \(id)" }
}

/// A field a collection keeps an index on (``ReplicaConfiguration/collectionIndexes``).
public struct IndexedField: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// What the index holds.
    public enum Kind: String, Sendable, Hashable {
        /// The path's value (``FieldPath/value(in:)``): for comparisons, `oneOf`, prefixes,
        /// `exists` and sorting.
        case value
        /// The elements of the set at the path (``FieldPath/members(in:)``): for `contains`.
        case members
    }

    /// The field.
    public let path: FieldPath
    /// What the index holds.
    public let kind: Kind

    /// An index of `kind` at `path`.
    public init(path: FieldPath, kind: Kind) {
        self.path = path
        self.kind = kind
    }

    /// An index of the values at `path`.
    public static func value(_ path: FieldPath) -> IndexedField { IndexedField(path: path, kind: .value) }
    /// An index of the set elements at `path`.
    public static func members(_ path: FieldPath) -> IndexedField { IndexedField(path: path, kind: .members) }

    public var description: String { kind == .value ? "\(path)" : "\(path)[]" }

    public static func < (lhs: IndexedField, rhs: IndexedField) -> Bool { lhs.description < rhs.description }
}

/// A query on a collection: which documents (``predicate``), in which order, how many, and
/// after which cursor.
public struct DocumentQuery: Sendable, Hashable {
    /// The documents wanted.
    public var predicate: DocumentPredicate
    /// The order; documents equal on every key come by id. Empty: by id.
    public var order: [SortKey]
    /// At most this many documents (nil: all).
    public var limit: Int?
    /// Only documents after this cursor, in this order.
    public var after: QueryCursor?

    /// Creates a query.
    public init(_ predicate: DocumentPredicate = .all, orderBy order: [SortKey] = [], limit: Int? = nil, after: QueryCursor? = nil) {
        self.predicate = predicate
        self.order = order
        self.limit = limit
        self.after = after
    }

    public static func == (lhs: DocumentQuery, rhs: DocumentQuery) -> Bool {
        lhs.predicate == rhs.predicate && lhs.order == rhs.order && lhs.limit == rhs.limit && lhs.after == rhs.after
    }
    public func hash(into hasher: inout Hasher) {
        hasher.combine(predicate)
        hasher.combine(order)
        hasher.combine(limit)
    }

    /// Throws ``WeftError/Kind/invalidArgument`` for an invalid path, a negative limit, or a
    /// cursor that does not fit the order.
    public func validate() throws(WeftError) {
        try predicate.validate()
        for key in order { try key.path.validate() }
        if let limit, limit < 0 { throw .invalidArgument("a query's limit must not be negative, got \(limit)") }
        if let after, after.values.count != order.count {
            throw .invalidArgument("the cursor holds \(after.values.count) sort values; the query sorts by \(order.count) keys")
        }
    }

    /// The sort values of a document.
    func sortValues(of document: Document) -> [QueryValue] { order.map { $0.path.value(in: document) } }

    /// Negative, zero or positive as the document with `a` comes before, is, or comes after
    /// the one with `b` in this query's order.
    func compare(_ a: (values: [QueryValue], id: DocumentID), _ b: (values: [QueryValue], id: DocumentID)) -> Int {
        for (index, key) in order.enumerated() {
            let order = a.values[index].compare(b.values[index])
            if order != 0 { return key.descending ? -order : order }
        }
        return a.id == b.id ? 0 : (a.id < b.id ? -1 : 1)
    }
}

/// A page of a query's results.
public struct QueryPage: Sendable {
    /// The documents, as readers see them, in the query's order.
    public var documents: [(id: DocumentID, document: Document)]
    /// Where to read on if the page is full (it had as many documents as the limit); nil when
    /// the query has no more.
    public var next: QueryCursor?

    /// The documents decoded as `T` (through the `Codable` bridge).
    /// - Throws: ``WeftError/Kind/mapping`` for a document that does not decode.
    public func decoded<T: Decodable>(as type: T.Type) throws(WeftError) -> [(id: DocumentID, value: T)] {
        var result = [(id: DocumentID, value: T)]()
        result.reserveCapacity(documents.count)
        for (id, document) in documents {
            do {
                result.append((id, try document.decode(T.self)))
            } catch {
                throw .mapping("\(id) does not decode as \(T.self): \(error)")
            }
        }
        return result
    }
}

/// How a query is answered (``ReplicaCollection/explain(_:)``).
public struct QueryPlan: Sendable, Hashable, CustomStringConvertible {
    /// The conditions answered by the collection's indexes (`.all` if none).
    public var indexed: DocumentPredicate
    /// Whether documents are read and checked against the whole predicate (some condition has
    /// no index).
    public var checksDocuments: Bool
    /// Paths of the predicate without an index.
    public var unindexedPaths: [FieldPath]
    /// Whether the order comes from the indexes (else the matches are sorted in memory).
    public var orderFromIndex: Bool
    /// Whether the collection has indexes at all on this storage.
    public var collectionIndexed: Bool

    /// Whether every condition and sort key is answered by an index.
    public var usesOnlyIndexes: Bool { collectionIndexed && !checksDocuments && orderFromIndex }

    public var description: String {
        var parts = [String]()
        if !collectionIndexed {
            parts.append("scan of every document (the collection has no indexes here)")
        } else if indexed == .all {
            parts.append(checksDocuments ? "scan of every document" : "every document, from the index table")
        } else {
            parts.append("index lookup for \(Self.describe(indexed))")
        }
        if checksDocuments && !unindexedPaths.isEmpty {
            parts.append("each candidate read and checked (no index on \(unindexedPaths.map(\.description).joined(separator: ", ")))")
        } else if checksDocuments {
            parts.append("each candidate read and checked")
        }
        parts.append(orderFromIndex ? "order from the index" : "sorted in memory")
        return parts.joined(separator: "; ")
    }

    static func describe(_ predicate: DocumentPredicate) -> String {
        switch predicate {
        case .all: return "all"
        case .compare(let path, let comparison, let value): return "\(path) \(comparison.rawValue) \(value)"
        case .oneOf(let path, let values): return "\(path) in \(values)"
        case .contains(let path, let value): return "\(path) contains \(value)"
        case .hasPrefix(let path, let prefix): return "\(path) starts with \(prefix.debugDescription)"
        case .exists(let path): return "\(path) exists"
        case .idPrefix(let prefix): return "id starts with \(prefix.debugDescription)"
        case .and(let list): return "(" + list.map(describe).joined(separator: " and ") + ")"
        case .or(let list): return "(" + list.map(describe).joined(separator: " or ") + ")"
        case .not(let inner): return "not \(describe(inner))"
        }
    }
}
