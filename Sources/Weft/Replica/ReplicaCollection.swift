import WeftCRDT

/// A collection of documents in a ``Replica``: create, update, delete, get and list.
///
/// Documents are dynamic `Document`s (WeftCRDT), or your `Codable` types through the mapping described
/// in the "Modelling data as CRDT documents" article of WeftCRDT.
public struct ReplicaCollection: Sendable {
    /// The replica.
    public let replica: Replica
    /// The collection's name.
    public let name: CollectionName

    func key(_ id: String) throws(WeftError) -> DocumentKey { DocumentKey(collection: name, id: try DocumentID(id)) }

    // MARK: Dynamic documents

    /// Creates document `id`.
    /// - Throws: ``WeftError/Kind/documentExists`` if a live document has that id.
    @discardableResult
    public func create(_ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void) async throws(WeftError)
        -> Document
    {
        try await replica.write(try key(id), expectation: .mustNotExist, edit).body
    }

    /// Updates document `id` in place.
    /// - Throws: ``WeftError/Kind/documentNotFound`` if there is no live document with that id.
    @discardableResult
    public func update(_ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void) async throws(WeftError)
        -> Document
    {
        try await replica.write(try key(id), expectation: .mustExist, edit).body
    }

    /// Creates document `id`, or updates it if it exists.
    @discardableResult
    public func upsert(_ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void) async throws(WeftError)
        -> Document
    {
        try await replica.write(try key(id), expectation: .any, edit).body
    }

    /// Deletes document `id`: a tombstone that syncs like any other change.
    /// - Throws: ``WeftError/Kind/documentNotFound`` if there is no live document with that id.
    public func delete(_ id: String) async throws(WeftError) {
        _ = try await replica.write(try key(id), expectation: .mustExist, deleting: true) { _ in }
    }

    /// The live document `id`, or `nil`, as readers see it (under field rules, each ruled
    /// register shows the write its rule chooses).
    ///
    /// A document holding siblings (concurrent versions a server without the resolver kept)
    /// reads as their resolution by this replica's resolver, or as their join if it has none;
    /// ``Replica/holdsSiblings(_:)`` tells which documents still wait for a resolver.
    public func get(_ id: String) async throws(WeftError) -> Document? {
        guard let stored = try await replica.record(try key(id)) else { return nil }
        let record = try replica.readable(stored, in: name)
        guard !record.isDeleted else { return nil }
        return replica.presenting(record.body, in: name)
    }

    /// The live documents that pass `filter`, ordered by id, as readers see them.
    ///
    /// Without a `limit` this holds the whole collection in memory; to go through a large one,
    /// use ``documents(where:pageSize:)``, or page with ``DocumentFilter/after`` and a `limit`.
    /// - Complexity: O(n) in the documents read; memory O(`limit`).
    public func list(where filter: DocumentFilter = .all, limit: Int? = nil) async throws(WeftError)
        -> [(id: DocumentID, document: Document)]
    {
        // The collection's policy once for the whole list: most collections show bodies as stored.
        try presentable(try await replica.storage.records(in: name, where: filter, limit: limit), filter: filter)
    }

    /// Stored records as readers see them (siblings resolved, field rules applied), without the
    /// deleted ones unless `filter` asks for them.
    func presentable(_ stored: [(id: DocumentID, record: DocumentRecord)], filter: DocumentFilter) throws(WeftError)
        -> [(id: DocumentID, document: Document)]
    {
        var rules: FieldRulesResolver?
        if case .fields(let declared) = replica.policy(for: name) { rules = FieldRulesResolver(rules: declared) }
        var result = [(id: DocumentID, document: Document)]()
        result.reserveCapacity(stored.count)
        for (id, stored) in stored {
            let record = stored.holdsSiblings ? try replica.readable(stored, in: name) : stored
            if record.isDeleted && !filter.includeDeleted { continue }
            result.append((id, rules?.presenting(record.body) ?? record.body))
        }
        return result
    }

    /// The live documents that pass `filter`, ordered by id, as readers see them, read `pageSize`
    /// at a time: memory follows the page, not the collection.
    ///
    /// Each page is a consistent read; a document written between pages is seen as it is when
    /// its page is read (a document created behind the pages' position is not seen, one
    /// deleted ahead of it is not either).
    ///
    /// Given a ``Replica`` `replica`:
    ///
    /// ```swift
    /// for try await (id, document) in try replica.collection("orders").documents() {
    ///     print(id, document.scalar("status") ?? .null)
    /// }
    /// ```
    public func documents(where filter: DocumentFilter = .all, pageSize: Int = 500) -> CollectionDocuments {
        CollectionDocuments(collection: self, filter: filter, pageSize: max(1, pageSize))
    }

    /// The collection's deleted documents (tombstones), ordered by id, with the stamp of each
    /// deletion.
    ///
    /// A deletion is a write like any other: it syncs, and a concurrent edit elsewhere is
    /// weighed against its stamp. The tombstones a replica holds are what it has deleted, or
    /// learnt was deleted, and not seen re-created since.
    /// - Complexity: O(n) in the collection's documents, tombstones included.
    public func tombstones() async throws(WeftError) -> [(id: DocumentID, deletedAt: HLCTimestamp)] {
        try await replica.storage.records(in: name, where: DocumentFilter(includeDeleted: true), limit: nil)
            .filter { $0.record.isDeleted }
            .map { ($0.id, $0.record.deletion.stamp) }
    }

    // MARK: Typed documents

    /// Stores `value` as document `id`, creating it or writing only the fields that differ.
    ///
    /// Fields of the stored document that `value` does not encode are kept, unless `T` knows
    /// them (an optional set to `nil` is removed) or `unknownFields` is `.remove` (the document
    /// then becomes exactly `value`). So an older app version, or a struct that shows part of a
    /// document, never deletes fields it does not know.
    /// - Throws: ``WeftError/Kind/mapping`` if a field of `T` has no CRDT mapping.
    public func put<T: Encodable & Sendable>(_ id: String, _ value: T, unknownFields: UnknownFieldPolicy = .keep) async throws(WeftError) {
        _ = try await replica.write(try key(id), expectation: .any) { editor throws(WeftError) in
            try editor.replace(with: value, unknownFields: unknownFields)
        }
    }

    /// Reads document `id` as a `T`, or `nil` if there is no live document.
    /// - Throws: ``WeftError/Kind/mapping`` if the document does not decode as a `T`.
    public func get<T: Decodable>(_ id: String, as type: T.Type) async throws(WeftError) -> T? {
        guard let document = try await get(id) else { return nil }
        do {
            return try document.decode(T.self)
        } catch {
            throw .mapping("\(name)/\(id) does not decode as \(T.self): \(error)")
        }
    }

    /// Reads document `id` as a `T`, lets `body` change it, and writes back the fields that changed.
    ///
    /// Fields `T` does not have are kept: a struct that shows part of a document, or one from an
    /// older app version, never deletes what it does not know. An optional of `T` set to `nil`
    /// removes its field.
    /// - Throws: ``WeftError/Kind/documentNotFound`` if there is no live document with that id.
    public func update<T: Codable & Sendable>(_ id: String, as type: T.Type, _ body: @escaping @Sendable (inout T) throws -> Void) async throws(WeftError) {
        let key = try key(id)
        _ = try await replica.write(key, expectation: .mustExist) { editor throws(WeftError) in
            var value: T
            do {
                value = try editor.presented.decode(T.self)
            } catch {
                throw .mapping("\(key) does not decode as \(T.self): \(error)")
            }
            do {
                try body(&value)
            } catch {
                throw .invalidArgument("the update of \(key) failed: \(error)")
            }
            try editor.replace(with: value)
        }
    }
}

/// The documents of a collection, read page by page (``ReplicaCollection/documents(where:pageSize:)``).
public struct CollectionDocuments: AsyncSequence, Sendable {
    public typealias Element = (id: DocumentID, document: Document)
    let collection: ReplicaCollection
    let filter: DocumentFilter
    let pageSize: Int

    public func makeAsyncIterator() -> Iterator { Iterator(sequence: self) }

    /// Reads the next page when the current one is used up.
    public struct Iterator: AsyncIteratorProtocol {
        let sequence: CollectionDocuments
        var page: [(id: DocumentID, document: Document)] = []
        var index = 0
        var after: DocumentID?
        var finished = false

        init(sequence: CollectionDocuments) {
            self.sequence = sequence
            after = sequence.filter.after
        }

        public mutating func next() async throws(WeftError) -> (id: DocumentID, document: Document)? {
            if index == page.count {
                guard !finished else { return nil }
                var filter = sequence.filter
                filter.after = after
                // The page counts stored records, live or not, so that deleted documents never
                // stall it; the list drops those a reader does not see.
                let read = try await sequence.collection.replica.storage.records(in: sequence.collection.name, where: filter, limit: sequence.pageSize)
                finished = read.count < sequence.pageSize
                after = read.last?.id ?? after
                page = try sequence.collection.presentable(read, filter: sequence.filter)
                index = 0
                if page.isEmpty { return finished ? nil : try await next() }
            }
            defer { index += 1 }
            return page[index]
        }
    }
}
