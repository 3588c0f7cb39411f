import WeftCRDT

/// Answers queries on one collection of a store: with its indexes where the store keeps them
/// (``IndexedStorage``), by reading documents where it does not.
package struct QueryRunner: Sendable {
    package let store: any DocumentStore
    package let collection: CollectionName
    /// The document as readers see it, or nil for a deleted one.
    package let present: @Sendable (DocumentRecord) throws(WeftError) -> Document?

    /// How many candidates a query reads at a time when it checks documents.
    static let batch = 256

    package init(store: any DocumentStore, collection: CollectionName, present: @escaping @Sendable (DocumentRecord) throws(WeftError) -> Document?) {
        self.store = store
        self.collection = collection
        self.present = present
    }

    var indexed: (any IndexedStorage)? { store as? any IndexedStorage }
    var planner: QueryPlanner { QueryPlanner(indexed?.indexedFields(of: collection) ?? []) }

    package func explain(_ query: DocumentQuery) -> QueryPlan { planner.plan(query) }

    /// Up to `limit` candidates after `position`: from the indexes (matching `plan.indexed`, in
    /// `order`), or every live document in id order.
    func candidates(_ plan: QueryPlan, order: [SortKey], after position: QueryCursor?, limit: Int) async throws(WeftError) -> [IndexedRow] {
        if plan.collectionIndexed, let indexed {
            return try await indexed.indexedRecords(in: collection, where: plan.indexed, orderBy: order, after: position, limit: limit)
        }
        var filter = DocumentFilter()
        filter.after = position?.id
        return try await store.records(in: collection, where: filter, limit: limit).map { IndexedRow(id: $0.id, record: $0.record, values: []) }
    }

    package func page(_ query: DocumentQuery) async throws(WeftError) -> QueryPage {
        try query.validate()
        let want = query.limit ?? Int.max
        guard want > 0 else { return QueryPage(documents: [], next: nil) }
        let plan = planner.plan(query)
        var documents = [(id: DocumentID, document: Document)]()
        var last: QueryCursor?
        if plan.orderFromIndex {
            // The candidates come in the query's order: stop at the limit.
            let order = plan.collectionIndexed ? query.order : []
            var position = query.after
            while documents.count < want {
                let size = plan.checksDocuments ? Self.batch : want - documents.count
                let rows = try await candidates(plan, order: order, after: position, limit: size)
                for row in rows {
                    guard let document = try present(row.record) else { continue }
                    guard !plan.checksDocuments || query.predicate.matches(row.id, document) else { continue }
                    documents.append((row.id, document))
                    last = QueryCursor(values: row.values.count == query.order.count ? row.values : query.sortValues(of: document), id: row.id)
                    if documents.count == want { break }
                }
                guard rows.count == size, let end = rows.last else { break }
                position = QueryCursor(values: end.values, id: end.id)
            }
        } else {
            // Sorted here: every match is looked at, and the first `limit` kept.
            var kept = [(values: [QueryValue], id: DocumentID, document: Document)]()
            var position: QueryCursor?
            while true {
                let rows = try await candidates(plan, order: [], after: position, limit: Self.batch)
                for row in rows {
                    guard let document = try present(row.record), query.predicate.matches(row.id, document) else { continue }
                    let values = query.sortValues(of: document)
                    if let after = query.after, query.compare((values, row.id), (after.values, after.id)) <= 0 { continue }
                    if kept.count == want, let worst = kept.last, query.compare((values, row.id), (worst.values, worst.id)) > 0 { continue }
                    var low = 0
                    var high = kept.count
                    while low < high {
                        let middle = (low + high) / 2
                        if query.compare((kept[middle].values, kept[middle].id), (values, row.id)) < 0 { low = middle + 1 } else { high = middle }
                    }
                    kept.insert((values, row.id, document), at: low)
                    if kept.count > want { kept.removeLast() }
                }
                guard rows.count == Self.batch, let end = rows.last else { break }
                position = QueryCursor(values: [], id: end.id)
            }
            documents = kept.map { ($0.id, $0.document) }
            last = kept.last.map { QueryCursor(values: $0.values, id: $0.id) }
        }
        return QueryPage(documents: documents, next: query.limit != nil && documents.count == want ? last : nil)
    }

    package func count(_ predicate: DocumentPredicate) async throws(WeftError) -> Int {
        try predicate.validate()
        let plan = planner.plan(DocumentQuery(predicate))
        if plan.collectionIndexed, !plan.checksDocuments, let indexed {
            return try await indexed.indexedCount(in: collection, where: predicate)
        }
        var count = 0
        var position: QueryCursor?
        while true {
            let rows = try await candidates(plan, order: [], after: position, limit: Self.batch)
            for row in rows {
                guard let document = try present(row.record), predicate.matches(row.id, document) else { continue }
                count += 1
            }
            guard rows.count == Self.batch, let end = rows.last else { break }
            position = QueryCursor(values: [], id: end.id)
        }
        return count
    }
}
