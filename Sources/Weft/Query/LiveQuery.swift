import Synchronization
import WeftCRDT

extension ReplicaCollection {
    /// The results of `query`, now and after every change that may alter them: local writes,
    /// pulled changes and documents a resync forgets.
    ///
    /// The first element is the current page; each later one follows a change to a document of
    /// the collection that changed the page. Changes that arrive while a page is being worked
    /// out are taken together (a burst of writes gives one page, not one per write). The
    /// sequence ends when the task iterating it is cancelled, and then holds nothing. Given a
    /// ``Replica`` `replica`:
    ///
    /// ```swift
    /// let orders = try replica.collection("workOrders")
    /// for try await page in orders.live(DocumentQuery(Field("status") == "open", orderBy: [Field("created").descending])) {
    ///     print(page.documents.count, "open work orders")
    ///     break
    /// }
    /// ```
    ///
    /// Without a limit or cursor, a change costs reading the changed documents and O(log *k*)
    /// to place each in the *k* results; with a limit or a cursor the query runs again.
    public func live(_ query: DocumentQuery) -> LiveQuery { LiveQuery(collection: self, query: query) }
}

/// A query whose results follow the collection (``ReplicaCollection/live(_:)``).
public struct LiveQuery: AsyncSequence, Sendable {
    public typealias Element = QueryPage
    let collection: ReplicaCollection
    let query: DocumentQuery

    public func makeAsyncIterator() -> Iterator { Iterator(state: LiveQueryState(collection: collection, query: query)) }

    /// Waits for a change that alters the results, then gives them.
    public struct Iterator: AsyncIteratorProtocol {
        let state: LiveQueryState

        public mutating func next() async throws(WeftError) -> QueryPage? { try await state.next() }
    }
}

/// The state of one iteration of a live query: the changed ids not yet looked at, the
/// subscription that collects them, and the current results.
final class LiveQueryState: @unchecked Sendable {
    let collection: ReplicaCollection
    let query: DocumentQuery
    let runner: QueryRunner

    /// Changed ids, and the iteration waiting for some (both under the lock).
    struct Pending {
        var changed = Set<DocumentID>()
        var waiter: CheckedContinuation<Bool, Never>?
        var cancelled = false
    }
    final class PendingBox: Sendable {
        let state = Mutex(Pending())
    }
    let box = PendingBox()
    /// The task moving the replica's changes into `pending`.
    let subscription = Mutex<Task<Void, Never>?>(nil)

    // Touched only by `next()`, which an iterator's single consumer calls one at a time.
    var started = false
    var results: [(values: [QueryValue], id: DocumentID, document: Document)] = []
    var valuesByID: [DocumentID: [QueryValue]] = [:]
    var current: QueryPage?

    init(collection: ReplicaCollection, query: DocumentQuery) {
        self.collection = collection
        self.query = query
        runner = collection.runner
    }

    deinit {
        subscription.withLock { $0?.cancel() }
    }

    func next() async throws(WeftError) -> QueryPage? {
        if !started {
            started = true
            try query.validate()
            // Subscribe before reading: a change during the first read is looked at again.
            let changes = await collection.replica.changes(bufferingPolicy: .unbounded)
            let name = collection.name
            let task = Task { [box] in
                for await change in changes where change.key.collection == name {
                    let waiter = box.state.withLock { state -> CheckedContinuation<Bool, Never>? in
                        state.changed.insert(change.key.id)
                        defer { state.waiter = nil }
                        return state.waiter
                    }
                    waiter?.resume(returning: true)
                }
            }
            subscription.withLock { $0 = task }
            let page = try await runner.page(query)
            replaceResults(with: page)
            return page
        }
        while true {
            guard let changed = await waitForChanges() else { return nil }
            if try await apply(changed) { return current }
        }
    }

    /// The ids changed since the last look, once there are some; nil once cancelled.
    func waitForChanges() async -> Set<DocumentID>? {
        while true {
            let taken = box.state.withLock { state -> Set<DocumentID>? in
                guard !state.cancelled, !Task.isCancelled else { return nil }
                defer { state.changed = [] }
                return state.changed
            }
            guard let taken else {
                subscription.withLock { $0?.cancel() }
                return nil
            }
            if !taken.isEmpty { return taken }
            let woken = await withTaskCancellationHandler {
                await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                    let resumeNow = box.state.withLock { state -> Bool in
                        if state.cancelled || !state.changed.isEmpty { return true }
                        state.waiter = continuation
                        return false
                    }
                    if resumeNow { continuation.resume(returning: true) }
                }
            } onCancel: {
                let waiter = box.state.withLock { state -> CheckedContinuation<Bool, Never>? in
                    state.cancelled = true
                    defer { state.waiter = nil }
                    return state.waiter
                }
                waiter?.resume(returning: false)
            }
            _ = woken
        }
    }

    /// Brings the results up to date with the documents `changed`; whether they changed.
    func apply(_ changed: Set<DocumentID>) async throws(WeftError) -> Bool {
        guard query.limit == nil, query.after == nil else {
            // A page with a limit may take in documents the changes pushed up: run it again.
            let page = try await runner.page(query)
            let same =
                page.documents.count == current?.documents.count
                && zip(page.documents, current?.documents ?? []).allSatisfy { $0.id == $1.id && $0.document == $1.document }
            replaceResults(with: page)
            return !same
        }
        var altered = false
        let keys = changed.map { DocumentKey(collection: collection.name, id: $0) }
        let records = try await collection.replica.storage.records(for: keys)
        for key in keys {
            let document = try records[key].flatMap { record throws(WeftError) in try runner.present(record) }
            let now = document.flatMap { query.predicate.matches(key.id, $0) ? $0 : nil }
            if let index = position(of: key.id) {
                if let now, now == results[index].document { continue }
                results.remove(at: index)
                valuesByID[key.id] = nil
                altered = true
            }
            if let now {
                let values = query.sortValues(of: now)
                results.insert((values, key.id, now), at: insertionPoint(values, key.id))
                valuesByID[key.id] = values
                altered = true
            }
        }
        if altered { current = QueryPage(documents: results.map { ($0.id, $0.document) }, next: nil) }
        return altered
    }

    /// Where document `id` is in the results, if it is.
    func position(of id: DocumentID) -> Int? {
        // The results are in the query's order: a document is found by its sort values.
        guard let values = valuesByID[id] else { return nil }
        let index = insertionPoint(values, id)
        return index < results.count && results[index].id == id ? index : nil
    }

    func replaceResults(with page: QueryPage) {
        current = page
        results = page.documents.map { (query.sortValues(of: $0.document), $0.id, $0.document) }
        valuesByID = Dictionary(results.map { ($0.id, $0.values) }, uniquingKeysWith: { first, _ in first })
    }

    func insertionPoint(_ values: [QueryValue], _ id: DocumentID) -> Int {
        var low = 0
        var high = results.count
        while low < high {
            let middle = (low + high) / 2
            if query.compare((results[middle].values, results[middle].id), (values, id)) < 0 { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
