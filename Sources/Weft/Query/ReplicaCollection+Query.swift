import WeftCRDT

// Queries: predicates, order, paging and counts, answered by the collection's indexes where
// it has them (`ReplicaConfiguration.collectionIndexes`) and by reading documents where not.
extension ReplicaCollection {
    /// The query runner for this collection, presenting documents as readers see them.
    var runner: QueryRunner {
        let replica = self.replica
        let name = self.name
        return QueryRunner(store: replica.storage, collection: name) { stored throws(WeftError) in
            let record = stored.holdsSiblings ? try replica.readable(stored, in: name) : stored
            return record.isDeleted ? nil : replica.presenting(record.body, in: name)
        }
    }

    /// The live documents matching `predicate`, as readers see them, in `order` (then by id),
    /// at most `limit` of them, after `cursor`. Given a ``Replica`` `replica`:
    ///
    /// ```swift
    /// let orders = try replica.collection("workOrders")
    /// let page = try await orders.query(
    ///     Field("status") == "open" && Field("assignee") == "ana",
    ///     orderBy: [Field("created").descending], limit: 20)
    /// for (id, order) in page.documents { print(id, order.string("title") ?? "") }
    /// if let next = page.next {
    ///     let more = try await orders.query(
    ///         Field("status") == "open" && Field("assignee") == "ana",
    ///         orderBy: [Field("created").descending], limit: 20, after: next)
    ///     print(more.documents.count)
    /// }
    /// ```
    ///
    /// Conditions and sort keys on indexed fields are answered by the indexes; others by
    /// reading documents (``explain(_:)`` tells which).
    /// - Complexity: with indexes for every condition and sort key, O(log *n* + *k*) for *k*
    ///   results; otherwise O(*n*) reads of the collection's *n* documents (or of the
    ///   candidates the indexed conditions leave). Memory O(*k*).
    /// - Throws: ``WeftError/Kind/invalidArgument`` for an invalid path, a negative limit or a
    ///   cursor of another order.
    public func query(
        _ predicate: DocumentPredicate = .all, orderBy order: [SortKey] = [], limit: Int? = nil, after cursor: QueryCursor? = nil
    ) async throws(WeftError) -> QueryPage {
        try await runner.page(DocumentQuery(predicate, orderBy: order, limit: limit, after: cursor))
    }

    /// The page `query` asks for (see ``query(_:orderBy:limit:after:)``).
    public func query(_ query: DocumentQuery) async throws(WeftError) -> QueryPage { try await runner.page(query) }

    /// The matching documents decoded as `T` (through the `Codable` bridge). Given a ``Replica``
    /// `replica`:
    ///
    /// ```swift
    /// struct WorkOrder: Codable, Sendable {
    ///     var title: String
    ///     var status: String
    /// }
    /// let open = try await replica.collection("workOrders")
    ///     .query(Field("status") == "open", as: WorkOrder.self)
    /// print(open.map(\.value.title))
    /// ```
    /// - Throws: ``WeftError/Kind/mapping`` if a document does not decode as `T`.
    public func query<T: Decodable>(
        _ predicate: DocumentPredicate = .all, orderBy order: [SortKey] = [], limit: Int? = nil, as type: T.Type
    ) async throws(WeftError) -> [(id: DocumentID, value: T)] {
        try await query(predicate, orderBy: order, limit: limit).decoded(as: T.self)
    }

    /// How many live documents match `predicate`.
    /// - Complexity: O(log *n* + *k*) index entries if every condition is indexed, else O(*n*)
    ///   document reads.
    public func count(_ predicate: DocumentPredicate = .all) async throws(WeftError) -> Int {
        try await runner.count(predicate)
    }

    /// How `query` would be answered: which conditions the indexes answer, which are checked
    /// on each document, and whether the order comes from an index. Given a ``Replica``
    /// `replica`:
    ///
    /// ```swift
    /// let plan = try replica.collection("workOrders").explain(DocumentQuery(Field("status") == "open"))
    /// print(plan)  // index lookup for status = "open"; order from the index
    /// ```
    public func explain(_ query: DocumentQuery) -> QueryPlan { runner.explain(query) }

    /// Every document `query` matches, read `pageSize` at a time with its cursor: memory
    /// follows the page, not the results.
    ///
    /// Each page is a consistent read; a document written between pages is seen as it is when
    /// its page is read. `query`'s limit caps the whole sequence.
    /// - Complexity: each page costs a ``query(_:)`` with the page's limit: O(log *n* + page)
    ///   when the indexes give the order, O(*n*) when the matches are sorted in memory (then
    ///   prefer one ``query(_:)`` without a limit, or declare the sort key).
    public func results(of query: DocumentQuery, pageSize: Int = 500) -> QueryResults {
        QueryResults(runner: runner, query: query, pageSize: max(1, pageSize))
    }
}

/// The results of a query, read page by page (``ReplicaCollection/results(of:pageSize:)``).
public struct QueryResults: AsyncSequence, Sendable {
    public typealias Element = (id: DocumentID, document: Document)
    let runner: QueryRunner
    let query: DocumentQuery
    let pageSize: Int

    public func makeAsyncIterator() -> Iterator { Iterator(sequence: self) }

    /// Reads the next page when the current one is used up.
    public struct Iterator: AsyncIteratorProtocol {
        let sequence: QueryResults
        var page: [(id: DocumentID, document: Document)] = []
        var index = 0
        var cursor: QueryCursor?
        var remaining: Int
        var finished = false

        init(sequence: QueryResults) {
            self.sequence = sequence
            cursor = sequence.query.after
            remaining = sequence.query.limit ?? Int.max
        }

        public mutating func next() async throws(WeftError) -> (id: DocumentID, document: Document)? {
            if index == page.count {
                guard !finished, remaining > 0 else { return nil }
                var query = sequence.query
                query.after = cursor
                query.limit = Swift.min(sequence.pageSize, remaining)
                let read = try await sequence.runner.page(query)
                page = read.documents
                index = 0
                remaining -= page.count
                cursor = read.next
                finished = read.next == nil
                if page.isEmpty { return nil }
            }
            defer { index += 1 }
            return page[index]
        }
    }
}
