import Logging
import Synchronization
import WeftCRDT
import WeftWire

/// Writes collected by ``Replica/batch(_:)`` and committed together.
///
/// Each edit closure runs inside the commit, possibly more than once (see
/// ``Replica/batch(_:)``): it should only edit the document it is given.
public struct ReplicaBatch: Sendable {
    var operations: [Replica.Operation] = []

    func key(_ collection: String, _ id: String) throws(WeftError) -> DocumentKey {
        DocumentKey(collection: try CollectionName(collection), id: try DocumentID(id))
    }

    /// Creates a document; the batch fails if it exists.
    public mutating func create(
        _ collection: String, _ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) throws(WeftError) {
        operations.append(.init(key: try key(collection, id), expectation: .mustNotExist, deleting: false, edit: edit))
    }

    /// Updates a document; the batch fails if it does not exist.
    public mutating func update(
        _ collection: String, _ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) throws(WeftError) {
        operations.append(.init(key: try key(collection, id), expectation: .mustExist, deleting: false, edit: edit))
    }

    /// Creates or updates a document.
    public mutating func upsert(
        _ collection: String, _ id: String, _ edit: @escaping @Sendable (inout DocumentEditor) throws(WeftError) -> Void
    ) throws(WeftError) {
        operations.append(.init(key: try key(collection, id), expectation: .any, deleting: false, edit: edit))
    }

    /// Deletes a document; the batch fails if it does not exist.
    public mutating func delete(_ collection: String, _ id: String) throws(WeftError) {
        operations.append(.init(key: try key(collection, id), expectation: .mustExist, deleting: true, edit: { _ in }))
    }

    /// Stores a `Codable` value as a document, writing only the fields that differ.
    public mutating func put<T: Encodable & Sendable>(_ collection: String, _ id: String, _ value: T) throws(WeftError) {
        operations.append(
            .init(key: try key(collection, id), expectation: .any, deleting: false) { editor throws(WeftError) in
                try editor.replace(with: value)
            })
    }
}
