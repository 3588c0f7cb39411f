import WeftCRDT

/// What a collection's indexes hold and how they see a document.
public struct IndexDeclaration: Sendable, Hashable {
    /// The indexed fields.
    public var fields: [IndexedField]
    /// A description of how readers see the collection's documents (its field rules, if any):
    /// indexes built under another presentation are built again.
    public var presentation: String

    /// Creates a declaration.
    public init(fields: [IndexedField], presentation: String = "") {
        self.fields = fields
        self.presentation = presentation
    }
}

/// A document as the indexes see it: the record's body as readers see it (siblings resolved,
/// field rules applied). Only called for records that are not deleted.
public typealias DocumentPresenter = @Sendable (CollectionName, DocumentRecord) -> Document

/// A ``DocumentStore`` that keeps indexes on declared fields, in the same transaction as every
/// write of a document (local or pulled), so they never disagree with the documents.
///
/// ## Contract
///
/// 1. After ``declareIndexes(_:presenter:)`` returns, the indexes of every declared collection
///    hold exactly, for each live document, ``FieldPath/value(in:)`` of each value field and
///    ``FieldPath/members(in:)`` of each members field of `presenter`'s view of it, and nothing
///    for deleted documents. A collection declared as before (same fields, same presentation)
///    keeps its indexes; one declared otherwise is indexed again from its documents; one no
///    longer declared loses its indexes. All of this is one transaction.
/// 2. Every later write keeps point 1 true in the write's own transaction.
/// 3. ``indexedRecords(in:where:orderBy:after:limit:)`` returns the live documents that match
///    `predicate`, in `order` then id, strictly after `after`, at most `limit`, with their
///    sort values. Every path of `predicate` and `order` is indexed (value fields; members
///    fields for `contains`); anything else is ``WeftError/Kind/invalidArgument``.
/// 4. ``indexedCount(in:where:)`` counts what point 3 would return without a limit.
public protocol IndexedStorage: DocumentStore {
    /// Declares the indexes of every collection (point 1).
    func declareIndexes(_ declarations: [CollectionName: IndexDeclaration], presenter: @escaping DocumentPresenter) async throws(WeftError)
    /// The fields indexed in `collection` now (empty if none).
    func indexedFields(of collection: CollectionName) -> [IndexedField]
    /// The live documents matching an indexed predicate (point 3).
    func indexedRecords(
        in collection: CollectionName, where predicate: DocumentPredicate, orderBy order: [SortKey], after: QueryCursor?, limit: Int
    ) async throws(WeftError) -> [IndexedRow]
    /// How many live documents match an indexed predicate (point 4).
    func indexedCount(in collection: CollectionName, where predicate: DocumentPredicate) async throws(WeftError) -> Int
}

/// A document an index lookup found: its id, its record, and its values for the lookup's sort
/// keys as the index holds them.
public struct IndexedRow: Sendable {
    /// The document's id.
    public var id: DocumentID
    /// Its stored record.
    public var record: DocumentRecord
    /// Its values for the lookup's sort keys, in order.
    public var values: [QueryValue]

    /// Creates a row.
    public init(id: DocumentID, record: DocumentRecord, values: [QueryValue]) {
        self.id = id
        self.record = record
        self.values = values
    }
}

/// Which parts of a query a collection's indexes answer.
struct QueryPlanner {
    let values: Set<FieldPath>
    let members: Set<FieldPath>
    let indexed: Bool

    init(_ fields: [IndexedField]) {
        values = Set(fields.filter { $0.kind == .value }.map(\.path))
        members = Set(fields.filter { $0.kind == .members }.map(\.path))
        indexed = !fields.isEmpty
    }

    /// Whether every condition of `predicate` has an index.
    func answers(_ predicate: DocumentPredicate) -> Bool {
        guard indexed else { return false }
        switch predicate {
        case .all, .idPrefix: return true
        case .compare(let path, _, _), .oneOf(let path, _), .hasPrefix(let path, _), .exists(let path): return values.contains(path)
        case .contains(let path, _): return members.contains(path)
        case .and(let list), .or(let list): return list.allSatisfy(answers)
        case .not(let inner): return answers(inner)
        }
    }

    /// Whether the indexes give `order`.
    func orders(_ order: [SortKey]) -> Bool { indexed && order.allSatisfy { values.contains($0.path) } }

    func plan(_ query: DocumentQuery) -> QueryPlan {
        let all = query.predicate.paths
        let unindexed = all.filter { !values.contains($0) && !members.contains($0) }
        var seen = Set<FieldPath>()
        let unique = unindexed.filter { seen.insert($0).inserted }
        if answers(query.predicate) {
            return QueryPlan(
                indexed: query.predicate, checksDocuments: false, unindexedPaths: [], orderFromIndex: orders(query.order),
                collectionIndexed: indexed)
        }
        var part = DocumentPredicate.all
        if indexed, case .and(let list) = query.predicate {
            let answered = list.filter(answers)
            if answered.count == 1 { part = answered[0] } else if !answered.isEmpty { part = .and(answered) }
        }
        // A scan without indexes goes in id order: its order is its own only when there is no sort.
        return QueryPlan(
            indexed: part, checksDocuments: true, unindexedPaths: unique,
            orderFromIndex: indexed ? orders(query.order) : query.order.isEmpty, collectionIndexed: indexed)
    }
}
